"""Documentation hygiene: citations of docs/science.md point at sections that exist; nothing cites outside the repo."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCIENCE = ROOT / "docs" / "science.md"
SOURCES = [
    *sorted((ROOT / "interp").rglob("*.py")),
    *sorted((ROOT / "interp").rglob("*.md")),
    *sorted((ROOT / "experiments").rglob("*.py")),
    *sorted((ROOT / "experiments").glob("*.ipynb")),
    ROOT / "README.md",
]


def test_science_sections_cited_in_code_exist():
    sections = set(re.findall(r"^## §(\d+)", SCIENCE.read_text(), flags=re.M))
    assert sections >= {"1", "2", "3", "4", "5"}
    cited = {}
    for path in SOURCES:
        for match in re.finditer(r"docs/science\.md[^\n§]{0,3}((?:§\d+(?:[-–, ]+)?)+)", path.read_text()):
            for number in re.findall(r"§(\d+)", match.group(1)):
                cited.setdefault(number, []).append(path.name)
    assert cited, "no citation of docs/science.md found"
    missing = {n: files for n, files in cited.items() if n not in sections}
    assert not missing, f"cited sections missing from docs/science.md: {missing}"


def test_no_reference_to_documents_outside_the_repository():
    offenders = []
    for path in SOURCES:
        text = path.read_text()
        if "../shared" in text or re.search(r"(?<![\w/])science\.md", text):
            offenders.append(path.relative_to(ROOT))
    assert not offenders, f"cite docs/science.md (in the repository), not an outside document: {offenders}"

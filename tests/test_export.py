import json

import plotly.graph_objects as go
import pytest

import interp.export as export


def test_html_only_mode_when_png_export_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_png_disabled_reason", None)

    def no_browser(*args, **kwargs):
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    monkeypatch.setattr(go.Figure, "to_image", no_browser)
    with pytest.warns(RuntimeWarning, match="HTML and JSON only"):
        paths = export.write_figure(fig, tmp_path / "study" / "fig")
    assert paths["png"] is None and (tmp_path / "study" / "fig.html").is_file()
    assert (tmp_path / export.PLOTLY_JS).is_file()  # shared plotly.js, referenced relatively
    assert '../plotly.min.js' in (tmp_path / "study" / "fig.html").read_text()
    assert export.png_status() is not None
    again = export.write_figure(fig, tmp_path / "study" / "fig2")  # no second attempt, no crash
    assert again["png"] is None
    monkeypatch.setattr(export, "_png_disabled_reason", None)


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    export.write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]

"""The nnsight engine's model and its remote checks: each failure is one line, before any model is loaded.

The NDIF host is played by a small HTTP server on the loopback address (its ``/status`` in the shape nnsight reads);
nothing leaves this machine.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

import interp.cli as cli
import interp.models
from interp.engines import nn_model
from interp.engines.nn_model import check_remote

pytest.importorskip("nnsight", reason='the nnsight engine needs pip install -e ".[nnsight]"')


class ModelLoaded(BaseException):
    """Raised by the patched loaders: a case got as far as loading a model."""


@pytest.fixture
def no_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise ModelLoaded(args)

    for name in ("_load_local", "_load_served", "_wrap_built"):
        monkeypatch.setattr(nn_model, name, refuse)
    monkeypatch.setattr(interp.models, "_hf_from_dir", refuse)


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "test-key")


@pytest.fixture
def host():
    """An NDIF stand-in on 127.0.0.1 serving ``org/served``; yields its URL and stops after the test."""

    class Status(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = json.dumps({"deployments": {"k": {"repo_id": "org/served", "application_state": "RUNNING"}}})
            self.send_response(200 if self.path == "/status" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on leaving: nothing listens there


def test_bad_engine_and_remote_values_are_refused_naming_the_argument(no_loading):
    with pytest.raises(ValueError, match=r"^engine: 'torch' not supported; valid: transformer_lens, nnsight$"):
        interp.models.load_model("embedded", engine="torch")
    with pytest.raises(ValueError, match="^remote: only the nnsight engine runs remotely"):
        interp.models.load_model("embedded", remote="local")
    with pytest.raises(ValueError, match="^remote: 'yes' not supported"):
        interp.models.load_model("embedded", engine="nnsight", remote="yes")


def test_a_missing_key_is_said_before_anything_else(monkeypatch, no_loading, host):
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(nn_model, "ndif_api_key", lambda: None)
    with pytest.raises(ValueError, match=r"^remote: no NDIF API key; set NDIF_API_KEY"):
        interp.models.load_model("org/served", engine="nnsight", remote=True, host=host)


def test_a_local_directory_or_built_model_is_refused_for_ndif(with_key, no_loading, host):
    with pytest.raises(ValueError, match="^remote: NDIF runs models by their Hugging Face repo id"):
        check_remote(str(interp.models.embedded_model_dir()), True, host)
    with pytest.raises(ValueError, match="^remote: 'constructed:retrieval:K=2' is built in code"):
        interp.models.load_model("constructed:retrieval:K=2", engine="nnsight", remote=True, host=host)


def test_an_unreachable_host_is_one_line(with_key, no_loading):
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ValueError, match=rf"^remote: NDIF host {url} is unreachable \(ConnectError") as err:
        interp.models.load_model("org/served", engine="nnsight", remote=True, host=url)
    assert "\n" not in str(err.value)


def test_a_model_the_host_does_not_serve_is_named_with_what_it_serves(with_key, no_loading, host):
    with pytest.raises(ValueError, match=r"^remote: http://127\.0\.0\.1:\d+ does not serve 'org/other'; it serves: "
                                         r"org/served$"):  # fmt: skip
        interp.models.load_model("org/other", engine="nnsight", remote=True, host=host)
    assert check_remote("org/served", True, host) == host  # served: the checks pass, the host is kept
    with pytest.raises(ModelLoaded):  # ... and loading starts only then
        interp.models.load_model("org/served", engine="nnsight", remote=True, host=host)


def test_the_host_defaults_to_nnsights_setting(monkeypatch):
    monkeypatch.setenv("NDIF_HOST", "http://example.invalid/")
    assert nn_model.ndif_host(None) == "http://example.invalid"
    assert nn_model.ndif_host("http://other:8000/") == "http://other:8000"


# --- the command line -----------------------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_remote_without_the_nnsight_engine_is_one_line(capsys, no_loading, tmp_path):
    code, err = run_cli(capsys, "figures", "mixture_sweep", "--remote", "local", "--out", str(tmp_path))
    assert (
        code == 2
        and err == "interp: error: --remote: traces run remotely on the nnsight engine only; add --engine nnsight"
    )


def test_without_nnsight_installed_the_flag_says_how_to_get_it(capsys, monkeypatch, no_loading, tmp_path):
    monkeypatch.setitem(sys.modules, "nnsight", None)  # import nnsight now raises ModuleNotFoundError
    code, err = run_cli(capsys, "figures", "task_vectors", "--engine", "nnsight", "--out", str(tmp_path))
    assert code == 2 and "\n" not in err
    assert err.startswith("interp: error: --engine: 'nnsight' needs the nnsight package, which is not installed")
    assert 'pip install -e ".[nnsight]"' in err
    with pytest.raises(ValueError, match=r'^engine: .* install it with pip install -e "\.\[nnsight\]"'):
        interp.models.load_model("embedded", engine="nnsight")


def test_remote_on_the_command_line_checks_ndif_before_loading(capsys, monkeypatch, no_loading, host):
    monkeypatch.setattr(nn_model, "ndif_api_key", lambda: None)
    code, err = run_cli(capsys, "measure", "--family", "operands", "--model", "org/served", "--engine", "nnsight",
                        "--remote", "--ndif-host", host)  # fmt: skip
    assert code == 2 and err.startswith("interp: error: --remote: no NDIF API key; set NDIF_API_KEY")
    monkeypatch.setattr(nn_model, "ndif_api_key", lambda: "k")
    code, err = run_cli(capsys, "measure", "--family", "operands", "--model", "org/big", "--engine", "nnsight",
                        "--remote", "--ndif-host", host)  # fmt: skip
    assert code == 2 and err == f"interp: error: --remote: {host} does not serve 'org/big'; it serves: org/served"


def test_a_transformer_lens_hook_on_the_nnsight_engine_is_refused_saying_what_to_do_instead():
    import torch

    from interp.interventions import add
    from interp.patching import patch

    model = interp.models.load_model("embedded", device="cpu", engine="nnsight")
    with pytest.raises(ValueError, match="^model: runs on the nnsight engine, which attaches no TransformerLens hooks"):
        with patch(model, add(torch.ones(model.cfg.d_model), 0, position=1)):
            pass


def test_answer_contexts_sit_side_by_side_in_their_prompts_row():
    """Each prompt's answer contexts share its row (its cache is not copied per answer): positions continue the
    prompt, a context sees its prompt's real tokens (not the padding after them) and its own earlier tokens, never
    another context's; pads see the first token only; terms point at their context's columns."""
    import numpy as np
    import torch

    from interp.engines.nn_traces import answer_pass

    terms = np.array([[0, 1, 7], [1, 0, 8], [2, 0, 9]])
    a = answer_pass([3, 5], 5, [0, 0, 1], [[10, 11], [12], [13]], terms, pad=99, dtype=torch.float32)
    assert a.tokens.tolist() == [[10, 11, 12], [13, 99, 99]]
    assert a.positions.tolist() == [[3, 4, 3], [5, 0, 0]]
    assert (a.rows.tolist(), a.cols.tolist(), a.targets.tolist()) == ([0, 0, 1], [1, 2, 0], [7, 8, 9])
    assert a.mask.shape == (2, 1, 3, 8) and a.mask.dtype == torch.float32
    seen = (a.mask[:, 0] == 0).int().tolist()  # [prompt, query, key]: cache keys 0-4, then the row's own 5-7
    assert seen[0] == [[1, 1, 1, 0, 0, 1, 0, 0], [1, 1, 1, 0, 0, 1, 1, 0], [1, 1, 1, 0, 0, 0, 0, 1]]
    assert seen[1] == [[1, 1, 1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]]
    assert float(a.mask.min()) == torch.finfo(torch.float32).min
    half = answer_pass([3, 5], 5, [0, 0, 1], [[10, 11], [12], [13]], terms, pad=99, dtype=torch.bfloat16)
    assert half.mask.dtype == torch.bfloat16 and torch.equal(half.mask == 0, a.mask == 0)


def test_the_engine_builds_gpt2_mlps_with_the_fused_activation():
    """The nnsight engine's GPT-2 MLPs compute ``gelu_new`` as the default engine's build does (one temporary, the
    same function): no ``NewGELUActivation`` is left, and the output equals Hugging Face's own module's."""
    import torch
    from transformers.activations import NewGELUActivation

    from interp.activations import fuse_hf_activations

    model = interp.models.load_model("embedded", engine="nnsight")
    acts = [m for m in model.module.modules() if type(m).__name__ in ("NewGELUActivation", "GeluTanh")]
    assert acts and all(type(m).__name__ == "GeluTanh" for m in acts)
    x = torch.randn(4, 7, 64, generator=torch.Generator().manual_seed(0)) * 3
    torch.testing.assert_close(acts[0](x), NewGELUActivation()(x), atol=1e-6, rtol=0)
    holder = torch.nn.Sequential(torch.nn.Linear(2, 2), NewGELUActivation(), torch.nn.Sequential(NewGELUActivation()))
    assert fuse_hf_activations(holder) == 2 and fuse_hf_activations(holder) == 0

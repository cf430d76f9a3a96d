"""ONNX -> PyTorch import (`training/onnx_import.py`, `train.init_from_onnx`): needs torch (run with
`make test-training`); skipped when torch is missing."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from training import mixing as MX  # noqa: E402
from training import model_setup as MS  # noqa: E402
from training import train as T  # noqa: E402
from training.export import export_model  # noqa: E402
from training.onnx_import import OnnxImportError, import_onnx  # noqa: E402

# small but with every kind of layer the shipped models have: select, look-ahead, per-frame
# blocks, brightness normalisation, a 2-layer GRU
MODEL = {"hidden": 64, "visual_dim": 16, "frame_dim": 32, "gru_layers": 2, "post_blocks": 1,
         "post_width": 48, "select": True, "roi_norm": True, "lookahead": 2}


def _cfg(kind: str, **model) -> dict:
    return {"name": "import-test", "model": {"kind": kind, **MODEL, **model}, "train": {}}


def _trained_like(cfg: dict, seed: int) -> torch.nn.Module:
    """A model whose every parameter is random (not the init's zeros and ones), as trained ones are."""
    torch.manual_seed(seed)
    m = MS.make_model(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.3)
    return m


@pytest.mark.parametrize("kind", ["av", "audio"])
def test_import_restores_every_exported_parameter(tmp_path, kind):
    cfg = _cfg(kind)
    src = _trained_like(cfg, 0)
    export_model(src, cfg, tmp_path / "src.onnx")
    dst = _trained_like(cfg, 1)
    before = copy.deepcopy(dst.state_dict())
    fresh = import_onnx(dst, cfg, tmp_path / "src.onnx")
    # only the AV model's training-only head (target energy of the next chunk) is not exported
    assert fresh == (["aux.weight", "aux.bias"] if kind == "av" else [])
    for k, v in dst.state_dict().items():
        want = before[k] if k.startswith("aux.") else src.state_dict()[k]
        assert torch.equal(v, want), k
    # and it separates the same: one streaming call through both
    torch.manual_seed(2)
    mix = torch.randn(2, 2, 4, 257)
    head = [mix] + ([torch.rand(2, 1, 48, 48)] if kind == "av" else [])
    state = list(src.initial_state(2).values())
    with torch.no_grad():
        a, b = src.eval()(*head, *state), dst.eval()(*head, *state)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_import_refuses_another_configuration_naming_the_file(tmp_path):
    cfg = _cfg("av")
    export_model(_trained_like(cfg, 0), cfg, tmp_path / "src.onnx")
    other = _cfg("av", hidden=80)
    with pytest.raises(OnnxImportError, match=r"src\.onnx.*another configuration"):
        import_onnx(MS.make_model(other), other, tmp_path / "src.onnx")
    audio = _cfg("audio")
    with pytest.raises(OnnxImportError, match=r"src\.onnx"):
        import_onnx(MS.make_model(audio), audio, tmp_path / "src.onnx")


def test_import_refuses_missing_and_corrupt_files(tmp_path):
    cfg = _cfg("audio")
    with pytest.raises(FileNotFoundError, match="nothere.onnx"):
        import_onnx(MS.make_model(cfg), cfg, tmp_path / "nothere.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(OnnxImportError, match=r"bad\.onnx"):
        import_onnx(MS.make_model(cfg), cfg, bad)


def test_init_weights_takes_the_onnx_file_of_its_kind(tmp_path):
    logs = []
    for kind, key in [("av", "init_from_onnx"), ("audio", "init_from_onnx_audio")]:
        cfg = _cfg(kind)
        src = _trained_like(cfg, 0)
        export_model(src, cfg, tmp_path / f"{kind}.onnx")
        dst = _trained_like(cfg, 1)
        # both keys set: each kind picks its own; init_from (a run directory) is not consulted
        t = {"init_from_onnx": str(tmp_path / "av.onnx"), "init_from_onnx_audio": str(tmp_path / f"{kind}.onnx"),
             "init_from": "no-such-run"} if kind == "audio" else {key: str(tmp_path / "av.onnx"), "init_from": "no-such-run"}
        MS.init_weights(dst, t, cfg, "cpu", logs.append)
        assert torch.equal(dst.state_dict()["head.weight"], src.state_dict()["head.weight"])
    assert any("imported from" in m and "av.onnx" in m for m in logs)
    assert any("imported from" in m and "audio.onnx" in m for m in logs)


def test_a_pinned_sha256_refuses_another_file(tmp_path):
    cfg = _cfg("audio")
    export_model(_trained_like(cfg, 0), cfg, tmp_path / "a.onnx")
    t = {"init_from_onnx_audio": str(tmp_path / "a.onnx"), "init_from_onnx_audio_sha256": "0" * 64}
    with pytest.raises(OnnxImportError, match=r"a\.onnx: sha256 .* pins 0{64}"):
        MS.init_weights(MS.make_model(cfg), t, cfg, "cpu", print)
    import hashlib

    t["init_from_onnx_audio_sha256"] = hashlib.sha256((tmp_path / "a.onnx").read_bytes()).hexdigest()
    MS.init_weights(MS.make_model(cfg), t, cfg, "cpu", print)


# --- python -m training soup (training/soup.py): weight averages of runs and exported files ---

def test_soup_averages_a_run_and_an_onnx_file(tmp_path, monkeypatch):
    from training import soup as SO

    monkeypatch.setattr(SO, "run_dir", lambda cfg: tmp_path / "runs" / cfg.get("run_name", cfg["name"]))
    for kind in ("av", "audio"):
        cfg = _cfg(kind)
        a, b = _trained_like(cfg, 0), _trained_like(cfg, 1)
        export_model(a, cfg, tmp_path / f"a-{kind}.onnx")
        run = tmp_path / "runs" / ("b" + ("-audio" if kind == "audio" else ""))
        run.mkdir(parents=True)
        torch.save({"model": b.state_dict()}, run / "model.pt")
        cfg = dict(cfg, name="s", soup={"members": [
            {"onnx": str(tmp_path / "a-av.onnx"), "onnx_audio": str(tmp_path / "a-audio.onnx"), "weight": 0.25},
            {"run": "b", "weight": 0.75}]})
        if kind == "audio":
            cfg["run_name"] = "s-audio"
        got = torch.load(SO.soup(cfg, log=lambda m: None), weights_only=False)["model"]
        for k, v in got.items():
            # the file lacks the AV model's training-only head: it comes from the run alone
            want = b.state_dict()[k] if k.startswith("aux.") else 0.25 * a.state_dict()[k] + 0.75 * b.state_dict()[k]
            assert torch.allclose(v, want, atol=1e-6), k


def test_soup_of_one_onnx_file_is_that_file_as_a_run(tmp_path, monkeypatch):
    """How a GPU lease gets its start (scripts/gpu-train.sh): the file's weights exactly, and the
    AV model's training-only head, which no file holds, freshly initialised."""
    from training import soup as SO

    monkeypatch.setattr(SO, "run_dir", lambda cfg: tmp_path / "runs" / cfg["name"])
    cfg = _cfg("av")
    a = _trained_like(cfg, 0)
    export_model(a, cfg, tmp_path / "a.onnx")
    got = torch.load(SO.soup(dict(cfg, name="one", soup={"members": [{"onnx": str(tmp_path / "a.onnx"), "weight": 1.0}]}),
                             log=lambda m: None), weights_only=False)["model"]
    assert set(got) == set(a.state_dict())
    for k, v in got.items():
        if k.startswith("aux."):
            assert not torch.equal(v, a.state_dict()[k]), k  # not the source's: no file holds it
        else:
            assert torch.equal(v, a.state_dict()[k]), k


def test_soup_refuses_bad_weights_and_members(tmp_path):
    from training import soup as SO

    cfg = dict(_cfg("audio"), soup={"members": [{"run": "x", "weight": 0.5}, {"run": "y", "weight": 0.6}]})
    with pytest.raises(ValueError, match="add up to 1"):
        SO.soup(cfg)
    cfg["soup"] = {"members": []}
    with pytest.raises(ValueError, match="at least one"):
        SO.soup(cfg)
    cfg["soup"] = {"members": [{"weight": 0.5}, {"run": "no-such-run-anywhere", "weight": 0.5}]}
    with pytest.raises(ValueError, match="run = ... or onnx"):
        SO.soup(cfg)


def test_train_refuses_a_wrong_start_file_before_loading_data(tmp_path, monkeypatch, capsys):
    from training import __main__ as CLI

    monkeypatch.setattr(T, "run_dir", lambda cfg: tmp_path / "runs" / cfg["name"])
    # no data anywhere under this name: the run must stop on the file before it looks for data
    monkeypatch.setattr(T, "data_dir", lambda cfg: tmp_path / "no-data")
    monkeypatch.setattr(MX, "data_dir", lambda cfg: tmp_path / "no-data")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('name = "pre"\nseed = 1\n[model]\nkind = "audio"\n[train]\n'
                        f'init_from_onnx_audio = "{tmp_path / "missing.onnx"}"\n')
    assert CLI.main(["train", "--config", str(cfg_path)]) == 2
    assert "missing.onnx does not exist" in capsys.readouterr().err
    cfg = _cfg("audio")
    export_model(_trained_like(cfg, 0), cfg, tmp_path / "a.onnx")
    cfg_path.write_text('name = "pre"\nseed = 1\n[model]\nkind = "audio"\n[train]\n'
                        f'init_from_onnx_audio = "{tmp_path / "a.onnx"}"\ninit_from_onnx_audio_sha256 = "{"1" * 64}"\n')
    assert CLI.main(["train", "--config", str(cfg_path)]) == 2
    assert "a.onnx: sha256" in capsys.readouterr().err

"""Config files (training/config.py): every committed config loads; `base` inheritance."""

from __future__ import annotations

import tomllib

import pytest

from training.config import ROOT, load


def test_every_committed_config_loads_with_its_own_name():
    for path in sorted((ROOT / "training" / "configs").glob("*.toml")):
        cfg = load(path)
        assert cfg["name"] == tomllib.loads(path.read_text()).get("name", path.stem), path
        assert "base" not in cfg and {"synth", "model", "train", "export"} <= set(cfg), path


def test_base_merges_sections_and_keeps_the_name_its_own(tmp_path):
    (tmp_path / "control.toml").write_text(
        'name = "control"\nseed = 5\n[model]\nhidden = 384\npost_blocks = 2\n'
        '[train]\nsteps = 100\ninit = { a = "x", b = "y" }\n')
    (tmp_path / "exp.toml").write_text(
        'base = "control.toml"\n[model]\npost_blocks = 4\n[train]\ninit = { a = "z" }\n')
    cfg = load(tmp_path / "exp.toml")
    assert cfg["name"] == "exp" and cfg["seed"] == 5
    assert cfg["model"] == {"hidden": 384, "post_blocks": 4}
    assert cfg["train"] == {"steps": 100, "init": {"a": "z"}}  # a table value is replaced, not merged
    assert load(tmp_path / "control.toml")["model"]["post_blocks"] == 2


def test_missing_base_names_the_file(tmp_path):
    (tmp_path / "exp.toml").write_text('base = "absent.toml"\n')
    with pytest.raises(FileNotFoundError, match="absent.toml"):
        load(tmp_path / "exp.toml")


def test_a_malformed_or_missing_config_is_named_with_exit_2(tmp_path, capsys):
    from training.__main__ import main

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x" y\n')
    assert main(["evaluate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: not valid TOML" in err and "line 1" in err
    assert main(["synth", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: no such config" in capsys.readouterr().err


def test_train_threads_below_one_are_refused(tmp_path, capsys):
    from training.__main__ import main

    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('name = "c"\n[train]\nthreads = 1\n')
    assert main(["train", "--config", str(cfg_path), "--threads", "0"]) == 2
    assert "--threads 0: must be >= 1" in capsys.readouterr().err


def test_train_threads_override_the_config(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from training.__main__ import main
    import training.train as T

    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('name = "c"\n[train]\nthreads = 1\n')
    seen = {}
    monkeypatch.setattr(T, "train", lambda cfg: seen.update(cfg["train"]))
    assert main(["train", "--config", str(cfg_path), "--threads", "2"]) == 0
    assert seen["threads"] == 2

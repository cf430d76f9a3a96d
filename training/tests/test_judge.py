"""`python -m training judge`: rule files are checked, and a rule's verdict follows its bounds
(numpy only: runs in CI)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from training import judge as J
from training.config import ROOT


def _rule(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


RULE = """
name = "t"
rank = ["val_2spk", "val_geometry_2spk"]
[[require]]
mean = ["val_2spk", "val_geometry_2spk"]
min = 8.0
[[require]]
figure = "silent_db"
max = -30
"""


def test_verdict_follows_the_bounds_and_the_rank(tmp_path):
    rule = J.load_rule(_rule(tmp_path, RULE))
    figs = {
        "a": {"val_2spk": 8.2, "val_geometry_2spk": 7.9, "silent_db": -50.0},  # mean 8.05: passes
        "b": {"val_2spk": 8.4, "val_geometry_2spk": 7.8, "silent_db": -50.0},  # mean 8.10: passes, ranks first
        "c": {"val_2spk": 9.0, "val_geometry_2spk": 9.0, "silent_db": -20.0},  # silent faces too loud
        "d": {"val_2spk": 8.1, "val_geometry_2spk": 7.8, "silent_db": -50.0},  # mean 7.95
        "e": {"val_2spk": 9.0, "silent_db": -50.0},                             # a figure missing: fails
    }
    v = J.apply_rule(rule, figs)
    assert v["passed"] == ["a", "b"]
    assert v["ships"] == "b"
    text, value, ok = v["checks"]["d"][0]
    assert text == "mean(val_2spk, val_geometry_2spk) >= 8" and value == pytest.approx(7.95) and not ok
    assert math.isnan(v["checks"]["e"][0][1])
    assert "ships: b" in J.format_verdict(v)


def test_nothing_passes_means_the_shipped_model_stays(tmp_path):
    rule = J.load_rule(_rule(tmp_path, RULE))
    v = J.apply_rule(rule, {"a": {"val_2spk": 7.0, "val_geometry_2spk": 7.0, "silent_db": -50.0}})
    assert v["ships"] is None and v["passed"] == []
    assert "ships: none (the shipped model stays)" in J.format_verdict(v)


@pytest.mark.parametrize("text, culprit", [
    ('[[require]]\nfigure = "test_2spk"\nmin = 8\n', "scored only after the decision"),
    ('[[require]]\nfigure = "val_2spkk"\nmin = 8\n', "unknown figure 'val_2spkk'"),
    ('[[require]]\nfigure = "val_2spk"\n', "needs min or max"),
    ('[[require]]\nfigure = "val_2spk"\nmean = ["val_3spk"]\nmin = 1\n', "exactly one of"),
    ('[[require]]\nfigure = "val_2spk"\nmin = "8"\n', "is not a number"),
    ('[[require]]\nfigure = "val_2spk"\nmin = 8\nmargin = 1\n', "unknown keys ['margin']"),
    ('name = "x"\n', "no [[require]] entries"),
    ('[[require]\n', "not valid TOML"),
    ('rank = ["test_real_2spk"]\n[[require]]\nfigure = "val_2spk"\nmin = 8\n', "rank"),
])
def test_bad_rule_files_are_refused_naming_the_entry(tmp_path, text, culprit):
    with pytest.raises(J.RuleError) as e:
        J.load_rule(_rule(tmp_path, text))
    assert culprit in str(e.value) and "r.toml" in str(e.value)


def test_committed_rules_load_and_measure_only_validation_and_training_voices():
    rules = sorted((ROOT / "training" / "rules").glob("*.toml"))
    assert rules
    for path in rules:
        rule = J.load_rule(path)
        for name in J.figures_needed(rule):
            split = J.FIGURES[name][0]
            assert split in ("val", "val_real") or split.startswith("fit:"), (path, name)
            assert "test" not in split


def test_cli_needs_a_rule_and_a_candidate(capsys):
    from training import __main__ as CLI

    assert CLI.main(["judge", "--config", str(ROOT / "training/configs/cpu.toml")]) == 2
    assert "--rule FILE" in capsys.readouterr().err
    assert CLI.main(["judge", "--config", str(ROOT / "training/configs/cpu.toml"), "--rule", "no-such.toml",
                     "--candidate", "models/separator.onnx"]) == 2
    assert "no-such.toml: no such rule file" in capsys.readouterr().err

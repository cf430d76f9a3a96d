"""The pins in training/pyproject.toml are the ones the venvs install."""

from __future__ import annotations

import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _reqs(name: str) -> set[str]:
    lines = (HERE / name).read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def test_pyproject_pins_match_requirements():
    p = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    base = set(p["dependencies"])
    assert all("==" in d for d in base | set().union(*map(set, p["optional-dependencies"].values())))
    assert base | set(p["optional-dependencies"]["ci"]) == _reqs("requirements-ci.txt")
    assert base | set(p["optional-dependencies"]["train"]) == _reqs("requirements-train.txt")

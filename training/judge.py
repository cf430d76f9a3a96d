"""Apply a shipping rule to candidate models: `python -m training judge --config
training/configs/cpu.toml --rule training/rules/v17.toml --model A.onnx [--model B.onnx ...]`
(numpy + ONNX Runtime, like `evaluate`; writes nothing unless `--out` names a file).

Every candidate since v4 was decided by a rule written in models/MODELS.md before any figure of
it, and applied by hand from the figures of several commands. A rule file says the same thing in
a form this module checks mechanically: which figures, which bounds, and how the candidates that
pass are ranked. The figures are measured as MODELS.md measures them, on the validation splits
and on scenes of the training voices, never on `test`/`test_real`: the test splits are scored
only after the decision (a rule that names one is refused).

Rule file (TOML):
    name = "v17"
    rank = ["val_2spk", "val_geometry_2spk"]   # the passing candidate with the highest mean ships
    [[require]]
    mean = ["val_2spk", "val_geometry_2spk"]   # or figure = "val_2spk"
    min = 8.044                                # and/or max = ...
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

# name -> (split, camera, talker group, key of evaluate.score's by_talkers entry). `fit_*` figures
# are scored on the first shard (250 scenes) of a training split, as `python -m training fit`.
FIGURES: dict[str, tuple[str, str | None, str, str]] = {
    "val_2spk": ("val", None, "2spk", "si_sdri"),
    "val_3spk": ("val", None, "3spk", "si_sdri"),
    "val_shift_2spk": ("val", "shift", "2spk", "si_sdri"),
    "val_geometry_2spk": ("val", "geometry", "2spk", "si_sdri"),
    "val_real_2spk": ("val_real", None, "2spk", "si_sdri"),
    "val_real_3spk": ("val_real", None, "3spk", "si_sdri"),
    "val_assign_2spk": ("val", None, "2spk", "assign"),
    "silent_db": ("val", None, "all", "silent_db"),
    "fit_train_2spk": ("fit:train", None, "2spk", "si_sdri"),
    "fit_stack_2spk": ("fit:stack", None, "2spk", "si_sdri"),
    "fit_train_more_2spk": ("fit:train_more", None, "2spk", "si_sdri"),
}


class RuleError(ValueError):
    """A rule file that cannot be applied; the message names the file and the entry."""


def load_rule(path: str | Path) -> dict:
    """Read and check a rule file: every requirement names known figures and at least one bound."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such rule file")
    try:
        rule = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"{path}: not valid TOML: {e}") from e
    reqs = rule.get("require")
    if not isinstance(reqs, list) or not reqs:
        raise RuleError(f"{path}: no [[require]] entries")
    for i, r in enumerate(reqs):
        where = f"{path}: require[{i}]"
        names = _names(r, where)
        for n in names:
            _check_figure(n, where)
        if "min" not in r and "max" not in r:
            raise RuleError(f"{where}: needs min or max")
        for bound in ("min", "max"):
            if bound in r and not isinstance(r[bound], (int, float)):
                raise RuleError(f"{where}: {bound} = {r[bound]!r} is not a number")
        unknown = set(r) - {"figure", "mean", "min", "max"}
        if unknown:
            raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    for n in rule.get("rank", []):
        _check_figure(n, f"{path}: rank")
    rule.setdefault("name", path.stem)
    return rule


def _names(req: dict, where: str) -> list[str]:
    if ("figure" in req) == ("mean" in req):
        raise RuleError(f"{where}: give exactly one of figure = \"...\" or mean = [...]")
    names = [req["figure"]] if "figure" in req else req["mean"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RuleError(f"{where}: figure/mean must name figures")
    return names


def _check_figure(name: str, where: str) -> None:
    if name.startswith(("test", "fit_test")):
        raise RuleError(f"{where}: {name!r}: the test splits are scored only after the decision")
    if name not in FIGURES:
        raise RuleError(f"{where}: unknown figure {name!r} (known: {', '.join(FIGURES)})")


def figures_needed(rule: dict) -> list[str]:
    out: list[str] = []
    for r in rule["require"]:
        out += _names(r, "")
    out += rule.get("rank", [])
    return list(dict.fromkeys(out))


def apply_rule(rule: dict, figures: dict[str, dict[str, float]]) -> dict:
    """figures: {candidate: {figure: value}} -> {"checks": {candidate: [(requirement text, value,
    passed)]}, "passed": [candidates], "ships": candidate or None}. A missing or NaN figure fails."""
    checks: dict[str, list] = {}
    for cand, figs in figures.items():
        rows = []
        for r in rule["require"]:
            names = _names(r, "")
            vals = [figs.get(n, math.nan) for n in names]
            v = sum(vals) / len(vals)
            ok = not math.isnan(v) and v >= r.get("min", -math.inf) and v <= r.get("max", math.inf)
            text = (names[0] if len(names) == 1 else f"mean({', '.join(names)})") + "".join(
                f" {op} {r[b]:g}" for b, op in (("min", ">="), ("max", "<=")) if b in r)
            rows.append((text, v, ok))
        checks[cand] = rows
    passed = [c for c, rows in checks.items() if all(ok for _, _, ok in rows)]
    rank = rule.get("rank", [])

    def score(c: str) -> float:
        return sum(figures[c][n] for n in rank) / len(rank) if rank else 0.0

    ships = max(passed, key=score) if passed else None
    return {"rule": rule["name"], "checks": checks, "passed": passed, "ships": ships}


def measure(cfg: dict, model_path: str | Path, names: list[str], threads: int = 1, log=print) -> dict[str, float]:
    """The named figures of one exported model; each (split, camera) is scored once."""
    from .evaluate import scenes, score
    from .fit_check import first_shards
    from .onnx_run import OnnxSeparator

    model = OnnxSeparator(model_path, threads=threads)
    scored: dict[tuple[str, str | None], dict] = {}
    out = {}
    for n in names:
        split, camera, group, key = FIGURES[n]
        if (split, camera) not in scored:
            data = first_shards(cfg, split[4:]) if split.startswith("fit:") else scenes(cfg, split, camera)
            scored[(split, camera)] = score(model, data)["by_talkers"]
            log(f"[judge] {Path(model_path).name}: {split}{f' ({camera})' if camera else ''} scored")
        out[n] = float(scored[(split, camera)].get(group, {}).get(key, math.nan))
    return out


def format_verdict(verdict: dict) -> str:
    lines = [f"rule {verdict['rule']}:"]
    for cand, rows in verdict["checks"].items():
        lines.append(f"  {cand}: {'passes' if cand in verdict['passed'] else 'fails'}")
        lines += [f"    {'ok  ' if ok else 'FAIL'} {text}: {v:.3f}" for text, v, ok in rows]
    lines.append(f"ships: {verdict['ships']}" if verdict["ships"] else "ships: none (the shipped model stays)")
    return "\n".join(lines)


def judge(cfg: dict, rule_path: str | Path, models: list[str], threads: int = 1) -> dict:
    rule = load_rule(rule_path)
    names = figures_needed(rule)
    figures = {m: measure(cfg, m, names, threads) for m in models}
    verdict = apply_rule(rule, figures)
    verdict["figures"] = figures
    return verdict

"""Results tables (by split, oracle masks, by face) and SI-SDRi-vs-SNR plot from models/eval/*.json: `python -m training report`.

Prints the markdown table that models/MODELS.md carries and writes the plot as a small
hand-written SVG (no plotting library needed in CI).
"""

from __future__ import annotations

import json
from pathlib import Path

from .evaluate import EVAL_DIR, SNR_BINS

SPLIT_NAMES = {"test": "held-out TTS voices", "test_real": "held-out real voices"}
PLOT = EVAL_DIR.parent / "separator_sisdri_vs_snr.svg"


# The committed models' result files (what `make eval` writes). Only these: `evaluate` writes
# <model>-<split>.json there for any model it is given, and a candidate's file must not end up in
# the shipped table.
SHIPPED = ("separator", "separator-audio")


def load(eval_dir: Path = EVAL_DIR) -> list[dict]:
    paths = [eval_dir / f"{m}-{s}.json" for m in SHIPPED for s in SPLIT_NAMES]
    return [json.loads(p.read_text()) for p in sorted(paths) if p.is_file()]


def table(results: list[dict]) -> str:
    lines = ["| model | split | talkers | scenes | SI-SDR (dB) | SI-SDRi (dB) | SDRi (dB) | assignment | SI-SDRi, faces assigned right / wrong (dB) | silent face (dB re mixture) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = {"test": 0, "test_real": 1}
    for r in sorted(results, key=lambda r: (order.get(r["split"], 9), r["model_kind"] != "av")):
        for grp in ("2spk", "3spk"):
            d = r["by_talkers"].get(grp)
            if not d:
                continue
            assign = f"{d['assign']:.2f}" if "assign" in d else "n/a (oracle)"
            silent = f"{d['silent_db']:.1f}" if "silent_db" in d else "-"
            split_by = (" / ".join(f"{d[k]:.2f}" if k in d else "-" for k in ("si_sdri_assigned", "si_sdri_misassigned"))
                        if "assign" in d else "-")
            name = "AV" if r["model_kind"] == "av" else "audio-only"
            lines.append(f"| {name} (`{Path(r['model']).name}`) | {r['split']} ({SPLIT_NAMES.get(r['split'], '')}) | "
                         f"{grp[0]} | {d['scenes']} | {d['si_sdr']:.2f} | **{d['si_sdri']:.2f}** | {d['sdri']:.2f} | "
                         f"{assign} | {split_by} | {silent} |")
    return "\n".join(lines)


def svg_plot(results: list[dict], path: Path = PLOT) -> Path:
    """Mean SI-SDRi of 2-talker scenes per SNR bin, one line per (model, split)."""
    W, H, L, R, T, B = 560, 340, 60, 190, 20, 50
    lo, hi = -5.0, 20.0
    bins = [f"{a}..{b}" for a, b in SNR_BINS]
    series = []
    for r in results:
        pts = [(i, r["si_sdri_2spk_by_snr"][b]["mean"]) for i, b in enumerate(bins) if b in r["si_sdri_2spk_by_snr"]]
        if pts:
            series.append((f"{'AV' if r['model_kind'] == 'av' else 'audio-only'}, {r['split']}", pts))
    ys = [v for _, p in series for _, v in p] or [0.0]
    y0, y1 = min(0.0, min(ys)) - 1, max(ys) + 1
    X = lambda i: L + (W - L - R) * (i + 0.5) / len(bins)  # noqa: E731
    Y = lambda v: T + (H - T - B) * (y1 - v) / (y1 - y0)  # noqa: E731
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{Y(0):.1f}" x2="{W - R}" y2="{Y(0):.1f}" stroke="#999" stroke-dasharray="3,3"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>']
    step = 2 if y1 - y0 < 16 else 4
    v = step * int(y0 // step)
    while v <= y1:
        if v >= y0:
            out.append(f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v}</text>')
        v += step
    for i, b in enumerate(bins):
        out.append(f'<text x="{X(i):.1f}" y="{H - B + 16}" text-anchor="middle">{b}</text>')
    out.append(f'<text x="{(L + W - R) / 2:.0f}" y="{H - 12}" text-anchor="middle">input SNR, speech to noise (dB)</text>')
    out.append(f'<text x="14" y="{(T + H - B) / 2:.0f}" transform="rotate(-90 14 {(T + H - B) / 2:.0f})" '
               'text-anchor="middle">SI-SDRi, 2 talkers (dB)</text>')
    for j, (name, pts) in enumerate(series):
        c = colours[j % len(colours)]
        dash = "" if name.startswith("AV") else ' stroke-dasharray="6,3"'
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="'
                   + " ".join(f"{X(i):.1f},{Y(v):.1f}" for i, v in pts) + '"/>')
        for i, v in pts:
            out.append(f'<circle cx="{X(i):.1f}" cy="{Y(v):.1f}" r="3" fill="{c}"/>')
        ly = T + 14 + 18 * j
        out.append(f'<line x1="{W - R + 12}" y1="{ly - 4}" x2="{W - R + 36}" y2="{ly - 4}" stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{W - R + 42}" y="{ly}">{name}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
    return path


def face_table(results: list[dict]) -> str:
    """2-talker SI-SDRi per held-out face, AV against the baseline, one column pair per split:
    where the AV model reads a face well and where not (the baseline's column is the voices'
    difficulty, since it never sees the face)."""
    cols = []  # (header, {face: text})
    for split in ("test", "test_real"):
        rs = {r["model_kind"]: r.get("si_sdri_2spk_by_face", {}) for r in results if r["split"] == split}
        av, au = rs.get("av", {}), rs.get("audio", {})
        if not av:
            continue
        cols.append((f"{split}: AV (assignment)", {f: f"{v['si_sdri']:.2f} ({v['assign']:.2f})" for f, v in av.items()}))
        cols.append((f"{split}: audio-only", {f: f"{v['si_sdri']:.2f}" for f, v in au.items()}))
        cols.append((f"{split}: faces", {f: str(v["n"]) for f, v in av.items()}))
    if not cols:
        return ""
    faces = sorted({f for _, c in cols for f in c})
    lines = ["| face | " + " | ".join(h for h, _ in cols) + " |", "|---|" + "---|" * len(cols)]
    for f in faces:
        lines.append(f"| {f} | " + " | ".join(c.get(f, "-") for _, c in cols) + " |")
    return "\n".join(lines)


def oracle_table(eval_dir: Path = EVAL_DIR) -> str:
    """Oracle masks' SI-SDRi (training/oracle.py) per split, from models/eval/oracle/*.json."""
    from .oracle import MASKS

    rows = [json.loads(p.read_text()) for p in sorted((eval_dir / "oracle").glob("*.json"))]
    if not rows:
        return ""
    lines = ["| oracle (2 talkers, SI-SDRi dB) | " + " | ".join(MASKS) + " |",
             "|---|" + "---|" * len(MASKS)]
    for r in rows:
        lines.append(f"| {r['split']} ({r['faces']} faces) | "
                     + " | ".join(f"{r['si_sdri'][k]:.2f}" for k in MASKS) + " |")
    return "\n".join(lines)


def report(eval_dir: Path = EVAL_DIR) -> str:
    results = load(eval_dir)
    if not results:
        raise SystemExit(f"no results in {eval_dir}: run `python -m training evaluate` first")
    svg_plot(results)
    oracles, faces = oracle_table(eval_dir), face_table(results)
    return table(results) + "".join("\n\n" + t for t in (oracles, faces) if t)

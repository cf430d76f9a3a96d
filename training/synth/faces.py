"""Faces for synthesis and the mouth-ROI renderer (docs/SIGNAL.md "## Mouth crop").

Split (training/faces_split.json, respected strictly):
  * "train": the Solvay training faces except VAL_FACE_IDS;
  * "val":   VAL_FACE_IDS, four Solvay *training-side* faces kept out of training for model
             selection (held-out faces must not be used for model selection either);
  * "test":  the held-out faces (astronaut + Solvay x >= 1150).
Training crops are clipped to x < training_crop_max_x_exclusive so held-out pixels never leak.

Only the mouth ROI is rendered: the crop the model sees (square, side = 2.0 x mouth-corner
distance, centred on the corners' midpoint, grey, ROI_SIZE x ROI_SIZE). The mouth is animated
with the jaw-drop warp of scripts/make_demo_clip.py, driven by the speaker's own envelope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .common import bilinear, inpaint_red_boxes, smooth_noise, smoothstep

ROOT = Path(__file__).resolve().parents[2]
SPLIT_FILE = ROOT / "training" / "faces_split.json"
FACES_DIR = ROOT.parent / "shared" / "data" / "faces"

ROI_SIZE = 32
ROI_SIDE_PER_CORNER_DIST = 2.0
SUPERSAMPLE = 2  # render at 2x then box-downsample
VAL_FACE_IDS = ("solvay-03", "solvay-08", "solvay-13", "solvay-17")

# Mouth geometry relative to a Solvay face box (x0, y0, w, h), measured by eye on solvay-22
# (scripts/make_demo_clip.py): mouth centre at (0.53 w, 0.76 h), half width 0.17 w, chin 0.92 h.
MOUTH_REL = (0.53, 0.76)
HALF_WIDTH_REL = 0.17
CHIN_REL = 0.92
# astronaut: from scripts/make_demo_clip.py
ASTRONAUT = {"mouth_xy": (224.0, 148.5), "half_width": 19.5, "chin_y": 177.0}


@dataclass
class Face:
    face_id: str
    split: str
    grey: np.ndarray  # float64 photo region (already inpainted/clipped), grey levels 0..255
    origin: tuple[float, float]  # photo coordinates of grey[0, 0]
    mouth_xy: tuple[float, float]  # photo coordinates
    half_width: float
    chin_y: float
    mouth_grey: float  # cavity colour


def load_split() -> dict:
    return json.loads(SPLIT_FILE.read_text())


def face_ids(split: str) -> list[str]:
    s = load_split()
    train = [f["id"] for f in s["training"]["solvay_1927_29faces.png"]]
    if split == "train":
        return [i for i in train if i not in VAL_FACE_IDS]
    if split == "val":
        return list(VAL_FACE_IDS)
    if split == "test":
        return [f["id"] for faces in s["held_out"].values() for f in faces]
    raise ValueError(split)


_PHOTO_CACHE: dict[str, np.ndarray] = {}


def _photo_grey(name: str) -> np.ndarray:
    if name not in _PHOTO_CACHE:
        path = FACES_DIR / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: faces come from ../shared/data/faces")
        arr = np.asarray(Image.open(path).convert("RGB"))
        if name.startswith("solvay"):
            arr = inpaint_red_boxes(arr)
        a = arr.astype(np.float64)
        _PHOTO_CACHE[name] = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return _PHOTO_CACHE[name]


def load_faces(split: str) -> list[Face]:
    s = load_split()
    max_x = s["rule"]["training_crop_max_x_exclusive"]
    entries = {f["id"]: ("solvay_1927_29faces.png", f) for f in s["training"]["solvay_1927_29faces.png"]}
    for photo, faces in s["held_out"].items():
        for f in faces:
            entries[f["id"]] = (photo, f)
    out = []
    for fid in face_ids(split):
        photo, f = entries[fid]
        grey = _photo_grey(photo)
        if photo == "astronaut.png":
            mx, my = ASTRONAUT["mouth_xy"]
            hw, chin, cav = ASTRONAUT["half_width"], ASTRONAUT["chin_y"], 40.0
        else:
            x0, y0, x1, y1 = f["box_xyxy"]
            w, h = x1 - x0, y1 - y0
            mx, my = x0 + MOUTH_REL[0] * w, y0 + MOUTH_REL[1] * h
            hw, chin, cav = HALF_WIDTH_REL * w, y0 + CHIN_REL * h, 44.0
        # region around the mouth with room for scale/shift augmentation
        r = 4.0 * hw
        ax0, ay0 = int(np.floor(mx - r)), int(np.floor(my - r))
        ax1, ay1 = int(np.ceil(mx + r)) + 1, int(np.ceil(my + r)) + 1
        if split != "test":  # never include held-out pixels in a training/val crop
            ax1 = min(ax1, max_x)
        ax0, ay0 = max(ax0, 0), max(ay0, 0)
        ax1, ay1 = min(ax1, grey.shape[1]), min(ay1, grey.shape[0])
        out.append(Face(fid, split, grey[ay0:ay1, ax0:ax1].copy(), (ax0, ay0), (mx, my), hw, chin, cav))
    return out


def envelope_openings(x: np.ndarray, n_frames: int, sr: int, fps: int, lead_s: float,
                      rng: np.random.Generator, window_s: float = 0.040,
                      jitter: float = 0.12) -> np.ndarray:
    """Per-video-frame mouth opening in [0, 1] from one speaker's own signal (as in the demo).

    Frame f shows the envelope around time f / fps + lead_s (video leads audio by lead_s)."""
    half = int(window_s * sr / 2)
    rms = np.zeros(n_frames)
    for f in range(n_frames):
        c = int(round((f / fps + lead_s) * sr))
        a, b = max(c - half, 0), min(c + half, len(x))
        rms[f] = np.sqrt(np.mean(x[a:b] ** 2)) if b > a else 0.0
    if not np.any(rms > 1e-4):
        return np.zeros(n_frames)
    ref = np.percentile(rms[rms > 1e-4], 90)
    floor = 0.08 * ref
    o = np.clip((rms - floor) / max(ref - floor, 1e-9), 0.0, 1.0) ** 0.7
    o = np.convolve(np.pad(o, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    o = np.clip(o * (1.0 + jitter * smooth_noise(rng, n_frames, 3)), 0.0, 1.0)
    o[rms < floor] = 0.0
    return o


def render_mouth_rois(face: Face, openings: np.ndarray, rng: np.random.Generator,
                      augment: bool = True, max_jaw_drop: float = 0.65) -> np.ndarray:
    """Mouth ROI sequence uint8 [T, ROI_SIZE, ROI_SIZE] for per-frame openings in [0, 1].

    Geometry: centre = mouth-corner midpoint, side = 2.0 x corner distance (= 4 half widths).
    Augmentation (per sequence unless noted): horizontal flip, scale 0.85..1.15, centre offset
    (landmark error, per frame jitter + slow sway), brightness/contrast, Gaussian-ish blur."""
    T = len(openings)
    S = ROI_SIZE * SUPERSAMPLE
    hw = face.half_width
    mx, my = face.mouth_xy[0] - face.origin[0], face.mouth_xy[1] - face.origin[1]
    chin = face.chin_y - face.origin[1]
    if augment:
        scale = rng.uniform(0.85, 1.15)
        flip = rng.random() < 0.5
        sway = 0.06 * hw * np.stack([smooth_noise(rng, T, 7), smooth_noise(rng, T, 7)])
        jit = 0.03 * hw * rng.standard_normal((2, T))
        off = sway + jit + rng.uniform(-0.1, 0.1, (2, 1)) * hw
        gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
        blur = rng.uniform(0.0, 1.2)
        drop_scale = rng.uniform(0.7, 1.2)
    else:
        scale, flip, off, gain, bias, blur, drop_scale = 1.0, False, np.zeros((2, T)), 1.0, 0.0, 0.0, 1.0
    side = ROI_SIDE_PER_CORNER_DIST * 2.0 * hw * scale
    u = (np.arange(S) + 0.5) / S - 0.5  # -0.5..0.5
    if flip:
        u = -u
    gx, gy = np.meshgrid(u * side, u * side)  # offsets from ROI centre, photo pixels
    out = np.empty((T, S, S))
    for t in range(T):
        X = mx + off[0, t] + gx
        Y = my + off[1, t] + gy
        d = openings[t] * max_jaw_drop * drop_scale * hw
        if d > 0.05:
            a = hw * (0.80 + 0.10 * openings[t])
            ux = np.abs(X - mx)
            below = Y - my
            wx = 1.0 - smoothstep(1.05 * hw, 2.3 * hw, ux)
            split = 1.0 - smoothstep(0.55 * a, 0.95 * a, ux)
            top = split * (below >= 0) + (1.0 - split) * smoothstep(-0.5 * hw, 0.7 * hw, below)
            wy = top * (1.0 - smoothstep(chin - my, chin - my + 1.6 * hw, below))
            img = bilinear(face.grey[..., None], X, Y - d * wx * wy)[..., 0]
            cy, b = my + d * 0.5, d * 0.5 + 0.6
            r = (np.abs((X - mx) / a) ** 2.6 + np.abs((Y - cy) / b) ** 2) ** 0.5
            alpha = 1.0 - smoothstep(0.80, 1.0, r)
            img = img * (1 - alpha) + face.mouth_grey * (0.55 + 0.45 * np.clip(r, 0, 1)) * alpha
        else:
            img = bilinear(face.grey[..., None], X, Y)[..., 0]
        out[t] = img
    if blur > 0.05:  # separable 3-tap blur, strength by blend
        p = np.pad(out, ((0, 0), (1, 1), (0, 0)), mode="edge")
        b1 = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
        p = np.pad(b1, ((0, 0), (0, 0), (1, 1)), mode="edge")
        b2 = 0.25 * p[:, :, :-2] + 0.5 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
        w = min(blur, 1.0)
        out = (1 - w) * out + w * b2
    out = out.reshape(T, ROI_SIZE, SUPERSAMPLE, ROI_SIZE, SUPERSAMPLE).mean(axis=(2, 4))
    out = (out - 128.0) * gain + 128.0 + bias
    return np.clip(np.round(out), 0, 255).astype(np.uint8)

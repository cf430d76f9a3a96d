"""Faces for synthesis and the mouth-ROI renderer (docs/SIGNAL.md "## Mouth crop").

Split (training/faces_split.json, respected strictly):
  * "train": the Solvay training faces except VAL_FACE_IDS;
  * "val":   VAL_FACE_IDS, four Solvay *training-side* faces kept out of training for model
             selection (held-out faces must not be used for model selection either);
  * "test":  the held-out faces (astronaut + Solvay x >= 1150).
Training crops are clipped to x < training_crop_max_x_exclusive so held-out pixels never leak.

Geometry comes from the real detector: training/faces_landmarks.json holds CenterFace's box and
five landmarks for every face (`python -m training.synth.landmarks`). Per video frame the photo
region around the mouth is animated (the jaw-drop warp of scripts/make_demo_clip.py, driven by
the speaker's own envelope, centred on the CenterFace mouth corners) and the model's ROI is then
cut from that animated image by training/mouth_crop.py, the same function (and the same
definition as src/vision/crop.rs) the daemon applies at run time: 48 x 48, eye-line rotation,
side 1.8 x the mouth-corner distance clamped to [0.35, 0.8] x the box width, grey / 255.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import mouth_crop as MC
from ..config import SHARED
from .common import TRAINING_TTS_SPLITS, bilinear, blur3, inpaint_red_boxes, smooth_noise, smoothstep

ROOT = Path(__file__).resolve().parents[2]
SPLIT_FILE = ROOT / "training" / "faces_split.json"
LANDMARKS_FILE = ROOT / "training" / "faces_landmarks.json"
FACES_DIR = SHARED / "data" / "faces"

ROI_SIZE = MC.ROI_SIZE  # 48
VAL_FACE_IDS = ("solvay-03", "solvay-08", "solvay-13", "solvay-17")
CHIN_REL = 0.18  # chin below the mouth-corner midpoint, x the CenterFace box height
MOUTH_GREY = {"astronaut.png": 40.0, "solvay_1927_29faces.png": 44.0}  # cavity colour


@dataclass
class Face:
    face_id: str
    split: str
    grey: np.ndarray  # float64 photo region (already inpainted/clipped), grey levels 0..255
    origin: tuple[float, float]  # photo pixel index of grey[0, 0]
    bbox: np.ndarray  # CenterFace box [x0, y0, x1, y1], continuous photo pixels
    landmarks: np.ndarray  # CenterFace landmarks [5, 2] (x, y), continuous photo pixels
    mouth_grey: float  # cavity colour

    @property
    def mouth_xy(self) -> np.ndarray:  # continuous photo pixels
        return (self.landmarks[MC.LEFT_MOUTH] + self.landmarks[MC.RIGHT_MOUTH]) / 2.0

    @property
    def half_width(self) -> float:
        return float(np.hypot(*(self.landmarks[MC.RIGHT_MOUTH] - self.landmarks[MC.LEFT_MOUTH]))) / 2.0

    @property
    def chin_y(self) -> float:
        return float(self.mouth_xy[1] + CHIN_REL * (self.bbox[3] - self.bbox[1]))


def load_split() -> dict:
    return json.loads(SPLIT_FILE.read_text())


def face_ids(split: str) -> list[str]:
    s = load_split()
    train = [f["id"] for f in s["training"]["solvay_1927_29faces.png"]]
    if split in TRAINING_TTS_SPLITS:  # stack, train_more: more voices, the training faces
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


def load_landmarks() -> dict:
    return json.loads(LANDMARKS_FILE.read_text())["faces"]


def load_faces(split: str) -> list[Face]:
    s = load_split()
    max_x = s["rule"]["training_crop_max_x_exclusive"]
    lms = load_landmarks()
    out = []
    for fid in face_ids(split):
        e = lms[fid]
        grey = _photo_grey(e["photo"])
        bbox = np.array(e["bbox"], np.float64)
        lm = np.array(e["landmarks"], np.float64)
        mouth = (lm[MC.LEFT_MOUTH] + lm[MC.RIGHT_MOUTH]) / 2.0
        # region around the mouth with room for the largest crop (0.8 x box width, rotated,
        # jittered) and the warp
        r = 0.75 * (bbox[2] - bbox[0]) + 6.0
        ax0, ay0 = int(np.floor(mouth[0] - r)), int(np.floor(mouth[1] - r))
        ax1, ay1 = int(np.ceil(mouth[0] + r)) + 1, int(np.ceil(mouth[1] + r)) + 1
        if split != "test":  # never include held-out pixels in a training/val crop
            ax1 = min(ax1, max_x)
        ax0, ay0 = max(ax0, 0), max(ay0, 0)
        ax1, ay1 = min(ax1, grey.shape[1]), min(ay1, grey.shape[0])
        out.append(Face(fid, split, grey[ay0:ay1, ax0:ax1].copy(), (ax0, ay0), bbox, lm,
                        MOUTH_GREY[e["photo"]]))
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


def animate(face: Face, opening: float, drop_scale: float = 1.0, max_jaw_drop: float = 0.65) -> np.ndarray:
    """The face region (float64, same shape as face.grey) with the mouth opened by `opening` in
    [0, 1]: jaw-drop warp below the mouth line plus a dark cavity (scripts/make_demo_clip.py)."""
    hw = face.half_width
    mx, my = face.mouth_xy - np.array(face.origin) - 0.5  # continuous -> array index coordinates
    chin = face.chin_y - face.origin[1] - 0.5
    d = opening * max_jaw_drop * drop_scale * hw
    if d <= 0.05:
        return face.grey
    Y, X = np.mgrid[0:face.grey.shape[0], 0:face.grey.shape[1]].astype(np.float64)
    a = hw * (0.80 + 0.10 * opening)
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
    return img * (1 - alpha) + face.mouth_grey * (0.55 + 0.45 * np.clip(r, 0, 1)) * alpha


def render_mouth_rois(face: Face, openings: np.ndarray, rng: np.random.Generator,
                      augment: bool = True, max_jaw_drop: float = 0.65) -> np.ndarray:
    """Mouth ROI sequence uint8 [T, 48, 48] (= round(255 x mouth_crop)) for per-frame openings.

    Per frame: animate the face region, then training/mouth_crop.py with the face's CenterFace
    box and landmarks (region coordinates). Augmentation simulates detector and camera variation
    (per sequence unless noted): landmark noise (per-frame jitter + slow sway of the mouth
    corners and eyes: changes centre, side and angle as a real detector's noise does), mouth-corner
    distance scale 0.85..1.15, eye-line angle offset +-4 degrees, horizontal flip of the crop,
    camera blur of the animated image, brightness/contrast of the crop."""
    T = len(openings)
    hw = face.half_width
    org = np.array(face.origin, np.float64)
    bbox = face.bbox - np.concatenate([org, org])
    lm0 = face.landmarks - org
    if augment:
        scale = rng.uniform(0.85, 1.15)
        flip = rng.random() < 0.5
        sway = 0.06 * hw * np.stack([smooth_noise(rng, T, 7), smooth_noise(rng, T, 7)], axis=1)
        jit = 0.03 * hw * rng.standard_normal((T, 5, 2))
        off = sway[:, None, :] + jit + rng.uniform(-0.1, 0.1, (1, 1, 2)) * hw
        roll = np.deg2rad(rng.uniform(-4.0, 4.0))
        gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
        blur = rng.uniform(0.0, 1.2)
        drop_scale = rng.uniform(0.7, 1.2)
    else:
        scale, flip, off, roll, gain, bias, blur, drop_scale = 1.0, False, np.zeros((T, 5, 2)), 0.0, 1.0, 0.0, 0.0, 1.0
    base = lm0.copy()
    mc = (base[MC.LEFT_MOUTH] + base[MC.RIGHT_MOUTH]) / 2
    base[[MC.LEFT_MOUTH, MC.RIGHT_MOUTH]] = mc + scale * (base[[MC.LEFT_MOUTH, MC.RIGHT_MOUTH]] - mc)
    ec = (base[MC.LEFT_EYE] + base[MC.RIGHT_EYE]) / 2
    c, s = np.cos(roll), np.sin(roll)
    for k in (MC.LEFT_EYE, MC.RIGHT_EYE):
        v = base[k] - ec
        base[k] = ec + np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])
    out = np.empty((T, ROI_SIZE, ROI_SIZE))
    for t in range(T):
        img = animate(face, float(openings[t]), drop_scale, max_jaw_drop)
        if blur > 0.05:  # 3x3 binomial blur, strength by blend
            w = min(blur, 1.0)
            img = (1 - w) * img + w * blur3(img)
        out[t] = MC.mouth_crop_grey(img, bbox, base + off[t])
    if flip:
        out = out[:, :, ::-1]
    out = (out - 0.5) * gain + 0.5 + bias / 255.0
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)

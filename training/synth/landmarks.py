"""CenterFace landmarks of the still face photos, for the synthesis (numpy + onnxruntime).

`python -m training.synth.landmarks` runs models/centerface.onnx ONCE per photo and writes
training/faces_landmarks.json (committed; the synthesis reads only the JSON, so it needs no
onnxruntime). The decoder mirrors src/vision/decode.rs and src/vision/detector.rs:

  * input: raw 0..255 RGB, NCHW float32, sides rounded UP to a multiple of 32, the image in the
    top-left corner and zeros elsewhere (here at scale 1: `UPSCALE`, an integer up-scale per
    photo, bilinear as src/vision/image.rs's scale >= 1 branch, is 1 for both photos: all 30
    faces are found at native resolution);
  * outputs at stride 4: heatmap [1,1,h,w], scale [1,2,h,w] (log box height, width in stride
    units), offset [1,2,h,w] (y, x sub-cell offsets), landmarks [1,10,h,w] (y, x fractions of the
    box size from its top-left corner, five landmarks: left eye, right eye, nose, left mouth
    corner, right mouth corner);
  * candidates: heatmap cells > threshold that are 3x3 local maxima (ties to the first in scan
    order), then greedy NMS at IoU 0.3, boxes clamped to the image, coordinates divided by the
    scale.

Each face of training/faces_split.json is matched to the detection whose box centre is nearest
its hand box centre (and inside it). The Solvay photo is run after inpainting its red box outlines
(the same pixels the synthesis animates).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "centerface.onnx"
OUT_FILE = ROOT / "training" / "faces_landmarks.json"
STRIDE = 4.0
SIDE_MULTIPLE = 32
THRESHOLD = 0.5
NMS_IOU = 0.3
UPSCALE = {"solvay_1927_29faces.png": 1, "astronaut.png": 1}


def net_geometry(w: int, h: int, scale: float) -> tuple[int, int]:
    up = lambda v: max(-(-v // SIDE_MULTIPLE), 1) * SIDE_MULTIPLE  # noqa: E731
    return up(int(round(w * scale))), up(int(round(h * scale)))


def to_input(rgb: np.ndarray, scale: int) -> np.ndarray:
    """[1, 3, nh, nw] float32: the image up-scaled by an integer factor (bilinear, pixel centres,
    edges clamped, as src/vision/image.rs), zero padding right and below."""
    h, w, _ = rgb.shape
    nw, nh = net_geometry(w, h, scale)
    src = rgb.astype(np.float32)
    ow, oh = w * scale, h * scale
    sx = np.clip((np.arange(ow) + 0.5) / scale - 0.5, 0, w - 1)
    sy = np.clip((np.arange(oh) + 0.5) / scale - 0.5, 0, h - 1)
    x0, y0 = sx.astype(np.int64), sy.astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (sx - x0)[None, :, None], (sy - y0)[:, None, None]
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bot = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    img = top * (1 - fy) + bot * fy
    out = np.zeros((1, 3, nh, nw), np.float32)
    out[0, :, :oh, :ow] = img.transpose(2, 0, 1)
    return out


def _is_peak(hm: np.ndarray, cx: int, cy: int) -> bool:
    h, w = hm.shape
    s = hm[cy, cx]
    for y in range(max(cy - 1, 0), min(cy + 2, h)):
        for x in range(max(cx - 1, 0), min(cx + 2, w)):
            v = hm[y, x]
            if v > s or (v == s and (y, x) < (cy, cx)):
                return False
    return True


def decode(heatmap, scale, offset, landmarks, threshold: float = THRESHOLD) -> list[dict]:
    """Raw network outputs (batch 1) -> detections in network-input pixels (src/vision/decode.rs)."""
    hm = heatmap[0, 0]
    out = []
    for cy, cx in zip(*np.nonzero(hm > threshold)):
        if not _is_peak(hm, cx, cy):
            continue
        bh = float(np.exp(scale[0, 0, cy, cx])) * STRIDE
        bw = float(np.exp(scale[0, 1, cy, cx])) * STRIDE
        yc = (cy + float(offset[0, 0, cy, cx]) + 0.5) * STRIDE
        xc = (cx + float(offset[0, 1, cy, cx]) + 0.5) * STRIDE
        x0, y0 = xc - bw / 2, yc - bh / 2
        lms = [[x0 + float(landmarks[0, 2 * k + 1, cy, cx]) * bw,
                y0 + float(landmarks[0, 2 * k, cy, cx]) * bh] for k in range(5)]
        out.append({"bbox": [x0, y0, x0 + bw, y0 + bh], "score": float(hm[cy, cx]), "landmarks": lms})
    return out


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets: list[dict], thr: float = NMS_IOU) -> list[dict]:
    dets = sorted(dets, key=lambda d: -d["score"])
    kept = []
    for d in dets:
        if all(iou(k["bbox"], d["bbox"]) < thr for k in kept):
            kept.append(d)
    return kept


def detect(sess, rgb: np.ndarray, scale: int = 1) -> list[dict]:
    """Detections in image pixels, best first (src/vision/detector.rs CenterFace::detect)."""
    x = to_input(rgb, scale)
    hm, sc, off, lm = sess.run(None, {sess.get_inputs()[0].name: x})
    dets = nms(decode(hm, sc, off, lm))
    h, w = rgb.shape[:2]
    out = []
    for d in dets:
        b = [min(max(v / scale, 0.0), lim) for v, lim in zip(d["bbox"], (w, h, w, h))]
        if b[2] - b[0] >= 1 and b[3] - b[1] >= 1:
            out.append({"bbox": b, "score": d["score"],
                        "landmarks": [[p[0] / scale, p[1] / scale] for p in d["landmarks"]]})
    return out


def photo_rgb(name: str) -> np.ndarray:
    from PIL import Image

    from .common import inpaint_red_boxes
    from .faces import FACES_DIR

    arr = np.asarray(Image.open(FACES_DIR / name).convert("RGB"))
    return inpaint_red_boxes(arr) if name.startswith("solvay") else arr


def build() -> dict:
    import onnxruntime as ort

    from .faces import load_split

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(MODEL), so, providers=["CPUExecutionProvider"])
    split = load_split()
    entries: dict[str, list] = {}
    for f in split["training"]["solvay_1927_29faces.png"]:
        entries.setdefault("solvay_1927_29faces.png", []).append(f)
    for photo, faces in split["held_out"].items():
        entries.setdefault(photo, []).extend(faces)
    out = {"description": "CenterFace (models/centerface.onnx) boxes and landmarks [x, y] (continuous "
                          "photo pixels; left eye, right eye, nose, left mouth corner, right mouth "
                          "corner) of every face in training/faces_split.json. Regenerate with "
                          "`python -m training.synth.landmarks`.",
           "threshold": THRESHOLD, "nms_iou": NMS_IOU, "upscale": UPSCALE, "faces": {}}
    for photo, faces in entries.items():
        dets = detect(sess, photo_rgb(photo), UPSCALE[photo])
        for f in faces:
            x0, y0, x1, y1 = f["box_xyxy"]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            inside = [d for d in dets if x0 <= (d["bbox"][0] + d["bbox"][2]) / 2 <= x1
                      and y0 <= (d["bbox"][1] + d["bbox"][3]) / 2 <= y1]
            if not inside:
                raise RuntimeError(f"CenterFace found no face inside {f['id']} {f['box_xyxy']}")
            d = min(inside, key=lambda d: np.hypot((d["bbox"][0] + d["bbox"][2]) / 2 - cx,
                                                   (d["bbox"][1] + d["bbox"][3]) / 2 - cy))
            out["faces"][f["id"]] = {"photo": photo, "score": round(d["score"], 4),
                                     "bbox": [round(v, 3) for v in d["bbox"]],
                                     "landmarks": [[round(v, 3) for v in p] for p in d["landmarks"]]}
    return out


def main() -> None:
    info = build()
    OUT_FILE.write_text(json.dumps(info, indent=1) + "\n")
    print(f"{len(info['faces'])} faces -> {OUT_FILE}")


if __name__ == "__main__":
    main()

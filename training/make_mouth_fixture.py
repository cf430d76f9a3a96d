"""Write the mouth-crop fixture that pins src/vision/crop.rs to training/mouth_crop.py.

Run from the repository root:  python -m training.make_mouth_fixture [--source astronaut.png]

The frame is the shared astronaut photo (scikit-image's, public domain) downscaled to 256x256 and
committed as tests/fixtures/vision/mouth_frame.png; the face box and landmarks are what CenterFace
finds on the full-size photo (`avsepd faces astronaut.png --json`), halved. With the committed
PNG present the source photo is not needed: only the crop is recomputed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from training.config import SHARED
from training.mouth_crop import ROI_SIZE, mouth_crop

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "vision"
FRAME = FIXTURE_DIR / "mouth_frame.png"
# CenterFace on the 512x512 astronaut.png, scaled by 0.5 for the 256x256 frame.
BBOX = [90.75, 29.1, 134.95, 88.9]
LANDMARKS = [[101.6, 50.85], [123.5, 52.25], [111.65, 62.55], [101.7, 71.15], [120.65, 72.2]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", type=Path, default=SHARED / "data/faces/astronaut.png")
    args = ap.parse_args()
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    if not FRAME.exists():
        Image.open(args.source).convert("RGB").resize((256, 256), Image.BILINEAR).save(FRAME)
    rgb = np.asarray(Image.open(FRAME).convert("RGB"))
    crop = mouth_crop(rgb, BBOX, LANDMARKS)
    out = {"bbox": BBOX, "landmarks": LANDMARKS, "roi_size": ROI_SIZE,
           "crop": [round(float(v), 6) for v in crop.ravel()]}
    (FIXTURE_DIR / "mouth_crop.json").write_text(json.dumps(out) + "\n")
    Image.fromarray(np.round(crop * 255).astype(np.uint8)).save(FIXTURE_DIR / "mouth_crop_preview.png")
    print(f"wrote {FIXTURE_DIR}/mouth_crop.json ({ROI_SIZE}x{ROI_SIZE})")


if __name__ == "__main__":
    main()

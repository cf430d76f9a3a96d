#!/usr/bin/env python3
"""Build avsepd's bundled demo clip (two talking faces, overlapping speech).

Usage (from the repository root, with the project venv):

    python scripts/make_demo_clip.py --out demo/

Writes
    <out>/demo.mp4                   640x360, 25 fps, H.264 (I420, Main) + AAC 48 kHz mono, 10 s
    <out>/sources/speaker-0.wav      left face's voice   (16 kHz mono s16, clip timeline)
    <out>/sources/speaker-1.wav      right face's voice
    <out>/sources/mixture.wav        speaker-0 + speaker-1 (exactly, sample by sample)
    <out>/sources/manifest.json      faces, voices, texts, segment times, seed, version

Everything is deterministic: fixed texts, fixed espeak-ng voices, fixed seed for
the jitter/sway, fixed hard-coded face geometry.  The WAVs and the manifest are
byte-reproducible for a given espeak-ng version; the MP4 is made reproducible
by zeroing the creation/modification times that mp4mux writes.

Faces: both are HELD OUT from training (see training/faces_split.json):
left = astronaut.png (the only face), right = Solvay 1927 face "solvay-22"
(M. Born).  The mouth animation is a plain image warp (numpy + PIL): the lower
jaw region is pulled down by an amount proportional to the speaker's own speech
envelope and the gap is filled with a dark ellipse.  Not photorealistic, but
the mouth opens and closes with the speaker's speech and stays shut in silence.

Needs: numpy, pillow, espeak-ng, gst-launch-1.0 (+ x264enc, avenc_aac, mp4mux).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.synth.faces import envelope_openings  # noqa: E402
from training.synth.common import (  # noqa: E402  (shared with the training data synthesis)
    bilinear,
    inpaint_red_boxes,
    read_wav,
    resample_fft,
    smooth_noise,
    smoothstep,
)

SCRIPT_VERSION = "1.0.0"
SEED = 20270127

SR = 16_000  # ground-truth / model sample rate
FPS = 25
DURATION_S = 10.0
N_SAMPLES = int(round(DURATION_S * SR))
N_FRAMES = int(round(DURATION_S * FPS))
SAMPLES_PER_FRAME = SR // FPS  # 640
WIDTH, HEIGHT = 640, 360
TILE_W, TILE_H = 240, 300
TILE_MARGIN = 12  # extra pixels rendered around each tile so head sway has content to move into
TILE_Y = 22
TILE_X = (40, 360)  # left edge of the left/right tile
BACKGROUND = (112, 114, 118)

# Speech level: every source is scaled so that the RMS over its *active*
# segments is TARGET_RMS (full scale = 1.0).  The mixture is then
# peak-limited by scaling BOTH sources by the same factor.
TARGET_RMS = 0.06
PEAK_LIMIT = 0.89  # about -1 dBFS

# Mouth timing: in natural speech the visible articulation precedes the
# acoustic onset by a few tens of ms.  The mouth opening drawn at clip time t
# is taken from the audio envelope around t + AV_LEAD_S (video leads audio).
AV_LEAD_S = 0.060
ENV_WINDOW_S = 0.040
AAC_PRIMING_48K = 1024  # encoder delay of avenc_aac, compensated in main()  # RMS window centred on each (lead-shifted) frame time

FACES = [
    {
        # NASA portrait (Eileen Collins), via scikit-image sample data.  Public domain.
        "speaker": 0,
        "position": "left",
        "photo": "astronaut.png",
        "face_id": "astronaut-0",
        "held_out": True,
        # Head crop in original photo pixels [x0, y0, x1, y1) (aspect 4:5 = tile aspect).
        "crop_xyxy": [139, 10, 311, 225],
        # Picked by eye on the original photo: centre of the lip line (between
        # the upper teeth and the lower lip; she smiles), half mouth width,
        # chin tip y.
        "mouth_xy": [224.0, 148.5],
        "mouth_half_width": 19.5,
        "chin_y": 177.0,
        "max_jaw_drop": 0.55,  # in mouth half-widths
        "mouth_colour": (52, 18, 20),
        "prefilter_blur": 0.0,
    },
    {
        # 1927 Solvay conference photograph by Benjamin Couprie.  Public domain.
        "speaker": 1,
        "position": "right",
        "photo": "solvay_1927_29faces.png",
        "face_id": "solvay-22",
        "name": "M. Born",
        "held_out": True,
        "face_box_xyxy": [1259, 207, 1320, 268],
        "crop_xyxy": [1244, 176, 1336, 291],
        "mouth_xy": [1291.5, 253.5],
        "mouth_half_width": 10.5,
        "chin_y": 263.5,
        "max_jaw_drop": 0.7,
        "mouth_colour": (44, 44, 44),
        # The print is a coarse halftone: blur a little before the ~2.6x upscale.
        "prefilter_blur": 0.6,
    },
]

SPEAKERS = [
    {
        "speaker": 0,
        "voice": "en+f3",
        "espeak_args": ["-s", "175", "-p", "55"],
        # (start time in s, text).  Starts are fixed; ends follow from the synthesis.
        "segments": [
            (0.30, "Good morning, welcome to the weather report."),
            (2.80, "Light rain is expected across the valley this afternoon."),
            (7.75, "Please keep an umbrella close at hand."),
        ],
    },
    {
        "speaker": 1,
        "voice": "en-us+m3",
        "espeak_args": ["-s", "170", "-p", "40"],
        "segments": [
            (2.60, "The library opens at nine on weekdays."),
            (5.00, "Visitors should sign the book at the front desk."),
        ],
    },
]


# --------------------------------------------------------------------------- audio


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def espeak_version() -> str:
    out = run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    return out.split("  Data at:")[0].strip()  # drop the install path: machine-specific


def write_wav(path: Path, x_int16: np.ndarray, sr: int = SR) -> None:
    x_int16 = np.asarray(x_int16)
    assert x_int16.dtype == np.int16
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(x_int16.astype("<i2").tobytes())


def synthesize(text: str, voice: str, args: list[str], tmp: Path) -> np.ndarray:
    """espeak-ng -> 16 kHz float, leading/trailing silence trimmed, 5 ms fades."""
    wav = tmp / "tts.wav"
    run(["espeak-ng", "-v", voice, *args, "-w", str(wav), text])
    x, sr = read_wav(wav)
    # pad with silence so the circular FFT resampler has clean edges
    pad = sr // 10
    x = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    y = resample_fft(x, sr, SR)
    thr = 0.02 * np.max(np.abs(y))
    idx = np.nonzero(np.abs(y) > thr)[0]
    keep = int(0.010 * SR)
    y = y[max(idx[0] - keep, 0): idx[-1] + keep + 1]
    fade = int(0.005 * SR)
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    y[:fade] *= ramp
    y[-fade:] *= ramp[::-1]
    return y


def build_sources(tmp: Path):
    sources = []
    seg_meta = []
    for spk in SPEAKERS:
        track = np.zeros(N_SAMPLES)
        active = np.zeros(N_SAMPLES, dtype=bool)
        segs = []
        for start_s, text in spk["segments"]:
            y = synthesize(text, spk["voice"], spk["espeak_args"], tmp)
            s0 = int(round(start_s * SR))
            s1 = s0 + len(y)
            if s1 > N_SAMPLES - int(0.2 * SR):
                raise SystemExit(f"segment too long for the clip: {text!r} ends at {s1 / SR:.2f} s")
            if active[s0:s1].any():
                raise SystemExit(f"segment overlaps the same speaker's previous one: {text!r}")
            track[s0:s1] += y
            active[s0:s1] = True
            segs.append({"text": text, "start_sample": s0, "end_sample": s1,
                         "start_s": round(s0 / SR, 4), "end_s": round(s1 / SR, 4)})
        rms_active = float(np.sqrt(np.mean(track[active] ** 2)))
        track *= TARGET_RMS / rms_active
        sources.append(track)
        seg_meta.append(segs)
    mix = sources[0] + sources[1]
    peak = float(np.max(np.abs(mix)))
    gain = min(1.0, PEAK_LIMIT / peak)
    ints = []
    for s in sources:
        ints.append(np.round(s * gain * 32767.0).astype(np.int32))
    mix_int = ints[0] + ints[1]  # exact: mixture == s0 + s1 in integer samples
    assert np.max(np.abs(mix_int)) <= 32767
    ints = [i.astype(np.int16) for i in ints]
    return ints, mix_int.astype(np.int16), seg_meta, {"peak_before_limit": round(peak, 5),
                                                      "common_gain": round(gain, 6)}


# --------------------------------------------------------------------------- mouth drive


def mouth_openings(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-video-frame mouth opening in [0, 1] from one speaker's own signal (the envelope rule
    the training synthesis uses too: training/synth/faces.py)."""
    x = src.astype(np.float64) / 32768.0
    return envelope_openings(x, N_FRAMES, SR, FPS, AV_LEAD_S, rng, window_s=ENV_WINDOW_S)


# --------------------------------------------------------------------------- faces


def load_tile(face: dict, faces_dir: Path) -> tuple[np.ndarray, dict]:
    """Crop the head (plus margin), upscale to tile scale; return float RGB and geometry."""
    img = Image.open(faces_dir / face["photo"]).convert("RGB")
    arr = np.asarray(img)
    if face["photo"].startswith("solvay"):
        arr = inpaint_red_boxes(arr)
    img = Image.fromarray(arr)
    if face["prefilter_blur"] > 0:
        img = img.filter(ImageFilter.GaussianBlur(face["prefilter_blur"]))
    x0, y0, x1, y1 = face["crop_xyxy"]
    scale = TILE_W / (x1 - x0)
    m = TILE_MARGIN / scale  # margin in photo pixels
    box = (x0 - m, y0 - m, x1 + m, y1 + m)
    size = (TILE_W + 2 * TILE_MARGIN, TILE_H + 2 * TILE_MARGIN)
    tile = img.transform(size, Image.Transform.EXTENT, box, resample=Image.Resampling.BICUBIC)
    tile = np.asarray(tile).astype(np.float64)
    geo = {
        "scale": scale,
        "mx": (face["mouth_xy"][0] - box[0]) * scale,
        "my": (face["mouth_xy"][1] - box[1]) * scale,
        "hw": face["mouth_half_width"] * scale,
        "chin": (face["chin_y"] - box[1]) * scale,
    }
    return tile, geo


def render_face(tile: np.ndarray, geo: dict, face: dict, opening: float,
                dx: float, dy: float) -> np.ndarray:
    """Warp the mouth open by `opening` in [0, 1], shift by (dx, dy); returns TILE_H x TILE_W x 3."""
    H, W = tile.shape[:2]
    yy, xx = np.mgrid[0:TILE_H, 0:TILE_W].astype(np.float64)
    # output pixel -> tile pixel (head sway = sub-pixel translation of the content)
    X = xx + TILE_MARGIN - dx
    Y = yy + TILE_MARGIN - dy
    mx, my, hw, chin = geo["mx"], geo["my"], geo["hw"], geo["chin"]
    d = opening * face["max_jaw_drop"] * hw  # jaw drop in tile pixels
    if d > 0.05:
        # The jaw (below the lip line, about 2 mouth half-widths wide) moves down by d;
        # the weight fades out horizontally towards the cheeks and below the chin.
        # Inside the mouth the lips part (a hard split at the lip line, hidden by the
        # dark cavity); outside the mouth corners the skin stretches (soft ramp), so no
        # seam shows on the cheeks.
        a = hw * (0.80 + 0.10 * opening)  # cavity half-width
        u = np.abs(X - mx)
        below = Y - my
        wx = 1.0 - smoothstep(1.05 * hw, 2.3 * hw, u)
        split = 1.0 - smoothstep(0.55 * a, 0.95 * a, u)
        top = split * (below >= 0) + (1.0 - split) * smoothstep(-0.5 * hw, 0.7 * hw, below)
        wy = top * (1.0 - smoothstep(chin - my, chin - my + 1.6 * hw, below))
        out = bilinear(tile, X, Y - d * wx * wy)
        # dark mouth cavity filling the gap between the lips (superellipse: fuller corners)
        cy = my + d * 0.5
        b = d * 0.5 + 0.6
        r = (np.abs((X - mx) / a) ** 2.6 + np.abs((Y - cy) / b) ** 2) ** 0.5
        alpha = (1.0 - smoothstep(0.80, 1.0, r))[..., None]
        cavity = np.array(face["mouth_colour"], dtype=np.float64)
        # a little depth shading: darker in the middle
        shade = (0.55 + 0.45 * np.clip(r, 0, 1))[..., None]
        out = out * (1 - alpha) + (cavity * shade) * alpha
    else:
        out = bilinear(tile, X, Y)
    return out


def head_motion(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(N_FRAMES) / FPS
    ph = rng.uniform(0, 2 * np.pi, 4)
    dx = 2.5 * np.sin(2 * np.pi * 0.21 * t + ph[0]) + 0.8 * np.sin(2 * np.pi * 0.53 * t + ph[1])
    dy = 1.5 * np.sin(2 * np.pi * 0.16 * t + ph[2]) + 0.5 * np.sin(2 * np.pi * 0.47 * t + ph[3])
    dx += 0.4 * smooth_noise(rng, N_FRAMES, 5)
    dy += 0.3 * smooth_noise(rng, N_FRAMES, 5)
    return dx, dy


def make_background() -> np.ndarray:
    bg = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(bg)
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:  # Pillow without FreeType
        font = ImageFont.load_default()
    for i, x in enumerate(TILE_X):
        draw.rectangle([x - 2, TILE_Y - 2, x + TILE_W + 1, TILE_Y + TILE_H + 1], outline=(180, 180, 184))
        label = f"speaker {i}"
        tw = draw.textlength(label, font=font)
        draw.text((x + (TILE_W - tw) / 2, TILE_Y + TILE_H + 10), label, fill=(225, 225, 228), font=font)
    return np.asarray(bg).astype(np.float64)


# --------------------------------------------------------------------------- encoding


def zero_mp4_times(path: Path) -> None:
    """mp4mux stamps wall-clock creation/modification times into mvhd/tkhd/mdhd.
    Zero them so that re-running the script gives a byte-identical file."""
    data = bytearray(path.read_bytes())

    def walk(start: int, end: int) -> None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos: pos + 8])
            hdr = 8
            if size == 1:
                size = struct.unpack(">Q", data[pos + 8: pos + 16])[0]
                hdr = 16
            elif size == 0:
                size = end - pos
            if size < hdr:
                return
            body = pos + hdr
            if kind in (b"moov", b"trak", b"mdia"):
                walk(body, pos + size)
            elif kind in (b"mvhd", b"tkhd", b"mdhd"):
                version = data[body]
                n = 8 if version == 1 else 4
                data[body + 4: body + 4 + 2 * n] = bytes(2 * n)
            pos += size

    walk(0, len(data))
    path.write_bytes(bytes(data))


def encode(frames_path: Path, wav_path: Path, out_mp4: Path) -> None:
    gst = shutil.which("gst-launch-1.0")
    if gst is None:
        raise SystemExit("gst-launch-1.0 not found")
    tmp_mp4 = out_mp4.with_suffix(".tmp.mp4")
    cmd = [
        gst, "-q", "-e",
        "filesrc", f"location={frames_path}", "!",
        "rawvideoparse", f"width={WIDTH}", f"height={HEIGHT}", "format=rgb", f"framerate={FPS}/1", "!",
        "videoconvert", "!", "video/x-raw,format=I420", "!",
        "x264enc", "bitrate=1000", "key-int-max=25", "speed-preset=slow", "threads=1", "!",
        "video/x-h264,profile=main", "!",
        "h264parse", "!", "queue", "!", "mp4mux", "name=mux", "!",
        "filesink", f"location={tmp_mp4}",
        "filesrc", f"location={wav_path}", "!", "wavparse", "!", "audioconvert", "!",
        "audioresample", "!", "audio/x-raw,rate=48000,channels=1", "!",
        "avenc_aac", "bitrate=96000", "!", "aacparse", "!", "queue", "!", "mux.",
    ]
    run(cmd)
    zero_mp4_times(tmp_mp4)
    os.replace(tmp_mp4, out_mp4)


def verify(out_mp4: Path) -> dict:
    """gst-discoverer + one full decode; returns a small summary (also printed)."""
    info = {}
    disc = shutil.which("gst-discoverer-1.0")
    if disc:
        txt = run([disc, str(out_mp4)], capture_output=True, text=True).stdout
        print(txt)
        for line in txt.splitlines():
            line = line.strip()
            if line.startswith("Duration:"):
                info["duration"] = line.split(":", 1)[1].strip()
        info["has_video"] = "video #" in txt or "video:" in txt.lower()
        info["has_audio"] = "audio #" in txt or "audio:" in txt.lower()
    run(["gst-launch-1.0", "-q", "filesrc", f"location={out_mp4}", "!", "decodebin", "name=d",
         "d.", "!", "queue", "!", "videoconvert", "!", "fakesink",
         "d.", "!", "queue", "!", "audioconvert", "!", "fakesink"])
    info["full_decode"] = "ok"
    return info


# --------------------------------------------------------------------------- main


def intervals(mask: np.ndarray) -> list[list[float]]:
    """[[start_s, end_s], ...] of the True runs of a per-sample mask."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.nonzero(np.diff(m))[0]
    return [[round(float(a) / SR, 4), round(float(b) / SR, 4)] for a, b in zip(edges[::2], edges[1::2])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("demo"))
    ap.add_argument("--faces-dir", type=Path, default=Path("/work/shared/data/faces"))
    ap.add_argument("--no-verify", action="store_true", help="skip gst-discoverer / full decode")
    args = ap.parse_args()

    out = args.out
    (out / "sources").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    with tempfile.TemporaryDirectory(prefix="avsepd-demo-") as td:
        tmp = Path(td)
        srcs, mix, seg_meta, level = build_sources(tmp)
        write_wav(out / "sources" / "speaker-0.wav", srcs[0])
        write_wav(out / "sources" / "speaker-1.wav", srcs[1])
        write_wav(out / "sources" / "mixture.wav", mix)
        # The AAC encoder (avenc_aac) prepends 1024 samples of priming at 48 kHz and
        # GStreamer's mp4mux writes no edit list for it, so players would hear the
        # audio 21.3 ms late.  Feed the encoder the mixture advanced by that amount
        # (the clip starts with 0.3 s of silence, so nothing audible is dropped):
        # decoded audio then lines up with the ground-truth timeline to < 0.1 ms.
        shift = int(round(AAC_PRIMING_48K * SR / 48_000))
        enc_mix = np.concatenate([mix[shift:], np.zeros(shift, dtype=np.int16)])
        wav_path = tmp / "mixture-for-aac.wav"
        write_wav(wav_path, enc_mix)

        openings = [mouth_openings(s, rng) for s in srcs]
        motions = [head_motion(rng) for _ in FACES]
        tiles = [load_tile(f, args.faces_dir) for f in FACES]
        bg = make_background()

        frames_path = tmp / "frames.rgb"
        with open(frames_path, "wb") as fh:
            for f in range(N_FRAMES):
                frame = bg.copy()
                for k, face in enumerate(FACES):
                    tile, geo = tiles[k]
                    img = render_face(tile, geo, face, float(openings[k][f]),
                                      float(motions[k][0][f]), float(motions[k][1][f]))
                    x = TILE_X[k]
                    frame[TILE_Y: TILE_Y + TILE_H, x: x + TILE_W] = img
                fh.write(np.clip(np.round(frame), 0, 255).astype(np.uint8).tobytes())
        encode(frames_path, wav_path, out / "demo.mp4")

    # overlap = samples where both speakers are inside one of their segments
    act = []
    for segs in seg_meta:
        a = np.zeros(N_SAMPLES, dtype=bool)
        for s in segs:
            a[s["start_sample"]: s["end_sample"]] = True
        act.append(a)
    overlap = intervals(act[0] & act[1])

    manifest = {
        "description": "avsepd demo clip: two held-out faces, each mouth driven by its own "
                       "synthetic voice; the voices partly overlap. sources/*.wav are the "
                       "ground truth on the clip's timeline (sample 0 = clip time 0).",
        "script": "scripts/make_demo_clip.py",
        "script_version": SCRIPT_VERSION,
        "command": "python scripts/make_demo_clip.py --out demo/",
        "seed": SEED,
        "espeak_ng": espeak_version(),
        "sample_rate": SR,
        "num_samples": N_SAMPLES,
        "duration_s": DURATION_S,
        "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "num_frames": N_FRAMES,
                  "codec": "H.264 Main, I420", "audio_codec": "AAC-LC 48 kHz mono (mixture.wav resampled)",
                  "aac_priming_compensated_samples_16k": int(round(AAC_PRIMING_48K * SR / 48_000)),
                  "tile_size_wh": [TILE_W, TILE_H], "tile_x": list(TILE_X), "tile_y": TILE_Y},
        "mouth_animation": {"av_lead_s": AV_LEAD_S, "note": "mouth opening at clip time t follows the "
                            "speaker's RMS envelope in a 40 ms window centred at t + av_lead_s (video leads "
                            "audio), 1-2-1 smoothed, +-12% smooth jitter, forced shut where the envelope is "
                            "below 8% of its 90th percentile; head sway ~ +-3 px horizontally, +-2 px vertically"},
        "level": {"target_active_rms": TARGET_RMS, "peak_limit": PEAK_LIMIT, **level,
                  "note": "each source scaled to the same RMS over its active segments; both then scaled by "
                          "common_gain; mixture.wav == speaker-0.wav + speaker-1.wav exactly (int16)"},
        "overlap_intervals_s": overlap,
        "overlap_total_s": round(sum(b - a for a, b in overlap), 4),
        "speakers": [],
    }
    for k, (face, spk) in enumerate(zip(FACES, SPEAKERS)):
        src = srcs[k].astype(np.float64) / 32768.0
        manifest["speakers"].append({
            "speaker": k,
            "wav": f"sources/speaker-{k}.wav",
            "face": {key: face[key] for key in ("position", "photo", "face_id", "held_out", "crop_xyxy",
                                                "mouth_xy", "mouth_half_width", "chin_y",
                                                "max_jaw_drop")}
                    | ({"name": face["name"], "face_box_xyxy": face["face_box_xyxy"]} if "name" in face else {})
                    | {"split_file": "training/faces_split.json"},
            "voice": spk["voice"],
            "espeak_args": spk["espeak_args"],
            "texts": [t for _, t in spk["segments"]],
            "segments": seg_meta[k],
            "rms_active": round(float(np.sqrt(np.mean(src[act[k]] ** 2))), 5),
            "rms_whole": round(float(np.sqrt(np.mean(src ** 2))), 5),
        })
    (out / "sources" / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    if not args.no_verify:
        info = verify(out / "demo.mp4")
        print("verify:", info)
    print(f"overlap: {overlap} s")
    for k in range(2):
        print(f"speaker {k}:", [(s['start_s'], s['end_s']) for s in seg_meta[k]])
    print("size:", (out / "demo.mp4").stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

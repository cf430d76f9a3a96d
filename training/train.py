"""Training loop (PyTorch, CPU by default): `python -m training train --config ...`.

One example = (scene, face slot): input = compressed mixture STFT + that slot's mouth ROIs, target =
that face's own source (zeros for a visible-but-silent face). Audio is left-padded with
PAD = 352 samples (the streaming STFT's priming, docs/SIGNAL.md) so that 640 F samples give exactly
4 F frames and chunk f's frames end with video frame f. Loss: MSE between the compressed complex
spectra of estimate and target, plus 0.1 x the same on compressed magnitudes.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from .config import data_dir, run_dir
from .model import Separator, count_params, flops_per_second
from .synth.scene import load_shards
from .signal import COMPRESS_EXPONENT, HOP_LENGTH, N_FFT, WIN_LENGTH

PAD = N_FFT - HOP_LENGTH  # 352


def stft_t(x: torch.Tensor) -> torch.Tensor:
    """[B, n] -> complex [B, T, 257] per the signal contract, after PAD zeros on the left."""
    x = torch.nn.functional.pad(x, (PAD, 0))
    s = torch.stft(x, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                   window=torch.hann_window(WIN_LENGTH, dtype=x.dtype), center=False, return_complex=True)
    return s.transpose(1, 2)


def compress_t(s: torch.Tensor, p: float = COMPRESS_EXPONENT) -> torch.Tensor:
    mag = s.abs()
    return s * torch.where(mag > 0, mag.clamp_min(1e-12) ** (p - 1), torch.zeros_like(mag))


def to_2ch(s: torch.Tensor) -> torch.Tensor:
    return torch.stack([s.real, s.imag], dim=1).float()  # [B, 2, T, F]


def make_model(cfg: dict) -> Separator:
    m = cfg["model"]
    return Separator(m.get("kind", "av"), m.get("hidden", 192), m.get("visual_dim", 64), m.get("conv_kernel", 3))


def examples(data: dict) -> np.ndarray:
    """(scene, slot) pairs with a visible face."""
    s, k = np.nonzero(data["present"])
    return np.stack([s, k], axis=1)


def batch_tensors(data: dict, pairs: np.ndarray):
    s, k = pairs[:, 0], pairs[:, 1]
    mix = torch.from_numpy(data["mixture"][s])
    tgt = torch.from_numpy(data["sources"][s, k])
    rois = torch.from_numpy(data["rois"][s, k].astype(np.float32) / 255.0)[:, :, None]
    return mix, tgt, rois


def forward_batch(model: Separator, mix: torch.Tensor, rois: torch.Tensor):
    X = stft_t(mix)
    mask = model.forward_sequence(to_2ch(compress_t(X)), rois if model.kind == "av" else None)
    M = torch.complex(mask[:, 0], mask[:, 1])
    return M * X, X


def loss_fn(est: torch.Tensor, tgt_spec: torch.Tensor) -> torch.Tensor:
    a, b = compress_t(est), compress_t(tgt_spec)
    return (a - b).abs().pow(2).mean() + 0.1 * (a.abs() - b.abs()).pow(2).mean()


def train(cfg: dict) -> dict:
    t = cfg["train"]
    torch.set_num_threads(int(t.get("threads", 1)))
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    data = load_shards(data_dir(cfg) / "train")
    val = load_shards(data_dir(cfg) / "val")
    pairs, vpairs = examples(data), examples(val)
    model = make_model(cfg)
    print(f"[train] {model.kind} model: {count_params(model)} params, "
          f"{flops_per_second(model) / 1e6:.0f} MFLOP per s of audio; {len(pairs)} train examples "
          f"({len(data['mixture'])} scenes), {len(vpairs)} val examples", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=float(t.get("lr", 1e-3)))
    steps, bs, every = int(t.get("steps", 300)), int(t.get("batch_size", 16)), int(t.get("log_every", 20))
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)

    def val_loss() -> float:
        model.eval()
        with torch.no_grad():
            ls = []
            for i in range(0, len(vpairs), 32):
                mix, tgt, rois = batch_tensors(val, vpairs[i:i + 32])
                est, _ = forward_batch(model, mix, rois)
                ls.append(float(loss_fn(est, stft_t(tgt))) * len(mix))
        model.train()
        return sum(ls) / len(vpairs)

    history = {"step": [], "train_loss": [], "val_loss": []}
    v0 = val_loss()
    print(f"[train] step 0 val_loss {v0:.5f}", flush=True)
    history["step"].append(0), history["train_loss"].append(float("nan")), history["val_loss"].append(v0)
    t0, run = time.time(), []
    for step in range(1, steps + 1):
        mix, tgt, rois = batch_tensors(data, pairs[rng.integers(0, len(pairs), bs)])
        est, _ = forward_batch(model, mix, rois)
        loss = loss_fn(est, stft_t(tgt))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        run.append(loss.item())
        if step % every == 0 or step == steps:
            v = val_loss()
            tl = float(np.mean(run))
            run = []
            history["step"].append(step), history["train_loss"].append(tl), history["val_loss"].append(v)
            print(f"[train] step {step}/{steps} train_loss {tl:.5f} val_loss {v:.5f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    torch.save({"model": model.state_dict(), "config": cfg}, out / "model.pt")
    (out / "history.json").write_text(json.dumps(history, indent=1))
    print(f"[train] saved {out / 'model.pt'}", flush=True)
    return history


def load_model(cfg: dict) -> Separator:
    ck = torch.load(run_dir(cfg) / "model.pt", map_location="cpu")
    model = make_model(ck["config"])
    model.load_state_dict(ck["model"])
    return model.eval()

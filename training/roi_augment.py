"""Camera augmentation of mouth ROIs, drawn afresh for every training batch (train.roi_augment),
and the crop geometry augmentation (train.roi_geometry, `augment_geometry`, see crop_geometry.py).

The synthesized scenes already vary each face a little (training/synth/faces.py: landmark noise,
+-30 grey levels, contrast 0.7..1.3, a mild blur), but that draw is frozen into the scenes, and
every training face comes from one blurred 1927 photo. The held-out astronaut photo (sharp,
bright, teeth showing) is outside that range, and the v4s model scored 0 dB on its faces while
the held-out Solvay faces scored 3-7 dB (MODELS.md). So every batch gets a new camera per
sequence: distance (with train.roi_low_res, half of the sequences are seen with fewer pixels),
gamma, sharpening or blur, contrast, brightness and sensor noise, then 8-bit rounding as the
daemon's crop delivers it. Per sequence, not per frame: a camera does not change its
response between two frames, and the model reads motion from frame differences.
"""

from __future__ import annotations

import math

import torch

from .crop_geometry import geometry_ranges

GAMMA = (0.5, 2.0)  # log-uniform
SHARPEN = (-1.0, 2.0)  # x + a (x - blur(x)): -1 is a 3x3 binomial blur, 2 a strong unsharp mask
CONTRAST = (0.6, 1.6)  # log-uniform, about mid-grey
BRIGHTNESS = 0.15  # +- grey / 255
NOISE = 0.03  # sensor noise std, uniform in [0, NOISE] per sequence
# A far face: the detector's crop upsamples fewer camera pixels. With probability P_LOW_RES a
# sequence is shrunk by a factor in LOW_RES (area average) and enlarged back (bilinear).
P_LOW_RES = 0.5
LOW_RES = (1.3, 3.0)


def _blur3(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial blur with edge replication; x [N, 1, H, W]."""
    k1 = torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype, device=x.device)
    k = (k1[:, None] * k1[None, :])[None, None]
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), k)


def _small_side(side: int, factor: float) -> int:
    return max(int(round(side / factor)), 4)


def _low_res(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x [n, 1, H, W] seen with `factor` times fewer pixels per side, back at H x W."""
    H, W = x.shape[-2:]
    return _resized(x, (_small_side(H, factor), _small_side(W, factor)))


def _resized(x: torch.Tensor, small: tuple[int, int]) -> torch.Tensor:
    down = torch.nn.functional.interpolate(x, size=small, mode="area")
    return torch.nn.functional.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)


def augment_rois(rois: torch.Tensor, gen: torch.Generator, low_res: bool = True) -> torch.Tensor:
    """rois [B, n, 1, H, W] in [0, 1] -> the same sequences through a random camera each
    (low_res: also at a random distance, see P_LOW_RES)."""
    B, n, _, H, W = rois.shape
    dev, dt = rois.device, rois.dtype
    if low_res:
        far = torch.rand(B, generator=gen, device=dev) < P_LOW_RES
        factors = LOW_RES[0] + (LOW_RES[1] - LOW_RES[0]) * torch.rand(B, generator=gen, device=dev)
        if bool(far.any()):
            rois = rois.clone()
            # one resize per distinct small size (a few dozen at most), not one per sequence
            sizes: dict[tuple[int, int], list[int]] = {}
            for b in torch.nonzero(far).flatten().tolist():
                f = float(factors[b])
                sizes.setdefault((_small_side(H, f), _small_side(W, f)), []).append(b)
            for small, rows in sizes.items():
                x = rois[rows].reshape(len(rows) * n, 1, H, W)
                rois[rows] = _resized(x, small).reshape(len(rows), n, 1, H, W)

    def draw(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(B, 1, 1, 1, 1, generator=gen, device=dev, dtype=dt)

    x = rois.clamp(0.0, 1.0) ** torch.exp(draw(math.log(GAMMA[0]), math.log(GAMMA[1])))
    a = draw(*SHARPEN)
    x = x + a * (x - _blur3(x.reshape(B * n, 1, H, W)).reshape(B, n, 1, H, W))
    x = (x - 0.5) * torch.exp(draw(math.log(CONTRAST[0]), math.log(CONTRAST[1]))) + 0.5
    x = x + draw(-BRIGHTNESS, BRIGHTNESS)
    x = x + draw(0.0, NOISE) * torch.randn(x.shape, generator=gen, device=dev, dtype=dt)
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def augment_geometry(rois: torch.Tensor, gen: torch.Generator, ranges: dict | None = None) -> torch.Tensor:
    """rois [B, n, 1, H, W] in [0, 1] -> each sequence's crops placed off as a detector's landmark
    error does (training/crop_geometry.py): its own random similarity transform (with probability
    `p`; else only the per-frame jitter), edges repeated. `ranges`: crop_geometry.geometry_ranges
    (default: v14's). The draws come in a fixed order, the aspect last, so v14's ranges draw what
    they drew before the aspect existed."""
    r = ranges or geometry_ranges()
    B, n, _, H, W = rois.shape
    dev, dt = rois.device, rois.dtype

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=gen, device=dev, dtype=dt)

    def log_uniform(lo_hi) -> torch.Tensor:
        return torch.exp(uniform(math.log(lo_hi[0]), math.log(lo_hi[1]), B) * on)

    on = (torch.rand(B, generator=gen, device=dev) < r["p"]).to(dt)
    sx, sy = uniform(-r["shift_px"], r["shift_px"], B) * on, uniform(-r["shift_px"], r["shift_px"], B) * on
    scale = log_uniform(r["scale"])
    ang = torch.deg2rad(uniform(-r["angle_deg"], r["angle_deg"], B)) * on
    jit = r["jitter_px"] * torch.randn(B, n, 2, generator=gen, device=dev, dtype=dt)
    aspect = log_uniform(r["aspect"]) if r["aspect"] is not None else torch.ones(B, device=dev, dtype=dt)
    cs, sn = torch.cos(ang) / scale, torch.sin(ang) / scale
    # affine_grid maps normalised output coordinates to normalised input ones (align_corners
    # False: one pixel is 2 / W); the same map as crop_geometry._source_coords, with the output's
    # rows (v) divided by the aspect first (the content stretched vertically)
    theta = torch.zeros(B, n, 2, 3, device=dev, dtype=dt)
    theta[:, :, 0, 0], theta[:, :, 0, 1] = cs[:, None], (sn / aspect)[:, None]
    theta[:, :, 1, 0], theta[:, :, 1, 1] = -sn[:, None], (cs / aspect)[:, None]
    theta[:, :, 0, 2] = -(sx[:, None] + jit[..., 0]) * 2.0 / W
    theta[:, :, 1, 2] = -(sy[:, None] + jit[..., 1]) * 2.0 / H
    x = rois.reshape(B * n, 1, H, W)
    grid = torch.nn.functional.affine_grid(theta.reshape(B * n, 2, 3), [B * n, 1, H, W], align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(B, n, 1, H, W)

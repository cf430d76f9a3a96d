"""Causal streaming target-speaker extractor conditioned on one face's mouth ROI (PyTorch).

Per call (one 40 ms chunk = CHUNK_FRAMES STFT frames = one video frame):
    inputs   mix  [B, 2, 4, 257]   compressed complex mixture (docs/SIGNAL.md)
             roi  [B, 1, 48, 48]   the chunk's mouth ROI (docs/SIGNAL.md "Mouth crop": grey / 255)
                                   (AV model only)
             state tensors, batch on axis 0 (see `state_shapes`)
    outputs  mask [B, 2, 4, 257]   AV: complex mask (re, im) for the UNcompressed mixture,
             mask [B, 2, 2, 4, 257]  audio-only: one complex mask per output (2 outputs, PIT),
             plus the new states.
No look-ahead: the mask of a chunk is final when its last frame is in (lookahead_frames = 0).

Architecture (all causal):
  frame encoder  Linear(514 -> H) + ReLU, then a causal Conv1d over frames (kernel K; cache of the
                 last K-1 encoded frames is state "conv");
  visual encoder 3 strided 3x3 convs on [roi - 0.5, roi - previous roi] (previous ROI is state
                 "prev_roi"; 48 -> 24 -> 12 -> 6) -> mean pool -> Linear(-> V); broadcast to the
                 chunk's 4 frames;
  fusion         GRU(H + V -> H) (state "gru" [B, 1, H]);
  mask head      Linear(H -> 514), mask = MASK_BOUND * tanh(.).
The audio-only baseline ("audio") cannot know which voice a face has, so it separates blindly:
the same frame encoder, conv and GRU (input H: no visual features), and a head with TWO complex
masks (Linear(H -> 2 x 514)), trained with permutation-invariant training (best assignment of its
2 outputs to the 2 voices). Its extra head roughly offsets the AV model's visual encoder and
wider GRU input: parameter counts within 10 % of each other (tests/test_model.py).

`forward_sequence` processes whole utterances in parallel layers (nn.GRU over all frames); the
streaming `forward` processes one chunk with explicit state; tests check they agree.
"""

from __future__ import annotations

import torch
from torch import nn

N_BINS = 257
CHUNK_FRAMES = 4
ROI_SIZE = 48  # docs/SIGNAL.md "Mouth crop" (= training/mouth_crop.py ROI_SIZE)
AUDIO_OUTPUTS = 2
MASK_BOUND = 2.0


class Separator(nn.Module):
    def __init__(self, kind: str = "av", hidden: int = 192, visual_dim: int = 64, conv_kernel: int = 3):
        super().__init__()
        if kind not in ("av", "audio"):
            raise ValueError(kind)
        self.kind, self.hidden, self.visual_dim, self.k = kind, hidden, visual_dim, conv_kernel
        self.enc = nn.Linear(2 * N_BINS, hidden)
        self.conv = nn.Conv1d(hidden, hidden, conv_kernel)
        if kind == "av":
            self.vis = nn.Sequential(
                nn.Conv2d(2, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.vis_fc = nn.Linear(48, visual_dim)
        self.n_out = 1 if kind == "av" else AUDIO_OUTPUTS
        self.gru_in = hidden + (visual_dim if kind == "av" else 0)
        self.gru = nn.GRU(self.gru_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, self.n_out * 2 * N_BINS)
        # start near the identity mask (real part 1, imaginary 0): the first estimates are the
        # mixture (SI-SDRi 0 dB) instead of random filtered noise
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            bias = self.head.bias.view(self.n_out, 2, N_BINS)
            bias.zero_()
            bias[:, 0] = float(torch.atanh(torch.tensor(1.0 / MASK_BOUND)))

    # ---------------------------------------------------------------- state
    def state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        s = {"conv": (batch, self.hidden, self.k - 1), "gru": (batch, 1, self.hidden)}
        if self.kind == "av":
            s["prev_roi"] = (batch, 1, ROI_SIZE, ROI_SIZE)
        return s

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        return {k: torch.zeros(v) for k, v in self.state_shapes(batch).items()}

    # ---------------------------------------------------------------- pieces
    def _frames_in(self, mix: torch.Tensor) -> torch.Tensor:
        """[B, 2, T, F] -> encoded [B, H, T]."""
        B, _, T, _ = mix.shape
        x = mix.permute(0, 2, 1, 3).reshape(B, T, 2 * N_BINS)
        return torch.relu(self.enc(x)).transpose(1, 2)

    def _visual(self, roi: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """roi, prev [N, 1, 48, 48] -> [N, V]."""
        h = self.vis(torch.cat([roi - 0.5, roi - prev], dim=1))
        return torch.relu(self.vis_fc(h.mean(dim=(2, 3))))

    def _mask(self, h: torch.Tensor) -> torch.Tensor:
        """GRU output [B, T, H] -> mask [B, 2, T, F] (AV) or [B, 2 outputs, 2, T, F] (audio)."""
        B, T, _ = h.shape
        m = MASK_BOUND * torch.tanh(self.head(h))
        if self.kind == "av":
            return m.reshape(B, T, 2, N_BINS).permute(0, 2, 1, 3)
        return m.reshape(B, T, self.n_out, 2, N_BINS).permute(0, 2, 3, 1, 4)

    def _vis_frames(self, v: torch.Tensor, B: int, T: int, device) -> torch.Tensor:
        return v.repeat_interleave(CHUNK_FRAMES, dim=1)  # [B, chunks, V] -> [B, T, V]

    # ---------------------------------------------------------------- streaming call
    def forward(self, mix, *args):
        """AV: forward(mix, roi, conv, gru, prev_roi); audio: forward(mix, conv, gru).
        Returns (mask, conv', gru'[, prev_roi'])."""
        if self.kind == "av":
            roi, conv, gru, prev = args
        else:
            conv, gru = args
        B, _, T, _ = mix.shape
        e = self._frames_in(mix)  # [B, H, T]
        ec = torch.cat([conv, e], dim=2)
        c = torch.relu(self.conv(ec))  # [B, H, T]
        new_conv = ec[:, :, ec.shape[2] - (self.k - 1):]
        if self.kind == "av":
            v = self._visual(roi, prev)[:, None, :]  # [B, 1, V]
            x = torch.cat([c.transpose(1, 2), v.expand(B, T, self.visual_dim)], dim=2)
        else:
            x = c.transpose(1, 2)
        h, g = self.gru(x, gru.transpose(0, 1).contiguous())
        mask = self._mask(h)
        if self.kind == "av":
            return mask, new_conv, g.transpose(0, 1), roi
        return mask, new_conv, g.transpose(0, 1)

    # ---------------------------------------------------------------- whole utterance
    def forward_sequence(self, mix: torch.Tensor, rois: torch.Tensor | None = None) -> torch.Tensor:
        """mix [B, 2, T, F] with T = 4 x chunks; rois [B, chunks, 1, 48, 48] -> mask [B, 2, T, F]
        (audio: rois None -> mask [B, 2 outputs, 2, T, F]).
        Same result as calling `forward` chunk by chunk from the initial state."""
        B, _, T, _ = mix.shape
        e = self._frames_in(mix)
        c = torch.relu(self.conv(nn.functional.pad(e, (self.k - 1, 0))))
        if self.kind == "av":
            n = rois.shape[1]
            prev = torch.cat([torch.zeros_like(rois[:, :1]), rois[:, :-1]], dim=1)
            v = self._visual(rois.reshape(B * n, 1, ROI_SIZE, ROI_SIZE),
                             prev.reshape(B * n, 1, ROI_SIZE, ROI_SIZE)).reshape(B, n, -1)
            x = torch.cat([c.transpose(1, 2), self._vis_frames(v, B, T, mix.device)], dim=2)
        else:
            x = c.transpose(1, 2)
        h, _ = self.gru(x)
        return self._mask(h)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_second(model: Separator) -> float:
    """Multiply-adds x 2 per second of audio (100 frames, 25 ROI frames), counted analytically."""
    H, V, K = model.hidden, model.visual_dim, model.k
    per_frame = 2 * N_BINS * H + H * H * K + 3 * H * (model.gru_in + H) + H * 2 * N_BINS * model.n_out
    per_video = 0
    if model.kind == "av":
        per_video = (16 * 2 * 9 * 24 * 24) + (32 * 16 * 9 * 12 * 12) + (48 * 32 * 9 * 6 * 6) + 48 * V
    return 2.0 * (100 * per_frame + 25 * per_video)

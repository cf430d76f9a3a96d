"""v13 (an experiment so far): a dual-path band separator, the same call contract as
`model.Separator` (docs/SIGNAL.md, DESIGN.md) with a different inside.

Why: every Separator so far sees a frame's 257 bins through one linear encoding (771 -> 192)
and steps its recurrence once per 40 ms chunk. Nothing in it works along frequency, so keeping
one voice's harmonics and dropping the other's is left to one linear layer per frame (MODELS.md
"v3 -> v4s": the band head, a small per-frame patch, gained 0.24 dB on the test faces). Models
that separate two voices well at this cost (band-split and dual-path TF models) alternate a pass
ACROSS frequency within each frame with a pass ALONG time within each band.

Per call (one chunk = CHUNK_FRAMES frames), the same inputs and outputs as `Separator`:
  band encoder   the 257 bins, zero-padded to N_BANDS x BAND, each band's [re, im, |.|] (3 x BAND)
                 through its own Linear (-> D) and a LayerNorm;
  blocks         `blocks` times:
                   frequency pass: LayerNorm, a bidirectional GRU across the N_BANDS bands of one
                   frame (D/2 per direction), added back (residual). Within a frame: streaming-safe;
                   time pass: LayerNorm, (AV) FiLM by the face's visual features of the chunk,
                   a GRU along frames within each band (D), a Linear, added back. Causal, one step
                   per 10 ms frame; its state is "rnn" [B, blocks, N_BANDS, D];
  visual encoder (AV) Separator's: 4 strided convs on the normalised [roi, roi - prev] -> V, tanh;
                 the training-only aux head predicts the target's energy in the next chunk;
  mask head      each band's own Linear (D -> BAND x 2 x masks), mask = 2 tanh(.), cropped to 257;
  select (AV)    as v4s: two internal masks, a per-frame softmax over (mask 0, mask 1, nothing)
                 from the band-mean of the last block, so the separator can learn to split voices
                 (PIT term) before it knows which one is the face's.
Look-ahead: none (lookahead_frames 0); each frame's mask uses frames up to its own.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import (AUDIO_OUTPUTS, MASK_BOUND, MOUTH_FEATURES, count_params, mouth_encoder, mouth_reader_macs,
                    read_mouth_sequence, read_mouths)
from .mouth_crop import ROI_SIZE
from .signal import CHUNK_FRAMES, N_BINS

BAND = 8
N_BANDS = -(-N_BINS // BAND)  # 33
PADDED_BINS = N_BANDS * BAND  # 264


class DualPathBlock(nn.Module):
    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.f_norm = nn.LayerNorm(dim)
        self.f_rnn = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        self.t_norm = nn.LayerNorm(dim)
        self.t_rnn = nn.GRU(dim, dim, batch_first=True)
        self.t_out = nn.Linear(dim, dim)
        # FiLM from the face: zero at first, so the block starts as the audio-only one
        self.film = nn.Linear(cond_dim, 2 * dim) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, state: torch.Tensor, cond: torch.Tensor | None):
        """x [B, T, K, D], state [B, K, D], cond [B, T / 4, C] (one per chunk) or None -> (x', state')."""
        B, T, K, D = x.shape
        y, _ = self.f_rnn(self.f_norm(x).reshape(B * T, K, D))
        x = x + y.reshape(B, T, K, D)
        y = self.t_norm(x)
        if self.film is not None:  # once per chunk, for its 4 frames
            gamma, beta = self.film(cond).chunk(2, dim=-1)  # [B, n, D]
            y = y.reshape(B, T // CHUNK_FRAMES, CHUNK_FRAMES, K, D)
            y = y * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
            y = y.reshape(B, T, K, D)
        y = y.permute(0, 2, 1, 3).reshape(B * K, T, D)
        y, h = self.t_rnn(y, state.reshape(1, B * K, D))
        x = x + self.t_out(y).reshape(B, K, T, D).permute(0, 2, 1, 3)
        return x, h.reshape(B, K, D)


class BandSeparator(nn.Module):
    arch = "dualpath"

    def __init__(self, kind: str = "av", dim: int = 48, blocks: int = 3, visual_dim: int = 64,
                 select: bool = True, roi_norm: bool = True):
        super().__init__()
        if kind not in ("av", "audio"):
            raise ValueError(kind)
        if dim % 2:
            raise ValueError(f"dim {dim}: must be even (two GRU directions of dim / 2)")
        self.kind, self.dim, self.blocks_n, self.visual_dim = kind, dim, blocks, visual_dim
        self.select = select and kind == "av"
        self.roi_norm = roi_norm and kind == "av"
        self.lookahead = 0
        self.n_out = 1 if kind == "av" else AUDIO_OUTPUTS
        self.n_masks = AUDIO_OUTPUTS if (kind == "audio" or self.select) else 1
        self.enc_w = nn.Parameter(torch.randn(N_BANDS, 3 * BAND, dim) / (3 * BAND) ** 0.5)
        self.enc_b = nn.Parameter(torch.zeros(N_BANDS, dim))
        self.enc_norm = nn.LayerNorm(dim)
        cond = visual_dim if kind == "av" else 0
        if kind == "av":
            self.vis = mouth_encoder()  # Separator's, under the same names (a v11s encoder loads)
            self.vis_fc = nn.Linear(MOUTH_FEATURES, visual_dim)
            self.aux = nn.Linear(visual_dim, 1)  # training only
        self.blocks = nn.ModuleList(DualPathBlock(dim, cond) for _ in range(blocks))
        out = BAND * 2 * self.n_masks
        # start near the identity mask (real part 1, imaginary 0), as Separator does
        self.head_w = nn.Parameter(0.1 * torch.randn(N_BANDS, dim, out) / dim ** 0.5)
        bias = torch.zeros(N_BANDS, self.n_masks, 2, BAND)
        bias[:, :, 0] = float(torch.atanh(torch.tensor(1.0 / MASK_BOUND)))
        self.head_b = nn.Parameter(bias.reshape(N_BANDS, out))
        if self.select:
            self.sel = nn.Linear(dim, 3)
            nn.init.zeros_(self.sel.weight)
            nn.init.zeros_(self.sel.bias)

    # ---------------------------------------------------------------- state
    def state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        s = {"rnn": (batch, self.blocks_n, N_BANDS, self.dim)}
        if self.kind == "av":
            s["prev_roi"] = (batch, 1, ROI_SIZE, ROI_SIZE)
        return s

    @property
    def lookahead_frames(self) -> int:
        return 0

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        return {k: torch.zeros(v) for k, v in self.state_shapes(batch).items()}

    def flops(self) -> float:
        return band_flops_per_second(self)

    def metadata(self) -> dict[str, str]:
        """export.metadata's model-specific part."""
        return {"arch": self.arch, "parameters": str(count_params(self)),
                "flops_per_second": str(int(band_flops_per_second(self))), "dim": str(self.dim),
                "blocks": str(self.blocks_n), "band": str(BAND), "roi_norm": str(int(self.roi_norm)),
                "select": str(int(self.select))}

    # ---------------------------------------------------------------- pieces
    def _core(self, mix: torch.Tensor, rnn: torch.Tensor, v: torch.Tensor | None):
        """mix [B, 2, T, F], rnn [B, blocks, K, D], v [B, T / 4, V] or None -> (mask as the call
        returns it, internal masks [B, 2, 2, T, F] or None, rnn')."""
        B, _, T, _ = mix.shape
        re = nn.functional.pad(mix[:, 0], (0, PADDED_BINS - N_BINS))
        im = nn.functional.pad(mix[:, 1], (0, PADDED_BINS - N_BINS))
        mag = torch.sqrt(re * re + im * im + 1e-8)
        feats = torch.cat([re.reshape(B, T, N_BANDS, BAND), im.reshape(B, T, N_BANDS, BAND),
                           mag.reshape(B, T, N_BANDS, BAND)], dim=3)  # [B, T, K, 3 BAND]
        x = self.enc_norm(torch.einsum("btkc,kcd->btkd", feats, self.enc_w) + self.enc_b)
        states = []
        for i, block in enumerate(self.blocks):
            x, h = block(x, rnn[:, i], v)
            states.append(h)
        logits = torch.einsum("btkd,kdo->btko", x, self.head_w) + self.head_b
        m = MASK_BOUND * torch.tanh(logits)  # [B, T, K, masks x 2 x BAND]
        m = m.reshape(B, T, N_BANDS, self.n_masks, 2, BAND).permute(0, 3, 4, 1, 2, 5)
        m = m.reshape(B, self.n_masks, 2, T, PADDED_BINS)[..., :N_BINS]  # [B, masks, 2, T, F]
        new_rnn = torch.stack(states, dim=1)
        if self.kind == "audio":
            return m, None, new_rnn
        if not self.select:
            return m[:, 0], None, new_rnn
        p = torch.softmax(self.sel(x.mean(dim=2)), dim=-1)  # [B, T, 3]
        p0 = p[:, None, :, 0:1]
        p1 = p[:, None, :, 1:2]
        return p0 * m[:, 0] + p1 * m[:, 1], m, new_rnn

    # ---------------------------------------------------------------- streaming call
    def forward(self, mix, *args):
        """AV: forward(mix, roi, rnn, prev_roi); audio: forward(mix, rnn) -> (mask, rnn'[, prev_roi'])."""
        mask, out, _ = self.step(mix, *args)
        return (mask, *out)

    def step(self, mix, *args):
        if self.kind == "av":
            roi, rnn, prev = args
            v = read_mouths(self, roi, prev)
            mask, _, new_rnn = self._core(mix, rnn, v[:, None, :])
            return mask, [new_rnn, roi], v
        (rnn,) = args
        mask, _, new_rnn = self._core(mix, rnn, None)
        return mask, [new_rnn], None

    # ---------------------------------------------------------------- whole utterance
    def forward_sequence(self, mix: torch.Tensor, rois: torch.Tensor | None = None, with_aux: bool = False):
        mask, aux, _ = self.forward_parts(mix, rois)
        return (mask, aux) if with_aux and aux is not None else mask

    def forward_parts(self, mix: torch.Tensor, rois: torch.Tensor | None = None):
        return self.sequence_parts(mix, rois)[:3]

    def sequence_parts(self, mix: torch.Tensor, rois: torch.Tensor | None = None):
        """(mask, aux energy prediction [B, chunks] or None, internal masks or None, visual
        features [B, chunks, V] or None), as `Separator.sequence_parts`."""
        B = mix.shape[0]
        rnn = torch.zeros(B, self.blocks_n, N_BANDS, self.dim, dtype=mix.dtype, device=mix.device)
        v = read_mouth_sequence(self, rois) if self.kind == "av" else None
        mask, internal, _ = self._core(mix, rnn, v)
        return mask, (self.aux(v)[..., 0] if v is not None else None), internal, v


def band_flops_per_second(model: BandSeparator) -> float:
    """Multiply-adds x 2 per second of audio (100 frames, 25 chunks), counted analytically; the
    training-only aux head excluded."""
    D, K, h = model.dim, N_BANDS, model.dim // 2
    per_block = K * (2 * 3 * (D * h + h * h) + 3 * (D * D + D * D) + D * D)
    per_frame = K * 3 * BAND * D + model.blocks_n * per_block + K * D * BAND * 2 * model.n_masks
    per_frame += D * 3 if model.select else 0
    per_chunk = 0
    if model.kind == "av":
        per_chunk += mouth_reader_macs(model.visual_dim) + model.blocks_n * model.visual_dim * 2 * D
    return 2.0 * (100 * per_frame + 25 * per_chunk)

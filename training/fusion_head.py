"""v8L: the fused separator with a learned pick (MODELS.md, "v8L"). `training/fusion.py` picks the
baseline output by a fixed running correlation and takes the plain geometric mean; it loses most
at the start of a clip, before the face has spoken, and with 3 talkers. Here a small recurrent
head, trained with the members frozen, decides per chunk:
- the pick: p = sigmoid(BETA x (running cosine of output 1 - of output 0) + learned), the picked
  mask (1 - p) m_0 + p m_1; the first term is the fixed rule, so step 0 is that rule;
- per band the geometric weight a (magnitude |m_E|^(1 - a) |m_P|^a, phase of m_E + m_P), 0.5 at
  step 0: how far to trust the baseline in each band.
Its inputs per chunk: per band the log energies of the AV estimate, both baseline outputs and the
mixture, the cosines between the AV estimate and each output, the running cosine difference, and
the face's visual features from the AV model's (frozen) encoder, of the newest ROI (with
look-ahead the chunk being fused is L calls old; the members saw those ROIs too).
Training: the AV loss of training/losses.py (SI-SDR of talking faces, energy of silent ones) on
the same dynamic mixtures; the baseline's two outputs are swapped at random per example, so that
the head cannot rely on an order the baseline does not have.
"""

from __future__ import annotations

import torch
from torch import nn

from .fusion import EPS, MemberPair, magnitude, mixture_power
from .model import CHUNK_FRAMES, N_BINS, Separator

BAND_EDGES = (0, 8, 16, 32, 48, 64, 96, 160, N_BINS)  # 8 bands, finer where speech is
N_BANDS = len(BAND_EDGES) - 1
LAM = 0.9  # per chunk: memory of the running cosine (~0.4 s)
BETA = 10.0  # the fixed rule's slope: a cosine difference of 0.1 gives p = 0.73
WIDTH = 64


def _band_matrix() -> torch.Tensor:
    m = torch.zeros(N_BINS, N_BANDS)
    for b in range(N_BANDS):
        m[BAND_EDGES[b]:BAND_EDGES[b + 1], b] = 1.0
    return m


class FusionHead(nn.Module):
    def __init__(self, visual_dim: int, width: int = WIDTH, weight: float = 0.5):
        super().__init__()
        if not 0.0 < weight < 1.0:
            raise ValueError(f"fusion head: weight = {weight} is outside (0, 1)")
        self.register_buffer("bands", _band_matrix(), persistent=False)
        n_in = 4 * N_BANDS + 2 * N_BANDS + 1 + visual_dim
        self.inp = nn.Linear(n_in, width)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.out = nn.Linear(width, 1 + N_BANDS)
        nn.init.zeros_(self.out.weight)  # step 0: the fixed rule, a = 0.5 everywhere
        nn.init.zeros_(self.out.bias)
        with torch.no_grad():  # step 0: geometric weight `weight` on the picked baseline mask
            self.out.bias[1:] = float(torch.logit(torch.tensor(weight)))
        self.width = width

    def chunk_stats(self, me, mo, power):
        """Per chunk and band: energies [B, n, 4, NB] (AV, out 0, out 1, mixture) and cosines
        [B, n, 2, NB], and the chunk totals for the running cosine [B, n, 5] (cross 0, cross 1,
        energy 0, energy 1, AV energy). me [B, 2, T, F], mo [B, 2, 2, T, F], power [B, T, F]."""
        B, T = power.shape[0], power.shape[1]
        n = T // CHUNK_FRAMES

        def per_chunk(x):  # [B, T, F] -> [B, n, NB]
            return (x.reshape(B, n, CHUNK_FRAMES, N_BINS).sum(2)) @ self.bands

        ae, ao = magnitude(me), magnitude(mo)
        cross = [(me[:, 0] * mo[:, q, 0] + me[:, 1] * mo[:, q, 1]) * power for q in range(2)]  # Re conj(E) O_q
        en = [ae ** 2 * power, ao[:, 0] ** 2 * power, ao[:, 1] ** 2 * power, power]
        eb = torch.stack([per_chunk(x) for x in en], dim=2)  # [B, n, 4, NB]
        cb = torch.stack([per_chunk(c) for c in cross], dim=2)  # [B, n, 2, NB]
        cos = cb / torch.sqrt(eb[:, :, :1] * eb[:, :, 1:3] + EPS)
        tot = torch.cat([cb.sum(-1), eb[:, :, 1:3].sum(-1), eb[:, :, :1].sum(-1)], dim=2)  # [B, n, 5]
        return eb, cos, tot

    def features(self, eb, cos, dcos, vis):
        logx = torch.log10(eb[:, :, 3] + 1e-6)
        rel = torch.log10(eb[:, :, :3] + 1e-8) - logx[:, :, None]
        x = torch.cat([rel.flatten(2), logx, cos.flatten(2), dcos[..., None], vis], dim=2)
        return torch.relu(self.inp(x))

    def fuse(self, me, mo, h, dcos):
        """Fused mask [B, 2, T, F] from the head's outputs h [B, n, W] and dcos [B, n]."""
        o = self.out(h)  # [B, n, 1 + NB]
        p = torch.sigmoid(BETA * dcos + o[..., 0])  # [B, n]
        a = torch.sigmoid(o[..., 1:]) @ self.bands.t()  # [B, n, F]
        p = p.repeat_interleave(CHUNK_FRAMES, dim=1)[:, None, :, None]  # [B, 1, T, 1]
        a = a.repeat_interleave(CHUNK_FRAMES, dim=1)
        mp = mo[:, 0] + p * (mo[:, 1] - mo[:, 0])
        lm = (1.0 - a) * torch.log(magnitude(me) + 1e-8) + a * torch.log(magnitude(mp) + 1e-8)
        s = me + mp
        scale = torch.exp(lm) / torch.clamp(magnitude(s), min=1e-6)
        return s * scale[:, None]


def running_cosine(tot: torch.Tensor, sums: torch.Tensor, lam: float = LAM):
    """Leaky sums over chunks of `tot` [B, n, 5] from `sums` [B, 5] -> (cos1 - cos0 per chunk
    [B, n], final sums [B, 5])."""
    out = []
    for c in range(tot.shape[1]):
        sums = lam * sums + tot[:, c]
        den = torch.sqrt(sums[:, 4] + EPS)
        cos = sums[:, :2] / (torch.sqrt(sums[:, 2:4] + EPS) * den[:, None])
        out.append(cos[:, 1] - cos[:, 0])
    return torch.stack(out, dim=1), sums


class LearnedFusedSeparator(MemberPair):
    """The AV call contract, like `fusion.FusedSeparator`, with the running sums [B, 5] and the
    head's GRU state as the fusion's own states."""

    fused_tag = "2"

    def __init__(self, av: Separator, audio: Separator, width: int = WIDTH, weight: float = 0.5):
        super().__init__(av, audio)
        for p in list(av.parameters()) + list(audio.parameters()):
            p.requires_grad_(False)  # the members are the shipped models, unchanged
        self.head = FusionHead(av.visual_dim, width, weight)
        self.select = False
        # export parity bound (export.py, random inputs): the fused phase is that of m_E + m_P,
        # ill-conditioned in a bin where the two nearly cancel (opposite phases), and a learned
        # weight a != 1/2 keeps the magnitude there; such bins differ by ~5e-4 between PyTorch
        # and ONNX Runtime. The deciding figures are computed through ONNX Runtime anyway.
        self.parity_tol = 1e-3

    def train(self, mode: bool = True):
        super().train(mode)
        self.av.eval()
        self.audio.eval()
        return self

    def fusion_state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        return {"fuse_sums": (batch, 5), "fuse_gru": (batch, 1, self.head.width)}

    def _run(self, me, mo, power, vis, sums, hstate, pre_vis=None):
        """pre_vis [B, L, V] (whole signals): the visual features of the L calls a stream makes
        before its first mask, whose chunks have no power (zero features but the face's): the
        head's GRU steps through them in a stream, so it does here too."""
        eb, cos, tot = self.head.chunk_stats(me, mo, power)
        dcos, sums = running_cosine(tot, sums)
        x = self.head.features(eb, cos, dcos, vis)
        if pre_vis is not None and pre_vis.shape[1]:
            B, L = pre_vis.shape[:2]
            zeros = torch.zeros(B, L, eb.shape[2], N_BANDS)
            x0 = self.head.features(zeros, torch.zeros(B, L, 2, N_BANDS), torch.zeros(B, L), pre_vis)
            h, hstate = self.head.gru(torch.cat([x0, x], dim=1), hstate)
            h = h[:, L:]
        else:
            h, hstate = self.head.gru(x, hstate)
        return self.head.fuse(me, mo, h, dcos), sums, hstate

    def forward(self, mix, roi, *states):
        with torch.no_grad():
            me, mo, vis, power, out, (sums, hstate) = self.step_members(mix, roi, states)
        mask, sums, hstate = self._run(me, mo, power, vis[:, None], sums, hstate.transpose(0, 1).contiguous())
        return (mask, *out, sums, hstate.transpose(0, 1))

    def forward_parts(self, mix: torch.Tensor, rois: torch.Tensor, swap: torch.Tensor | None = None):
        """Whole signal (the training loop's AV interface): (fused mask [B, 2, T, F], None, None).
        swap [B] bool: exchange the baseline's two outputs of those examples (training)."""
        B, n, L = mix.shape[0], mix.shape[2] // CHUNK_FRAMES, self.lookahead
        with torch.no_grad():
            me, _, _, vis_all = self.av.sequence_parts(mix, rois)  # visual features of every call
            mo = self.audio.forward_sequence(mix)
            vis, pre_vis = vis_all[:, L:L + n], vis_all[:, :L]
        if swap is None and self.training:
            swap = torch.rand(B) < 0.5
        if swap is not None:
            mo = torch.where(swap[:, None, None, None, None], mo.flip(1), mo)
        mask, _, _ = self._run(me, mo, mixture_power(mix), vis, torch.zeros(B, 5), None, pre_vis)
        return mask, None, None

    def forward_sequence(self, mix: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.forward_parts(mix, rois, swap=torch.zeros(mix.shape[0], dtype=torch.bool))[0]

    def fusion_flops(self) -> float:
        W = self.head.width
        head = 25 * (2 * (W * (7 * N_BANDS + 1 + self.av.visual_dim) + 6 * W * W + W * (1 + N_BANDS)))
        return head + 100 * N_BINS * 60

    def metadata(self) -> dict[str, str]:
        return super().metadata() | {"fuse_head_width": str(self.head.width)}


def make_learned_fused(cfg: dict) -> LearnedFusedSeparator:
    """[model] kind = "fused_head": the members from [fuse] av / audio (their runs' model.pt), a
    fresh head of [fuse] width whose step-0 rule has geometric weight [fuse] weight (default 1/2)
    on the picked baseline mask. With train.steps = 0 that rule is the model (`load_model`
    needs no run of its own: v8S)."""
    from .fusion import load_members

    av, audio = load_members(cfg)
    f = cfg.get("fuse", {})
    torch.manual_seed(int(cfg.get("seed", 0)))  # the head's (unused at step 0) GRU weights
    return LearnedFusedSeparator(av, audio, int(f.get("width", WIDTH)), float(f.get("weight", 0.5)))

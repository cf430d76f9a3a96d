"""v8 "fused" separator: the AV model's mask for a face, refined by the audio-only baseline's
output that the face picks (MODELS.md, "v8 fused").

Per call both models run on the same chunk; with look-ahead both return the mask of the chunk
given L calls earlier, so the fused mask is that chunk's too.
- Pick: for each baseline output q a leaky running sum over the chunks seen so far of
  sum |m_E| |m_q| |X|^2 and sum |m_q|^2 |X|^2 (X the uncompressed mixture of that chunk); the
  output with the larger normalised correlation sum_0 / sqrt(sum_1) is P. Causal: the choice
  uses the current chunk and the past only. Leaky (FORGET per chunk) so that a stream that runs
  for days neither overflows float32 nor stays bound to a choice made hours ago.
- Fuse per time-frequency bin: magnitude sqrt(|m_E| |m_P|), phase of m_E + m_P. A geometric mean
  is never louder than the quieter mask by more than the square root of their ratio: where the
  AV model is silent (a face that has not spoken yet), a wrongly picked P is held down.
No weights of its own: the two members are the shipped models, unchanged.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from .model import CHUNK_FRAMES, N_BINS, Separator, count_params, flops_per_second
from .signal import COMPRESS_EXPONENT

FORGET = 0.99  # per 40 ms chunk: the running sums' memory is ~100 chunks (4 s)
EPS = 1e-12


def magnitude(m: torch.Tensor) -> torch.Tensor:
    """|mask| of [..., 2 (re, im), T, F] -> [..., T, F]."""
    return torch.sqrt(m[..., 0, :, :] ** 2 + m[..., 1, :, :] ** 2)


def fuse_chunk(me: torch.Tensor, mo: torch.Tensor, power: torch.Tensor, sums: torch.Tensor,
               forget: float = FORGET) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk: AV mask me [B, 2, T, F], baseline masks mo [B, 2 outputs, 2, T, F], mixture power
    |X|^2 [B, T, F], running sums [B, 2 outputs, 2] -> (fused mask [B, 2, T, F], new sums)."""
    ae, ao = magnitude(me), magnitude(mo)  # [B, T, F], [B, 2, T, F]
    p = power[:, None]
    chunk = torch.stack([(ae[:, None] * ao * p).sum(dim=(2, 3)), (ao * ao * p).sum(dim=(2, 3))], dim=2)
    sums = forget * sums + chunk
    score = sums[..., 0] / torch.sqrt(sums[..., 1] + EPS)  # [B, 2]
    second = (score[:, 1] > score[:, 0]).to(me.dtype)[:, None, None, None]
    mp = mo[:, 0] + second * (mo[:, 1] - mo[:, 0])  # the picked output's mask
    s = me + mp
    mag = torch.sqrt(ae * magnitude(mp))
    scale = mag / torch.clamp(magnitude(s), min=1e-6)  # |s| ~ 0: the fused mask is ~ 0 there too
    return s * scale[:, None], sums


def mixture_power(mix: torch.Tensor) -> torch.Tensor:
    """|X|^2 [B, T, F] from the model input (compressed, |X|^c e^{i angle X}) [B, 2, T, F]."""
    c2 = mix[:, 0] ** 2 + mix[:, 1] ** 2  # |X|^(2c)
    return torch.pow(c2 + 1e-30, 1.0 / COMPRESS_EXPONENT) * (c2 > 0).to(mix.dtype)


class MemberPair(nn.Module, abc.ABC):
    """What the fused separators share (this rule and `fusion_head.LearnedFusedSeparator`): an AV
    model and a 2-output baseline with the same look-ahead behind the AV call contract (mix, roi,
    states -> mask, states). The states are the AV model's (av_*), the baseline's (audio_*), the
    mixture power of the chunks whose masks are still to come (look-ahead), then the fusion's own
    (`fusion_state_shapes`)."""

    fused_tag = ""  # metadata "fused": which fusion

    def __init__(self, av: Separator, audio: Separator):
        super().__init__()
        if av.kind != "av" or audio.kind != "audio" or audio.n_out != 2:
            raise ValueError("fused: needs an AV model and a 2-output audio-only model")
        if av.lookahead != audio.lookahead:
            raise ValueError(f"fused: look-ahead {av.lookahead} (AV) and {audio.lookahead} (audio) chunks differ")
        self.av, self.audio = av, audio
        self.kind, self.n_out, self.lookahead = "av", 1, av.lookahead

    @property
    def lookahead_frames(self) -> int:
        return self.lookahead * CHUNK_FRAMES

    @abc.abstractmethod
    def fusion_state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """The fusion's own state tensors (each subclass: its pick sums, head state, ...)."""

    def state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        s = {f"av_{k}": v for k, v in self.av.state_shapes(batch).items()}
        s |= {f"audio_{k}": v for k, v in self.audio.state_shapes(batch).items()}
        if self.lookahead:
            s["fuse_power"] = (batch, self.lookahead_frames, N_BINS)
        return s | self.fusion_state_shapes(batch)

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        return {k: torch.zeros(v) for k, v in self.state_shapes(batch).items()}

    def step_members(self, mix, roi, states):
        """One call of both members: (AV mask, baseline masks, the face's visual features [B, V],
        the mixture power of the chunk whose masks these are, the members' and the power
        history's new states, the fusion's own state inputs)."""
        na, nb = len(self.av.state_shapes(1)), len(self.audio.state_shapes(1))
        me, av_states, vis = self.av.step(mix, roi, *states[:na])
        mo, *audio_states = self.audio(mix, *states[na:na + nb])
        rest = list(states[na + nb:])
        power = mixture_power(mix)
        out = [*av_states, *audio_states]
        if self.lookahead:  # the masks are those of the chunk L calls back: its power too
            full = torch.cat([rest.pop(0), power], dim=1)
            power = full[:, :CHUNK_FRAMES]
            out.append(full[:, CHUNK_FRAMES:])
        return me, mo, vis, power, out, rest

    def flops(self) -> float:
        """Both members, plus the fusion's own (`fusion_flops`)."""
        return flops_per_second(self.av) + flops_per_second(self.audio) + self.fusion_flops()

    @abc.abstractmethod
    def fusion_flops(self) -> float:
        """The fusion's own FLOP per second of audio, beyond the members'."""

    def metadata(self) -> dict[str, str]:
        """Export metadata beyond the call contract's: the members' shapes and the fusion."""
        a, b = self.av, self.audio
        return {"parameters": str(count_params(self)), "flops_per_second": str(int(self.flops())),
                "hidden": str(a.hidden), "gru_hidden": str(a.gru_hidden), "gru_layers": str(a.layers),
                "post_blocks": str(a.post_blocks), "band_head": str(a.band_head), "roi_norm": str(int(a.roi_norm)),
                "select": str(int(a.select)), "fused": self.fused_tag,
                "audio_hidden": str(b.hidden), "audio_post_blocks": str(b.post_blocks)}


class FusedSeparator(MemberPair):
    """v8 fused: the fixed rule of `fuse_chunk`; its own state is the running sums [B, 2, 2]."""

    fused_tag = "1"

    def __init__(self, av: Separator, audio: Separator, forget: float = FORGET):
        super().__init__(av, audio)
        if not 0.0 < forget <= 1.0:
            raise ValueError(f"fused: forget = {forget} is outside (0, 1]")
        self.forget = float(forget)

    def fusion_state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        return {"fuse_sums": (batch, 2, 2)}

    def forward(self, mix, roi, *states):
        me, mo, _, power, out, (sums,) = self.step_members(mix, roi, states)
        mask, sums = fuse_chunk(me, mo, power, sums, self.forget)
        return (mask, *out, sums)

    def forward_sequence(self, mix: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Whole signal [B, 2, T, F] with rois [B, chunks, 1, 48, 48] -> fused mask [B, 2, T, F],
        the same as calling `forward` chunk by chunk from the initial state."""
        me = self.av.forward_sequence(mix, rois)
        mo = self.audio.forward_sequence(mix)
        power = mixture_power(mix)
        sums = torch.zeros(mix.shape[0], 2, 2, dtype=mix.dtype)
        out = []
        for c in range(mix.shape[2] // CHUNK_FRAMES):
            sl = slice(c * CHUNK_FRAMES, (c + 1) * CHUNK_FRAMES)
            m, sums = fuse_chunk(me[..., sl, :], mo[..., sl, :], power[:, sl], sums, self.forget)
            out.append(m)
        return torch.cat(out, dim=-2)

    def fusion_flops(self) -> float:
        """~30 operations per bin and frame (magnitudes, sums, pick, square roots, scale)."""
        return 30.0 * N_BINS * 100

    def metadata(self) -> dict[str, str]:
        return super().metadata() | {"fuse_forget": str(self.forget)}


def load_members(cfg: dict) -> tuple[Separator, Separator]:
    """The (AV, audio-only) members of a fused config: [fuse] av / audio = the run names
    (training/runs/<name>/model.pt), in eval mode."""
    from .config import ROOT
    from .model_setup import make_model

    f = cfg.get("fuse", {})
    members = []
    for key in ("av", "audio"):
        if key not in f:
            raise ValueError(f"config {cfg['name']}: [fuse] {key} (the run of the {key} member) is missing")
        path = ROOT / "training" / "runs" / f[key] / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"config {cfg['name']}: [fuse] {key} = {f[key]!r}: {path} does not exist "
                                    "(train that run first)")
        ck = torch.load(path, map_location="cpu", weights_only=False)
        m = make_model(ck["config"])
        m.load_state_dict({k: v.cpu() for k, v in ck["model"].items()})
        if m.kind != key:
            raise ValueError(f"config {cfg['name']}: [fuse] {key} = {f[key]!r} is a {m.kind} model, not {key}")
        members.append(m.eval())
    return members[0], members[1]


def load_fused(cfg: dict) -> FusedSeparator:
    """The fused model of a config with [model] kind = "fused" (no weights of its own)."""
    return FusedSeparator(*load_members(cfg), forget=float(cfg.get("fuse", {}).get("forget", FORGET))).eval()

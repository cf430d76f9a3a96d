"""Helpers shared by the torch model tests (not a test module): streaming a model chunk by chunk,
and small members for the fused separators. Import only after `pytest.importorskip("torch")`."""

from __future__ import annotations

import torch

from training.model import CHUNK_FRAMES, N_BINS, ROI_SIZE, Separator


def stream_chunks(m, mix, rois, first_prev=False):
    """Chunk by chunk with explicit state from the initial one, flushed with `m.lookahead` chunks
    of zero input (the face kept), the first `m.lookahead` masks dropped: (masks, final states).
    first_prev (AV): the first ROI stands in as the previous one (no cut at the start)."""
    n, look = mix.shape[2] // CHUNK_FRAMES, m.lookahead
    init = m.initial_state(mix.shape[0])
    if first_prev:
        init["prev_roi"] = rois[:, 0].clone()
    states, outs = list(init.values()), []
    with torch.no_grad():
        for c in range(n + look):
            x = mix[:, :, c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES] if c < n else torch.zeros_like(mix[:, :, :CHUNK_FRAMES])
            face = [rois[:, min(c, n - 1)]] if m.kind == "av" else []
            y, *states = m(x, *face, *states)
            outs.append(y)
    return torch.cat(outs[look:], dim=-2), states


def random_inputs(B=2, chunks=6, seed=0):
    """A random compressed mixture [B, 2, 4 chunks, 257] and ROIs [B, chunks, 1, 48, 48]."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(B, 2, CHUNK_FRAMES * chunks, N_BINS, generator=g)
    rois = torch.rand(B, chunks, 1, ROI_SIZE, ROI_SIZE, generator=g)
    return mix, rois


def small_members(look: int) -> tuple[Separator, Separator]:
    """A small AV model (select, ROI normalisation) and a small baseline with `look` chunks of
    look-ahead, their zero-initialised parts made non-trivial (as in test_model.py), in eval mode."""
    torch.manual_seed(0)
    av = Separator("av", hidden=32, visual_dim=8, frame_dim=16, post_blocks=1, post_width=16, select=True,
                   roi_norm=True, lookahead=look)
    audio = Separator("audio", hidden=32, frame_dim=16, post_blocks=1, post_width=16, lookahead=look)
    with torch.no_grad():
        for m in (av, audio):
            for lin in m.ahead:
                lin.weight.normal_(0.0, 0.05)
            m.head.weight.normal_(0.0, 0.3)
        av.sel.weight.normal_(0.0, 0.3)
    return av.eval(), audio.eval()

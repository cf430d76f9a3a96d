"""The v8L fused separator with a learned pick (training/fusion_head.py): needs torch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.fusion_head import BETA, LearnedFusedSeparator, running_cosine  # noqa: E402
from training.model import CHUNK_FRAMES, N_BINS, ROI_SIZE  # noqa: E402
from training.tests.streaming import small_members, stream_chunks  # noqa: E402


def _fused(look: int, trained_head: bool = True, weight: float = 0.5) -> LearnedFusedSeparator:
    m = LearnedFusedSeparator(*small_members(look), width=16, weight=weight)
    if trained_head:  # as after training: the head's outputs no longer zero
        with torch.no_grad():
            m.head.out.weight.normal_(0.0, 0.5)
            m.head.out.bias.normal_(0.0, 0.5)
    return m.eval()


def _inputs(chunks=7):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, 2, chunks * CHUNK_FRAMES, N_BINS, generator=g),
            torch.rand(2, chunks, 1, ROI_SIZE, ROI_SIZE, generator=g))


@pytest.mark.parametrize("look", [0, 2])
def test_streaming_equals_whole_signal(look):
    """Chunk by chunk (the head's GRU stepping through the look-ahead calls before the first mask,
    as a stream does) equals the whole signal."""
    m = _fused(look)
    mix, rois = _inputs()
    with torch.no_grad():
        whole = m.forward_sequence(mix, rois)
    stream, _ = stream_chunks(m, mix, rois)
    # members agree to ~1e-6; a power of a magnitude near 0 magnifies that
    assert torch.allclose(stream, whole, atol=2e-4), (stream - whole).abs().max()


@pytest.mark.parametrize("weight", [0.5, 0.3])
def test_step_zero_is_the_fixed_soft_rule(weight):
    """Before training: pick p = sigmoid(BETA x running cosine difference), magnitude
    |m_E|^(1 - a) |m_P|^a with a = [fuse] weight (v8S), phase of m_E + m_P."""
    m = _fused(0, trained_head=False, weight=weight)
    mix, rois = _inputs(5)
    with torch.no_grad():
        got = m.forward_sequence(mix, rois)
        me = m.av.forward_sequence(mix, rois)
        mo = m.audio.forward_sequence(mix)
        from training.fusion import mixture_power

        _, _, tot = m.head.chunk_stats(me, mo, mixture_power(mix))
        dcos, _ = running_cosine(tot, torch.zeros(2, 5))
    p = torch.sigmoid(BETA * dcos).repeat_interleave(CHUNK_FRAMES, 1)[:, None, :, None]
    mp = (1 - p) * mo[:, 0] + p * mo[:, 1]
    mag = lambda z: torch.sqrt(z[:, 0] ** 2 + z[:, 1] ** 2)  # noqa: E731
    s = me + mp
    blend = (mag(me) + 1e-8) ** (1 - weight) * (mag(mp) + 1e-8) ** weight
    want = s * (blend / mag(s).clamp(min=1e-6))[:, None]
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_only_the_head_trains():
    m = _fused(2, trained_head=False)
    m.train()
    assert not m.av.training and not m.audio.training
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("head.") for n in names)
    mix, rois = _inputs(4)
    mask, aux, internal = m.forward_parts(mix, rois)
    mask.pow(2).mean().backward()
    assert aux is None and internal is None
    assert m.head.out.weight.grad is not None and m.av.head.weight.grad is None


def test_running_cosine_prefers_the_matching_output():
    """Totals where the AV estimate correlates with output 1 give a positive difference."""
    tot = torch.tensor([[[0.1, 0.9, 1.0, 1.0, 1.0]] * 3])  # cross 0, cross 1, energy 0, energy 1, AV
    d, sums = running_cosine(tot, torch.zeros(1, 5))
    assert bool((d > 0.7).all()) and sums.shape == (1, 5)


def test_export_parity_and_contract(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.export import export_model, parity
    from training.onnx_run import OnnxSeparator

    m = _fused(2)
    path = tmp_path / "fused-head.onnx"
    export_model(m, {"name": "fused-head-test", "export": {}}, path)
    assert parity(m, path) <= m.parity_tol
    run = OnnxSeparator(path)
    assert run.kind == "av" and run.outputs == 1 and run.lookahead_chunks == 2
    assert run.meta["fused"] == "2" and run.state_inputs[-2:] == ["state_fuse_sums", "state_fuse_gru"]


def test_head_weight_outside_the_open_interval_is_refused():
    with pytest.raises(ValueError, match="weight = 1.0"):
        LearnedFusedSeparator(*small_members(0), width=16, weight=1.0)

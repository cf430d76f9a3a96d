"""The v8 fused separator (training/fusion.py): needs torch (`make test-training`)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.fusion import FusedSeparator, fuse_chunk, load_fused, mixture_power  # noqa: E402
from training.model import CHUNK_FRAMES, N_BINS, ROI_SIZE  # noqa: E402
from training.signal import COMPRESS_EXPONENT  # noqa: E402
from training.tests.streaming import small_members, stream_chunks  # noqa: E402


def _fused(look: int) -> FusedSeparator:
    return FusedSeparator(*small_members(look)).eval()


@pytest.mark.parametrize("look", [0, 2])
def test_streaming_equals_whole_signal(look):
    """Chunk by chunk with the states fed back (the mixture power of the chunks still to come
    included, with look-ahead) equals the whole signal."""
    m = _fused(look)
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(2, 2, 8 * CHUNK_FRAMES, N_BINS, generator=g)
    rois = torch.rand(2, 8, 1, ROI_SIZE, ROI_SIZE, generator=g)
    with torch.no_grad():
        whole = m.forward_sequence(mix, rois)
    stream, _ = stream_chunks(m, mix, rois)
    assert whole.shape == (2, 2, 8 * CHUNK_FRAMES, N_BINS)
    # members agree to ~1e-6; the square root of a product near 0 magnifies that (d sqrt(u) = du / 2 sqrt(u))
    assert torch.allclose(stream, whole, atol=2e-4), (stream - whole).abs().max()


def _masks(seed: int):
    g = torch.Generator().manual_seed(seed)
    mo = torch.randn(3, 2, 2, CHUNK_FRAMES, N_BINS, generator=g)
    power = torch.rand(3, CHUNK_FRAMES, N_BINS, generator=g)
    return mo, power


@pytest.mark.parametrize("q", [0, 1])
def test_pick_follows_the_av_mask(q):
    """An AV mask equal to baseline output q picks q, and the geometric mean of a mask with itself
    is that mask."""
    mo, power = _masks(q)
    fused, sums = fuse_chunk(mo[:, q].clone(), mo, power, torch.zeros(3, 2, 2))
    assert torch.allclose(fused, mo[:, q], atol=1e-5)
    score = sums[..., 0] / sums[..., 1].sqrt()
    assert bool((score[:, q] > score[:, 1 - q]).all())


def test_silent_face_stays_silent_and_pick_remembers():
    """A zero AV mask gives a zero fused mask whatever the baseline says, and adds no evidence:
    the running sums only decay, so the earlier choice stands."""
    mo, power = _masks(3)
    _, sums = fuse_chunk(mo[:, 1].clone(), mo, power, torch.zeros(3, 2, 2))
    fused, decayed = fuse_chunk(torch.zeros_like(mo[:, 0]), mo, power, sums, forget=0.9)
    assert float(fused.abs().max()) == 0.0
    assert torch.allclose(decayed[..., 0], 0.9 * sums[..., 0])
    score = decayed[..., 0] / decayed[..., 1].sqrt()
    assert bool((score[:, 1] > score[:, 0]).all())


def test_mixture_power_inverts_the_compression():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 3, 5, dtype=torch.complex64, generator=g) * 20
    c = X.abs().pow(COMPRESS_EXPONENT - 1) * X
    mix = torch.stack([c.real, c.imag], dim=1)
    assert torch.allclose(mixture_power(mix), X.abs() ** 2, rtol=1e-3)
    assert float(mixture_power(torch.zeros(1, 2, 1, 3)).abs().max()) == 0.0


def test_export_parity_and_contract(tmp_path):
    """The fused graph exports with the AV call contract (mix, roi, states) and matches PyTorch."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.export import export_model, parity
    from training.onnx_run import OnnxSeparator

    m = _fused(2)
    path = tmp_path / "fused.onnx"
    export_model(m, {"name": "fused-test", "export": {}}, path)
    assert parity(m, path) <= 1e-4
    run = OnnxSeparator(path)
    assert run.kind == "av" and run.outputs == 1 and run.lookahead_chunks == 2
    assert run.meta["fused"] == "1" and run.state_inputs[-1] == "state_fuse_sums"


def test_load_fused_names_the_missing_run(tmp_path):
    cfg = {"name": "fuse-x", "model": {"kind": "fused"}, "fuse": {"av": "no-such-run-av", "audio": "no-such-run"}}
    with pytest.raises(FileNotFoundError, match="no-such-run-av"):
        load_fused(cfg)
    with pytest.raises(ValueError, match=r"\[fuse\] av"):
        load_fused({"name": "fuse-y", "model": {"kind": "fused"}, "fuse": {}})

"""Model tests: need torch (run with `make test-training`); skipped when torch is missing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.model import CHUNK_FRAMES, N_BINS, ROI_SIZE, Separator, count_params, flops_per_second  # noqa: E402


def _inputs(B=2, chunks=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(B, 2, CHUNK_FRAMES * chunks, N_BINS, generator=g)
    rois = torch.rand(B, chunks, 1, ROI_SIZE, ROI_SIZE, generator=g)
    return mix, rois


@pytest.mark.parametrize("kind", ["av", "audio"])
def test_streaming_equals_whole_utterance(kind):
    torch.manual_seed(0)
    m = Separator(kind).eval()
    mix, rois = _inputs()
    with torch.no_grad():
        full = m.forward_sequence(mix, rois if kind == "av" else None)
        st = m.initial_state(mix.shape[0])
        outs = []
        for c in range(rois.shape[1]):
            x = mix[:, :, c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES]
            if kind == "av":
                y, st["conv"], st["gru"], st["prev_roi"] = m(x, rois[:, c], st["conv"], st["gru"], st["prev_roi"])
            else:
                y, st["conv"], st["gru"] = m(x, st["conv"], st["gru"])
            outs.append(y)
    stream = torch.cat(outs, dim=-2)
    assert stream.shape == ((2, 2, 24, N_BINS) if kind == "av" else (2, 2, 2, 24, N_BINS))
    assert torch.allclose(stream, full, atol=1e-5), (stream - full).abs().max()


def test_causal():
    torch.manual_seed(0)
    m = Separator("av").eval()
    mix, rois = _inputs()
    mix2, rois2 = mix.clone(), rois.clone()
    mix2[:, :, 12:] += 1.0
    rois2[:, 3:] = 0.5
    with torch.no_grad():
        a = m.forward_sequence(mix, rois)
        b = m.forward_sequence(mix2, rois2)
    assert torch.equal(a[:, :, :12], b[:, :, :12])
    assert not torch.allclose(a[:, :, 12:], b[:, :, 12:])


def test_batch_rows_independent():
    torch.manual_seed(0)
    m = Separator("av").eval()
    mix, rois = _inputs(B=3)
    with torch.no_grad():
        full = m.forward_sequence(mix, rois)
        one = m.forward_sequence(mix[1:2], rois[1:2])
    assert torch.allclose(full[1:2], one, atol=1e-6)


def test_roi_is_the_contract_crop():
    from training.mouth_crop import ROI_SIZE as CONTRACT

    assert ROI_SIZE == CONTRACT == 48
    assert Separator("av").state_shapes(2)["prev_roi"] == (2, 1, 48, 48)


def test_budget():
    av, au = Separator("av"), Separator("audio")
    assert flops_per_second(av) <= 1e9 and flops_per_second(au) <= 1e9
    # "same size": the baseline differs only by the visual encoder (< 10 % of the parameters)
    assert abs(count_params(av) - count_params(au)) < 0.1 * count_params(av)


@pytest.mark.parametrize("kind", ["av", "audio"])
def test_onnx_export_parity(kind, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.export import PARITY_TOL, export_model, parity

    torch.manual_seed(0)
    m = Separator(kind).eval()
    path = tmp_path / "m.onnx"
    export_model(m, {"name": "test"}, path)
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    for key in ("sample_rate", "n_fft", "win_length", "hop_length", "chunk_frames", "lookahead_frames",
                "compress_exponent", "roi_size", "state_inputs", "state_outputs", "inputs", "outputs"):
        assert key in meta, key
    assert meta["chunk_frames"] == "4" and meta["n_fft"] == "512" and meta["roi_size"] == "48"
    assert parity(m, path) <= PARITY_TOL

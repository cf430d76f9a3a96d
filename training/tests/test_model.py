"""Model tests: need torch (run with `make test-training`); skipped when torch is missing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.model import CHUNK_FRAMES, N_BINS, ROI_SIZE, Separator, count_params, flops_per_second  # noqa: E402
from training.tests.streaming import random_inputs as _inputs  # noqa: E402
from training.tests.streaming import stream_chunks as _stream  # noqa: E402


def _model(kind, layers=2, post=0, select=False, band=0, norm=False, look=0):
    """A model whose zero-initialised parts (per-frame blocks: the identity; selection: a third
    each; the band head and the look-ahead layers: nothing added) are made non-trivial, so that the
    tests exercise them."""
    m = Separator(kind, gru_layers=layers, post_blocks=post, select=select, band_head=band, roi_norm=norm,
                  lookahead=look)
    with torch.no_grad():
        for lin in m.ahead:
            lin.weight.normal_(0.0, 0.05)
        for block in m.post:
            block.outer.weight.normal_(0.0, 0.05)
        if select:
            m.sel.weight.normal_(0.0, 0.1)
        if band:
            m.band.out.weight.normal_(0.0, 0.05)
    return m.eval()


KINDS = [("av", 1, 0, False, 0, False), ("audio", 1, 0, False, 0, False), ("av", 2, 0, False, 0, False),
         ("audio", 2, 0, False, 0, False), ("av", 2, 2, False, 0, False), ("audio", 2, 2, False, 0, False),
         ("av", 2, 2, True, 0, False), ("av", 2, 2, True, 32, False), ("audio", 2, 2, False, 32, False),
         ("av", 2, 2, True, 0, True), ("av", 2, 2, True, 32, True)]
KINDS = [k + (0,) for k in KINDS] + [("av", 2, 2, True, 0, True, 2), ("av", 2, 2, True, 0, True, 1),
                                     ("audio", 2, 2, False, 0, False, 2)]  # ... + lookahead (v7)


@pytest.mark.parametrize("kind,layers,post,select,band,norm,look", KINDS)
def test_streaming_equals_whole_utterance(kind, layers, post, select, band, norm, look):
    """Chunk by chunk with explicit state, flushed with `look` chunks of zero input (the face
    kept), equals the whole utterance; a look-ahead model's first `look` masks are dropped."""
    torch.manual_seed(0)
    m = _model(kind, layers, post, select, band, norm, look)
    mix, rois = _inputs()
    with torch.no_grad():
        full = m.forward_sequence(mix, rois if kind == "av" else None)
    stream, _ = _stream(m, mix, rois)
    assert stream.shape == ((2, 2, 24, N_BINS) if kind == "av" else (2, 2, 2, 24, N_BINS))
    assert torch.allclose(stream, full, atol=1e-5), (stream - full).abs().max()


@pytest.mark.parametrize("select,band,norm,look", [(False, 0, False, 0), (True, 0, False, 0), (True, 32, False, 0),
                                                   (True, 0, True, 0), (True, 0, True, 1), (True, 0, True, 2)])
def test_causal(select, band, norm, look):
    """Changing the input from chunk 3 on leaves the masks of chunks before 3 - look unchanged
    and changes those after (a look-ahead model sees `look` chunks further)."""
    torch.manual_seed(0)
    m = _model("av", post=2, select=select, band=band, norm=norm, look=look)
    mix, rois = _inputs()
    mix2, rois2 = mix.clone(), rois.clone()
    mix2[:, :, 12:] += 1.0
    rois2[:, 3:] = 0.5
    with torch.no_grad():
        a = m.forward_sequence(mix, rois)
        b = m.forward_sequence(mix2, rois2)
    kept = (3 - look) * CHUNK_FRAMES
    assert torch.equal(a[:, :, :kept], b[:, :, :kept])
    for c in range(3 - look, 6):  # every later chunk sees the change
        sl = slice(c * CHUNK_FRAMES, (c + 1) * CHUNK_FRAMES)
        assert not torch.allclose(a[:, :, sl], b[:, :, sl]), c


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


def test_v3_weights_load_into_v4_unchanged():
    """train.init_from: a model without per-frame blocks loads into one with them (strict=False,
    only post.* missing) and computes the same mask, because the blocks start as the identity."""
    torch.manual_seed(0)
    v3 = Separator("av").eval()
    v4 = Separator("av", post_blocks=2).eval()
    missing, unexpected = v4.load_state_dict(v3.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("post.") for k in missing)
    mix, rois = _inputs()
    with torch.no_grad():
        assert torch.equal(v3.forward_sequence(mix, rois), v4.forward_sequence(mix, rois))


def test_v4s_weights_load_into_v5_unchanged():
    """v5's band head starts as a zero contribution: a v4s checkpoint (train.init_from) loads with
    only band.* missing and computes the same masks; a trained band head changes them."""
    torch.manual_seed(0)
    v4s = _model("av", post=2, select=True)
    v5 = Separator("av", post_blocks=2, select=True, band_head=32).eval()
    missing, unexpected = v5.load_state_dict(v4s.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("band.") for k in missing)
    mix, rois = _inputs()
    with torch.no_grad():
        assert torch.equal(v4s.forward_sequence(mix, rois), v5.forward_sequence(mix, rois))
        v5.band.out.weight.normal_(0.0, 0.05)
        assert not torch.allclose(v4s.forward_sequence(mix, rois), v5.forward_sequence(mix, rois))


def test_roi_norm_ignores_the_cameras_brightness_and_contrast():
    """v6 (roi_norm): the same mouth seen darker and flatter (x -> 0.5 x + 0.3, as a different
    camera gives it) yields the same mask; v4s's raw input does not. Measured against what another
    face changes in the same model (an untrained model's masks depend on the face only weakly)."""
    torch.manual_seed(0)
    mix, rois = _inputs()
    other = _inputs(seed=1)[1]
    dim = 0.5 * rois + 0.3
    ratio = {}
    with torch.no_grad():
        for norm in (False, True):
            m = _model("av", post=2, select=True, norm=norm)
            a = _stream(m, mix, rois, first_prev=True)[0]
            camera = (a - _stream(m, mix, dim, first_prev=True)[0]).abs().max()
            face = (a - _stream(m, mix, other, first_prev=True)[0]).abs().max()
            ratio[norm] = (camera / face).item()
    # not exact: the contrast floor ROI_NORM_EPS adds 1e-4 to a variance of ~0.08 (and 0.02)
    assert ratio[True] < 0.01, ratio
    assert ratio[False] > 0.1, ratio


def test_roi_norm_loads_a_v4s_checkpoint():
    """roi_norm adds no parameters: a v4s checkpoint loads strictly (train.init_from)."""
    v4s, v6 = Separator("av", post_blocks=2, select=True), Separator("av", post_blocks=2, select=True, roi_norm=True)
    v6.load_state_dict(v4s.state_dict(), strict=True)
    assert count_params(v4s) == count_params(v6)
    assert not Separator("audio", roi_norm=True).roi_norm  # no face, nothing to normalise


def test_band_head_sees_its_own_band():
    """A bin's band logits depend on its own band's spectrum (and, through the convolution, on
    the neighbouring bands) but not on a far band's, beyond what the frame vector carries."""
    from training.model import BandHead

    torch.manual_seed(0)
    h = BandHead(8, 1, 16).eval()
    with torch.no_grad():
        h.out.weight.normal_(0.0, 0.1)
        z = torch.randn(1, 2, 8)
        f = torch.randn(1, 2, N_BINS, 3)
        g = f.clone()
        g[:, :, 200:216] += 1.0  # bins of bands 12 and 13: the convolution reaches bands 11-14 (176-239)
        a, b = h(z, f).reshape(1, 2, 2, N_BINS), h(z, g).reshape(1, 2, 2, N_BINS)
    d = (a - b).abs().amax(dim=(0, 1, 2))
    assert float(d[200:216].min()) > 0 and float(d[:176].max()) == 0.0 and float(d[240:].max()) == 0.0


def test_select_starts_as_the_audio_only_separator():
    """train.init_select: the select model's internal masks are the audio-only model's, and its
    mask for a face is a third of their sum, until training moves the GRU's visual columns and
    the selection head away from zero."""
    from training.model_setup import init_select

    torch.manual_seed(0)
    au, av = _model("audio", post=2), _model("av", post=2)
    m = Separator("av", post_blocks=2, select=True).eval()
    init_select(m, au.state_dict(), av.state_dict())
    mix, rois = _inputs()
    with torch.no_grad():
        ref = au.forward_sequence(mix)
        mask, aux, internal = m.forward_parts(mix, rois)
    assert torch.allclose(internal, ref, atol=1e-6)
    assert torch.allclose(mask, (ref[:, 0] + ref[:, 1]) / 3, atol=1e-6)
    assert torch.equal(aux, av.forward_sequence(mix, rois, with_aux=True)[1])
    with pytest.raises(ValueError, match="init_select"):
        init_select(m, {**au.state_dict(), "head.bias": torch.zeros(3)}, av.state_dict())


@pytest.mark.parametrize("hidden,layers,post,select,band", [(192, 1, 0, False, 0), (384, 2, 0, False, 0),
                                                            (384, 2, 2, False, 0), (384, 2, 2, True, 0),
                                                            (384, 2, 2, True, 128)])
def test_budget(hidden, layers, post, select, band):
    av = Separator("av", hidden, gru_layers=layers, post_blocks=post, select=select, band_head=band)
    au = Separator("audio", hidden, gru_layers=layers, post_blocks=post, band_head=band)
    assert flops_per_second(av) <= 1e9 and flops_per_second(au) <= 1e9
    # "same size": the baseline differs only by the visual encoder (< 10 % of the parameters)
    assert abs(count_params(av) - count_params(au)) < 0.1 * count_params(av)


@pytest.mark.parametrize("kind,layers,post,select,band,norm,look", KINDS)
def test_onnx_export_parity(kind, layers, post, select, band, norm, look, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.export import PARITY_TOL, export_model, parity

    torch.manual_seed(0)
    m = _model(kind, layers, post, select, band, norm, look)
    path = tmp_path / "m.onnx"
    export_model(m, {"name": "test"}, path)
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    for key in ("sample_rate", "n_fft", "win_length", "hop_length", "chunk_frames", "lookahead_frames",
                "compress_exponent", "roi_size", "state_inputs", "state_outputs", "inputs", "outputs"):
        assert key in meta, key
    assert meta["chunk_frames"] == "4" and meta["n_fft"] == "512" and meta["roi_size"] == "48"
    assert meta["lookahead_frames"] == str(4 * look)
    assert parity(m, path) <= PARITY_TOL
    # the numpy/ONNX Runtime streaming runner (what CI and `make eval` use) agrees with PyTorch on
    # whole signals
    from training.onnx_run import OnnxSeparator
    from training.losses import forward_batch
    from training.torch_signal import estimates_time

    g = torch.Generator().manual_seed(3)
    mix = torch.randn(2, 640 * 6, generator=g, dtype=torch.float64).float() * 0.1
    rois = (torch.rand(2, 6, 48, 48, generator=g) * 255).round()
    with torch.no_grad():
        est, _ = forward_batch(m, mix, (rois / 255.0)[:, :, None] if kind == "av" else None)
        ref = estimates_time(est, mix.shape[-1]).numpy()
    got = OnnxSeparator(path).separate(mix.double().numpy(), rois.numpy().astype("uint8"))
    assert got.shape == ref.shape
    assert abs(got - ref).max() <= 1e-4 * max(1.0, abs(ref).max())


def test_v6_weights_load_into_v7_unchanged():
    """The look-ahead layers start at zero: a v6 model's weights give the same masks, `look`
    chunks later in a stream (the whole-utterance masks are equal)."""
    torch.manual_seed(0)
    v6 = _model("av", post=2, select=True, norm=True)
    v7 = Separator("av", post_blocks=2, select=True, roi_norm=True, lookahead=2).eval()
    missing, unexpected = v7.load_state_dict(v6.state_dict(), strict=False)
    assert sorted(missing) == ["ahead.0.weight", "ahead.1.weight"] and not unexpected
    mix, rois = _inputs()
    with torch.no_grad():
        a, b = v6.forward_sequence(mix, rois), v7.forward_sequence(mix, rois)
    # not bit for bit: the GRU runs over 2 more (padding) chunks, which may change the kernels' order
    assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()


def test_lookahead_bounds():
    with pytest.raises(ValueError, match="lookahead 3 chunks"):
        Separator("av", lookahead=3)  # 120 ms: over the 80 ms
    with pytest.raises(ValueError, match="band_head with lookahead"):
        Separator("av", select=True, band_head=32, lookahead=1)
    m = Separator("av", post_blocks=2, select=True, roi_norm=True, lookahead=2)
    assert m.lookahead_frames == 8 and flops_per_second(m) <= 1e9
    # each look-ahead chunk adds one 384 x 768 projection per 40 ms chunk: 14.7 MFLOP/s
    base = Separator("av", post_blocks=2, select=True, roi_norm=True)
    assert flops_per_second(m) - flops_per_second(base) == 2 * 2 * 25 * 384 * 768


@pytest.mark.parametrize("kind,look", [("av", 2), ("av", 0), ("audio", 2)])
def test_widened_gru_keeps_the_masks_then_streams(kind, look, tmp_path):
    """v7w: a trained model widened into a wider GRU computes the same masks; once its new
    units matter (weights perturbed), streaming still equals the whole utterance and the ONNX
    export matches PyTorch."""
    from training.export import PARITY_TOL, export_model, parity
    from training.model import widen_state_dict

    torch.manual_seed(0)
    av = kind == "av"
    narrow = _model(kind, post=2, select=av, norm=av, look=look)
    wide = Separator(kind, post_blocks=2, select=av, roi_norm=av, lookahead=look, gru_hidden=512).eval()
    wide.load_state_dict(widen_state_dict(wide, narrow.state_dict()), strict=True)
    mix, rois = _inputs()
    face = rois if av else None
    with torch.no_grad():
        a, b = narrow.forward_sequence(mix, face), wide.forward_sequence(mix, face)
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
        for p in wide.parameters():
            p.add_(0.01 * torch.randn_like(p))
        full = wide.forward_sequence(mix, face)
    stream, states = _stream(wide, mix, rois)
    assert torch.allclose(stream, full, atol=1e-5)
    assert states[0].shape == (2, 2, 512)
    path = tmp_path / "wide.onnx"
    export_model(wide, {"name": "test"}, path)
    assert parity(wide, path) <= PARITY_TOL
    assert flops_per_second(wide) <= 1e9

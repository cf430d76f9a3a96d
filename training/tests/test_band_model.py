"""v13 dual-path band separator (training/band_model.py): the Separator's call contract, streaming,
causality, export. Needs torch (`make test-training`)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.band_model import N_BANDS, BandSeparator, band_flops_per_second  # noqa: E402
from training.model import CHUNK_FRAMES, N_BINS  # noqa: E402
from training.tests.streaming import random_inputs as _inputs  # noqa: E402
from training.tests.streaming import stream_chunks  # noqa: E402

KINDS = [("av", True), ("av", False), ("audio", False)]


def _model(kind: str, select: bool, dim: int = 16, blocks: int = 2) -> BandSeparator:
    """A small model whose zero-initialised parts (FiLM, selection) are made non-trivial."""
    torch.manual_seed(0)
    m = BandSeparator(kind, dim=dim, blocks=blocks, visual_dim=8, select=select)
    with torch.no_grad():
        for b in m.blocks:
            if b.film is not None:
                b.film.weight.normal_(0.0, 0.3)
        if m.select:
            m.sel.weight.normal_(0.0, 0.3)
        m.head_w.normal_(0.0, 0.3)
    return m.eval()


@pytest.mark.parametrize("kind,select", KINDS)
def test_streaming_equals_whole_utterance(kind, select):
    m = _model(kind, select)
    mix, rois = _inputs()
    with torch.no_grad():
        full = m.forward_sequence(mix, rois if kind == "av" else None)
    stream, states = stream_chunks(m, mix, rois)
    assert stream.shape == ((2, 2, 24, N_BINS) if kind == "av" else (2, 2, 2, 24, N_BINS))
    assert torch.allclose(stream, full, atol=1e-5), (stream - full).abs().max()
    assert states[0].shape == (2, 2, N_BANDS, 16)
    assert states[0].abs().max() > 0  # the recurrence carries something from call to call


@pytest.mark.parametrize("kind,select", KINDS)
def test_causal_per_frame(kind, select):
    """Changing the mixture from frame 13 on leaves frames 0..12 unchanged (no look-ahead, not even
    within a chunk) and changes frame 13; a new ROI from chunk 3 on changes chunk 3's frames and
    none before."""
    m = _model(kind, select)
    mix, rois = _inputs()
    mix2 = mix.clone()
    mix2[:, :, 13:] += 1.0
    r = rois if kind == "av" else None
    with torch.no_grad():
        a = m.forward_sequence(mix, r)
        b = m.forward_sequence(mix2, r)
    assert torch.equal(a[..., :13, :], b[..., :13, :])
    assert not torch.allclose(a[..., 13, :], b[..., 13, :])
    if kind == "av":
        rois2 = rois.clone()
        rois2[:, 3:] = 0.5
        with torch.no_grad():
            c = m.forward_sequence(mix, rois2)
        assert torch.equal(a[..., :12, :], c[..., :12, :])
        assert not torch.allclose(a[..., 12, :], c[..., 12, :])


def test_face_changes_the_mask_and_silence_of_film_at_start():
    """FiLM starts at zero (the face changes nothing until trained); made non-trivial, another face
    changes the mask."""
    torch.manual_seed(0)
    fresh = BandSeparator("av", dim=16, blocks=2, visual_dim=8, select=False).eval()
    trained = _model("av", False)
    mix, rois = _inputs()
    other = torch.roll(rois, 1, dims=0)
    with torch.no_grad():
        assert torch.equal(fresh.forward_sequence(mix, rois), fresh.forward_sequence(mix, other))
        d = (trained.forward_sequence(mix, rois) - trained.forward_sequence(mix, other)).abs().max()
    assert d > 1e-3


def test_starts_near_the_identity_mask():
    torch.manual_seed(0)
    m = BandSeparator("audio").eval()
    mix, _ = _inputs()
    with torch.no_grad():
        mask = m.forward_sequence(mix)
    assert (mask[:, :, 0] - 1.0).abs().mean() < 0.3 and mask[:, :, 1].abs().mean() < 0.3


def test_budget():
    """The issue's budget: <= 1 GFLOP per second of audio per face (default size, AV with select)."""
    assert band_flops_per_second(BandSeparator("av")) <= 1e9
    assert band_flops_per_second(BandSeparator("audio")) < band_flops_per_second(BandSeparator("av"))


def test_make_model_dispatch():
    from training.model_setup import make_model

    m = make_model({"model": {"arch": "dualpath", "kind": "audio", "dim": 16, "blocks": 1}})
    assert isinstance(m, BandSeparator) and m.kind == "audio" and m.blocks_n == 1
    with pytest.raises(ValueError, match="model.arch"):
        make_model({"model": {"arch": "transformer"}})


@pytest.mark.parametrize("kind,select", KINDS)
def test_onnx_export_parity_and_contract(kind, select, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import numpy as np

    from training.export import PARITY_TOL, export_model, parity
    from training.onnx_run import OnnxSeparator

    m = _model(kind, select)
    path = tmp_path / "dp.onnx"
    export_model(m, {"name": "dp-test", "export": {}}, path)
    assert parity(m, path) <= PARITY_TOL
    run = OnnxSeparator(path)
    assert run.kind == kind and run.lookahead_chunks == 0
    assert run.meta["arch"] == "dualpath" and run.state_inputs[0] == "state_rnn"
    # a whole signal through ONNX Runtime, streamed as the daemon does, equals PyTorch's masks
    mix, rois = _inputs(B=1)
    with torch.no_grad():
        full = m.forward_sequence(mix, rois if kind == "av" else None).numpy()
    st = {n: np.zeros(s, np.float32) for n, s in zip(run.state_inputs, [v for v in m.state_shapes(1).values()])}
    outs = []
    for c in range(mix.shape[2] // CHUNK_FRAMES):
        feed = {"mix": mix[:, :, c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES].numpy()} | st
        if kind == "av":
            feed["roi"] = rois[:, c].numpy()
        got = run.sess.run(None, feed)
        outs.append(got[0])
        st = dict(zip(run.state_inputs, got[1:]))
    assert np.abs(np.concatenate(outs, axis=-2) - full).max() <= 1e-4


def test_av_starts_as_its_audio_only_source_and_reads_mouths_from_an_onnx_file(tmp_path):
    """init_dualpath: an AV model from an audio-only dual-path run computes that run's two masks
    (FiLM and selection fresh, at zero), and its visual encoder comes from an exported chunk-GRU
    AV model's file."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.export import export_model
    from training.model import Separator
    from training.model_setup import init_dualpath

    audio = _model("audio", False)
    av = BandSeparator("av", dim=16, blocks=2, visual_dim=8, select=True).eval()
    torch.manual_seed(1)
    donor = Separator("av", hidden=32, visual_dim=8, frame_dim=16, select=True, roi_norm=True).eval()
    donor_path = tmp_path / "donor.onnx"
    export_model(donor, {"name": "donor"}, donor_path)
    (tmp_path / "donor.toml").write_text('name = "donor"\n[model]\nkind = "av"\nhidden = 32\nvisual_dim = 8\n'
                                         'frame_dim = 16\nselect = true\nroi_norm = true\n')
    logs = []
    t = {"init_from": "exp-dp-test", "init_visual_from_onnx": str(donor_path),
         "init_visual_config": str(tmp_path / "donor.toml")}
    init_dualpath(av, t, {"name": "x"}, lambda name: (tmp_path / name, audio.state_dict()), logs.append)
    assert any("initialised from" in m for m in logs) and any("visual encoder imported" in m for m in logs)
    mix, rois = _inputs()
    with torch.no_grad():
        _, _, internal, _ = av.sequence_parts(mix, rois)
        want = audio.forward_sequence(mix)
    assert torch.allclose(internal, want, atol=1e-6)
    for k, v in donor.state_dict().items():
        if k.startswith(("vis.", "vis_fc.")):
            assert torch.allclose(av.state_dict()[k], v, atol=1e-6), k
    with pytest.raises(ValueError, match="does not fit"):
        init_dualpath(BandSeparator("av", dim=16, blocks=1, visual_dim=8), {"init_from": "x"}, {"name": "x"},
                      lambda name: (tmp_path / name, {**audio.state_dict(), "extra": torch.zeros(1)}), logs.append)


@pytest.mark.parametrize("kind", ["audio", "av"])
def test_an_exported_file_restores_every_weight(kind, tmp_path):
    """train.init_from_onnx works for the dual-path model too (a run carried as its ONNX file):
    every exported parameter comes back exactly; only the AV model's training-only aux head is
    fresh."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.export import export_model
    from training.model_setup import init_dualpath

    src = _model(kind, kind == "av")
    with torch.no_grad():  # trained-like: no two tensors equal (the exporter merges equal constants)
        for p in src.parameters():
            p.add_(0.01 * torch.randn_like(p))
    export_model(src, {"name": "src"}, tmp_path / "src.onnx")
    torch.manual_seed(5)
    dst = BandSeparator(kind, dim=16, blocks=2, visual_dim=8, select=kind == "av")
    key = "init_from_onnx_audio" if kind == "audio" else "init_from_onnx"
    logs = []
    init_dualpath(dst, {key: str(tmp_path / "src.onnx")}, {"name": "dst"}, None, logs.append)
    for k, v in dst.state_dict().items():
        if not k.startswith("aux."):
            assert torch.equal(v, src.state_dict()[k]), k
    assert logs and ("aux.weight" in logs[0]) == (kind == "av")

"""Run an exported separator through ONNX Runtime, chunk by chunk, exactly as the daemon will
(no PyTorch needed: this is what CI and `make eval` use).

The streaming call contract (docs/SIGNAL.md, training/export.py): per 40 ms chunk the compressed
mixture [B, 2, 4, 257], for the AV model that chunk's mouth ROI [B, 1, 48, 48] (grey / 255), and
the state tensors; out come the complex mask(s) and the new states. Signals are left-padded with
PAD = 352 zeros (the streaming STFT's priming) so that 640 F samples give exactly 4 F frames and
chunk f ends with video frame f.

A model with look-ahead (metadata lookahead_frames = 4 L, L whole chunks, at most 80 ms) returns
the mask of the chunk it was given L calls earlier; at the end of a signal it is flushed with L
chunks of zero input and the last ROI repeated (as training pads), and its first L masks, which
belong to no chunk of the signal, are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import signal as S
from .mouth_crop import ROI_SIZE
from .signal import CHUNK_FRAMES

PAD = S.STREAM_PAD  # 352
CHUNK_SAMPLES = CHUNK_FRAMES * S.HOP_LENGTH  # 640

# metadata the signal and call contracts fix: the exporter writes them, loading checks them
EXPECTED_META = {
    "sample_rate": str(S.SAMPLE_RATE), "n_fft": str(S.N_FFT), "win_length": str(S.WIN_LENGTH),
    "hop_length": str(S.HOP_LENGTH), "chunk_frames": str(CHUNK_FRAMES),
    "compress_exponent": str(S.COMPRESS_EXPONENT), "roi_size": str(ROI_SIZE),
}
# look-ahead a model may have: whole chunks, at most 80 ms (the bound)
ALLOWED_LOOKAHEAD_FRAMES = ("0", str(CHUNK_FRAMES), str(2 * CHUNK_FRAMES))


class ModelError(RuntimeError):
    pass


class OnnxSeparator:
    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: not a loadable ONNX model ({e})") from e
        self.meta = dict(self.sess.get_modelmeta().custom_metadata_map)
        for k, v in EXPECTED_META.items():
            if self.meta.get(k) != v:
                raise ModelError(f"{self.path}: metadata {k} = {self.meta.get(k)!r}, the signal contract needs {v!r}")
        if self.meta.get("lookahead_frames") not in ALLOWED_LOOKAHEAD_FRAMES:
            raise ModelError(f"{self.path}: metadata lookahead_frames = {self.meta.get('lookahead_frames')!r}, "
                             f"the call contract allows {', '.join(ALLOWED_LOOKAHEAD_FRAMES)}")
        self.lookahead_chunks = int(self.meta["lookahead_frames"]) // CHUNK_FRAMES
        self.kind = self.meta["model_kind"]
        self.outputs = int(self.meta["mask_outputs"])
        self.input_names = self.meta["inputs"].split(",")
        self.output_names = self.meta["outputs"].split(",")
        self.state_inputs = self.meta["state_inputs"].split(",")
        shapes = {i.name: i.shape for i in self.sess.get_inputs()}
        self.state_shapes = {n: tuple(shapes[n][1:]) for n in self.state_inputs}

    def initial_state(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, *self.state_shapes[n]), np.float32) for n in self.state_inputs]

    def call(self, mix: np.ndarray, roi: np.ndarray | None, state: list[np.ndarray]):
        """One streaming call: (mask, new state)."""
        feed = {"mix": mix}
        if self.kind == "av":
            feed["roi"] = roi
        feed.update(zip(self.state_inputs, state))
        out = self.sess.run(self.output_names, feed)
        return out[0], out[1:]

    def separate(self, mixtures: np.ndarray, rois: np.ndarray | None = None) -> np.ndarray:
        """mixtures [B, n] (n a multiple of 640), rois [B, n / 640, 48, 48] uint8 (AV) ->
        estimates [B, n] (AV) or [B, 2, n] (audio-only), streamed chunk by chunk."""
        n = mixtures.shape[1]
        X, mask = self.masks(mixtures, rois)
        B = len(X)
        if self.kind == "av":
            return np.stack([S.stream_istft(S.apply_mask(mask[b], X[b]), n) for b in range(B)])
        return np.stack([[S.stream_istft(S.apply_mask(mask[b, o], X[b]), n) for o in range(self.outputs)]
                         for b in range(B)])

    def masks(self, mixtures: np.ndarray, rois: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The streamed calls of `separate`, before the masks are applied: the mixtures' spectra
        [B, T, F] and the masks, AV [B, 2, T, F], audio-only [B, 2 outputs, 2, T, F]."""
        B, n = mixtures.shape
        if n % CHUNK_SAMPLES:
            raise ValueError(f"length {n} is not a multiple of {CHUNK_SAMPLES} samples")
        chunks = n // CHUNK_SAMPLES
        X = np.stack([S.stream_stft(m) for m in mixtures])  # [B, T, F]
        inp = np.stack([S.to_model_input(x) for x in X])  # [B, 2, T, F] float32
        L = self.lookahead_chunks
        inp = np.concatenate([inp, np.zeros((B, 2, L * CHUNK_FRAMES, inp.shape[-1]), np.float32)], axis=2)
        state = self.initial_state(B)
        masks = []
        for c in range(chunks + L):
            sl = slice(c * CHUNK_FRAMES, (c + 1) * CHUNK_FRAMES)
            roi = None
            if self.kind == "av":
                roi = (rois[:, min(c, chunks - 1), None].astype(np.float32) / 255.0)
            m, state = self.call(np.ascontiguousarray(inp[:, :, sl]), roi, state)
            masks.append(m)
        return X, np.concatenate(masks[L:], axis=-2)

//! Models: the ONNX Runtime environment and the separation stage's plug-in point.
//!
//! The separator sees the mixture spectrogram one chunk (4 STFT frames = 40 ms = one video frame)
//! at a time, as the streaming model contract in DESIGN.md says, and returns one complex mask per
//! active speaker slot. `Bypass` is the identity on slot 0: the mixture passes through the whole
//! STFT -> mask -> iSTFT path, so the backbone is exercised end to end before a model exists.

pub mod runtime;
pub mod separator;

pub use separator::{CHUNK_FRAMES, Separator};

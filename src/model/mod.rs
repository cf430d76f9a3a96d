//! Models: the ONNX Runtime environment and the separation stage's plug-in point.
//!
//! The separator sees the mixture spectrogram one chunk (4 STFT frames = 40 ms = one video frame)
//! at a time, as the streaming model contract in DESIGN.md says, and returns one complex mask per
//! active speaker slot. `Bypass` is the identity on slot 0 (the mixture passes through the whole
//! STFT -> mask -> iSTFT path); `Faces` runs the shipped face-conditioned model, one slot per face.

pub mod face_separator;
pub mod runtime;
pub mod separator;

pub use face_separator::FaceSeparator;
pub use separator::{CHUNK_FRAMES, Separator};

use std::path::{Path, PathBuf};

/// Where a shipped model file is looked for: `models/<name>` next to the sources (a checkout),
/// else `<prefix>/share/avsepd/<name>` next to an installed binary (`make install`). When neither
/// exists, the checkout path, so the error names where it was expected.
pub fn shipped_model_path(name: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    if here.is_file() {
        return here;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/avsepd").join(name)))
        .filter(|p| p.is_file())
        .unwrap_or(here)
}

//! The separation stage's plug-in point.

use crate::dsp::N_BINS;
use rustfft::num_complex::Complex32;

/// STFT frames per model call: 4 hops = 40 ms = one video frame.
pub const CHUNK_FRAMES: usize = 4;

/// A separation strategy. Masks are laid out `[slot][frame][bin]`, each slot
/// `CHUNK_FRAMES * N_BINS` long.
pub enum Separator {
    /// No model: slot 0 carries the mixture unchanged.
    Bypass,
}

impl Separator {
    /// Speaker slots that carry audio.
    pub fn active_slots(&self) -> usize {
        match self {
            Separator::Bypass => 1,
        }
    }

    /// Fill `masks` (active_slots x CHUNK_FRAMES x N_BINS) for one chunk of the mixture, given the
    /// frame of faces on screen during the chunk (a face-conditioned model extracts one voice per
    /// face).
    pub fn masks(
        &mut self,
        mixture: &[Complex32],
        _faces: Option<&crate::stream::FaceFrame>,
        masks: &mut [Complex32],
    ) {
        debug_assert_eq!(mixture.len(), CHUNK_FRAMES * N_BINS);
        match self {
            Separator::Bypass => masks.fill(Complex32::new(1.0, 0.0)),
        }
    }
}

//! The separation stage's plug-in point.

use super::face_separator::FaceSeparator;
use crate::dsp::N_BINS;
use anyhow::Result;
use rustfft::num_complex::Complex32;

/// STFT frames per model call: 4 hops = 40 ms = one video frame.
pub const CHUNK_FRAMES: usize = 4;

/// A separation strategy. Masks are laid out `[slot][frame][bin]`, each slot
/// `CHUNK_FRAMES * N_BINS` long.
pub enum Separator {
    /// No model: slot 0 carries the mixture unchanged.
    Bypass,
    /// The face-conditioned model: slot k carries the voice of the face that holds slot k.
    Faces(Box<FaceSeparator>),
}

impl Separator {
    /// Speaker slots that carry audio.
    pub fn active_slots(&self) -> usize {
        match self {
            Separator::Bypass => 1,
            Separator::Faces(m) => m.slots(),
        }
    }

    /// Chunks between a chunk going in and its masks coming out (the model's look-ahead).
    pub fn lookahead_chunks(&self) -> usize {
        match self {
            Separator::Bypass => 0,
            Separator::Faces(m) => m.lookahead_chunks(),
        }
    }

    /// Fill `masks` (active_slots x CHUNK_FRAMES x N_BINS) for the chunk `lookahead_chunks()`
    /// calls ago, given this chunk of the mixture and the frame of faces on screen during it (a
    /// face-conditioned model extracts one voice per face).
    pub fn masks(
        &mut self,
        mixture: &[Complex32],
        faces: Option<&crate::stream::FaceFrame>,
        masks: &mut [Complex32],
    ) -> Result<()> {
        debug_assert_eq!(mixture.len(), CHUNK_FRAMES * N_BINS);
        match self {
            Separator::Bypass => {
                masks.fill(Complex32::new(1.0, 0.0));
                Ok(())
            }
            Separator::Faces(m) => m.masks(mixture, faces, masks),
        }
    }
}

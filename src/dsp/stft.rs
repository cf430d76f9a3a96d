//! Streaming analysis: one 512-point windowed real FFT per 160-sample hop.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use super::window::hann_window_padded;
use super::{Complex32, HOP, N_BINS, N_FFT};

/// Streaming STFT matching `training/signal.py::stft` frame for frame.
///
/// It keeps the last `N_FFT` input samples. They start as zeros, so a frame comes out after every
/// hop, the first one after the first hop: the frame emitted after input hop t (samples
/// `[160 t, 160 t + 160)`) covers input `[160 t - 352, 160 t + 160)`, with the not-yet-seen part
/// read as zeros. Starting primed with zeros (instead of waiting for 512 samples) is what lets
/// `StreamingIstft` reconstruct the very first input samples; see `STFT_ISTFT_DELAY`.
///
/// All buffers and the FFT plan are made in `new`; `push_hop` does not allocate.
pub struct StreamingStft {
    fft: Arc<dyn RealToComplex<f32>>,
    window: [f32; N_FFT],
    /// Last `N_FFT` input samples, oldest first.
    history: [f32; N_FFT],
    /// Windowed frame handed to the FFT, which uses it as scratch (so it is rebuilt every hop).
    frame: Vec<f32>,
    scratch: Vec<Complex32>,
}

impl StreamingStft {
    /// Plans the FFT and allocates every buffer the analyser will ever use.
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let frame = fft.make_input_vec();
        let scratch = fft.make_scratch_vec();
        Self {
            fft,
            window: hann_window_padded(),
            history: [0.0; N_FFT],
            frame,
            scratch,
        }
    }

    /// Feeds one hop of `HOP` samples and writes the newest frame's `N_BINS` bins to `out`.
    ///
    /// The spectrum is unscaled (`X[k] = sum_n w[n] x[n] e^{-2 pi i k n / 512}`) and its DC and
    /// Nyquist bins have a zero imaginary part.
    ///
    /// # Panics
    ///
    /// If `hop.len() != HOP` or `out.len() != N_BINS`. These are programming errors: the lengths
    /// are fixed by the signal contract, so they are checked in release builds too (the check costs
    /// nothing next to the FFT).
    pub fn push_hop(&mut self, hop: &[f32], out: &mut [Complex32]) {
        assert_eq!(
            hop.len(),
            HOP,
            "StreamingStft::push_hop: hop must be exactly HOP samples"
        );
        assert_eq!(
            out.len(),
            N_BINS,
            "StreamingStft::push_hop: out must be exactly N_BINS bins"
        );
        self.history.copy_within(HOP.., 0);
        self.history[N_FFT - HOP..].copy_from_slice(hop);
        for ((f, &x), &w) in self
            .frame
            .iter_mut()
            .zip(self.history.iter())
            .zip(self.window.iter())
        {
            *f = x * w;
        }
        // Only wrong buffer lengths make realfft fail; all three lengths are fixed above or at
        // construction.
        self.fft
            .process_with_scratch(&mut self.frame, out, &mut self.scratch)
            .expect("realfft forward: buffer lengths are fixed by construction");
    }

    /// Forgets all input: back to the all-zero history of a new analyser.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
    }
}

impl Default for StreamingStft {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::window::hann_window_padded;

    /// Direct O(N^2) DFT of one windowed frame, f64.
    fn direct_dft(frame: &[f32]) -> Vec<(f64, f64)> {
        let w = hann_window_padded();
        (0..N_BINS)
            .map(|k| {
                let mut re = 0.0;
                let mut im = 0.0;
                for (n, (&x, &wn)) in frame.iter().zip(w.iter()).enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * n) as f64 / N_FFT as f64;
                    let v = f64::from(x) * f64::from(wn);
                    re += v * a.cos();
                    im += v * a.sin();
                }
                (re, im)
            })
            .collect()
    }

    fn test_signal(len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| ((n as f32 * 0.37).sin() + 0.3 * (n as f32 * 1.91).cos()) * 0.5)
            .collect()
    }

    #[test]
    fn frames_match_direct_dft_including_zero_priming() {
        let x = test_signal(HOP * 6);
        let mut stft = StreamingStft::new();
        let mut out = vec![Complex32::default(); N_BINS];
        for (t, hop) in x.chunks_exact(HOP).enumerate() {
            stft.push_hop(hop, &mut out);
            // Frame t covers input [160 t - 352, 160 t + 160), zeros before the start.
            let mut frame = vec![0.0f32; N_FFT];
            for (i, slot) in frame.iter_mut().enumerate() {
                let n = (HOP * t + i) as isize - (N_FFT - HOP) as isize;
                if n >= 0 {
                    *slot = x[n as usize];
                }
            }
            let reference = direct_dft(&frame);
            for (k, (c, (re, im))) in out.iter().zip(reference.iter()).enumerate() {
                assert!(
                    (f64::from(c.re) - re).abs() < 1e-4 && (f64::from(c.im) - im).abs() < 1e-4,
                    "frame {t} bin {k}: {c} vs ({re}, {im})"
                );
            }
            assert_eq!(out[0].im, 0.0);
            assert_eq!(out[N_BINS - 1].im, 0.0);
        }
    }

    #[test]
    fn reset_restores_initial_state() {
        let x = test_signal(HOP * 4);
        let mut stft = StreamingStft::new();
        let mut first = vec![Complex32::default(); N_BINS];
        let mut again = vec![Complex32::default(); N_BINS];
        stft.push_hop(&x[..HOP], &mut first);
        for hop in x.chunks_exact(HOP) {
            stft.push_hop(hop, &mut again);
        }
        stft.reset();
        stft.push_hop(&x[..HOP], &mut again);
        assert_eq!(first, again);
    }

    #[test]
    #[should_panic(expected = "hop must be exactly HOP samples")]
    fn wrong_hop_length_panics() {
        let mut stft = StreamingStft::new();
        let mut out = vec![Complex32::default(); N_BINS];
        stft.push_hop(&[0.0; HOP - 1], &mut out);
    }

    #[test]
    #[should_panic(expected = "out must be exactly N_BINS bins")]
    fn wrong_out_length_panics() {
        let mut stft = StreamingStft::new();
        let mut out = vec![Complex32::default(); N_BINS + 1];
        stft.push_hop(&[0.0; HOP], &mut out);
    }
}

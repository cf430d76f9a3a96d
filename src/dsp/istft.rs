//! Streaming synthesis: inverse FFT, synthesis window, overlap-add, window-envelope division.

use std::sync::Arc;

use realfft::{ComplexToReal, RealFftPlanner};

use super::window::hann_window_padded;
use super::{Complex32, ENVELOPE_EPS, HOP, N_BINS, N_FFT};

/// Streaming iSTFT matching `training/signal.py::istft` sample for sample.
///
/// Every frame is inverse-transformed (with the 1/N of numpy's `irfft`), multiplied by the same
/// zero-padded Hann window as the analysis, and added into a 512-sample accumulator that is aligned
/// with the frame. The squared window goes into a second accumulator, the envelope. After frame j
/// the oldest `HOP` samples of the accumulator are final (frame j + 1 starts `HOP` later), so they
/// are emitted divided by the envelope where it exceeds `ENVELOPE_EPS` (else 0) and both
/// accumulators shift by `HOP`. Accumulating the envelope instead of assuming its steady-state
/// value makes the start-up samples match the reference exactly too.
///
/// All buffers and the FFT plan are made in `new`; `push_frame` does not allocate.
pub struct StreamingIstft {
    ifft: Arc<dyn ComplexToReal<f32>>,
    /// Synthesis window with the inverse FFT's 1/N folded in.
    window_scaled: [f32; N_FFT],
    window_sq: [f32; N_FFT],
    /// Overlap-added windowed frames, aligned with the current frame.
    acc: [f32; N_FFT],
    /// Overlap-added squared window, aligned like `acc`.
    envelope: [f32; N_FFT],
    /// Copy of the input spectrum: realfft's inverse uses its input as scratch.
    spectrum: Vec<Complex32>,
    time: Vec<f32>,
    scratch: Vec<Complex32>,
}

impl StreamingIstft {
    /// Plans the inverse FFT and allocates every buffer the synthesiser will ever use.
    pub fn new() -> Self {
        let ifft = RealFftPlanner::<f32>::new().plan_fft_inverse(N_FFT);
        let spectrum = ifft.make_input_vec();
        let time = ifft.make_output_vec();
        let scratch = ifft.make_scratch_vec();
        let window = hann_window_padded();
        let inv_n = 1.0 / N_FFT as f32;
        Self {
            ifft,
            window_scaled: window.map(|w| w * inv_n),
            window_sq: window.map(|w| w * w),
            acc: [0.0; N_FFT],
            envelope: [0.0; N_FFT],
            spectrum,
            time,
            scratch,
        }
    }

    /// Feeds one frame of `N_BINS` bins and writes the next `HOP` final output samples to `out`.
    ///
    /// The imaginary parts of the DC and Nyquist bins are ignored (a real signal has none; realfft
    /// refuses them, so they are zeroed in the internal copy, and numpy's `irfft` drops them too).
    ///
    /// # Panics
    ///
    /// If `frame.len() != N_BINS` or `out.len() != HOP`: programming errors, checked in release
    /// builds too.
    pub fn push_frame(&mut self, frame: &[Complex32], out: &mut [f32]) {
        assert_eq!(
            frame.len(),
            N_BINS,
            "StreamingIstft::push_frame: frame must be exactly N_BINS bins"
        );
        assert_eq!(
            out.len(),
            HOP,
            "StreamingIstft::push_frame: out must be exactly HOP samples"
        );
        self.spectrum.copy_from_slice(frame);
        self.spectrum[0].im = 0.0;
        self.spectrum[N_BINS - 1].im = 0.0;
        // With the lengths fixed and the DC / Nyquist imaginary parts zeroed, realfft cannot fail.
        self.ifft
            .process_with_scratch(&mut self.spectrum, &mut self.time, &mut self.scratch)
            .expect(
                "realfft inverse: buffer lengths and DC/Nyquist bins are valid by construction",
            );
        for i in 0..N_FFT {
            self.acc[i] += self.time[i] * self.window_scaled[i];
            self.envelope[i] += self.window_sq[i];
        }
        for ((o, &a), &e) in out
            .iter_mut()
            .zip(&self.acc[..HOP])
            .zip(&self.envelope[..HOP])
        {
            *o = if e > ENVELOPE_EPS { a / e } else { 0.0 };
        }
        self.acc.copy_within(HOP.., 0);
        self.acc[N_FFT - HOP..].fill(0.0);
        self.envelope.copy_within(HOP.., 0);
        self.envelope[N_FFT - HOP..].fill(0.0);
    }

    /// Drops all pending overlap-add state, as if newly constructed.
    pub fn reset(&mut self) {
        self.acc.fill(0.0);
        self.envelope.fill(0.0);
    }
}

impl Default for StreamingIstft {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::metrics::snr_db;
    use crate::dsp::{STFT_ISTFT_DELAY, StreamingStft};

    fn noise(len: usize, mut seed: u64) -> Vec<f32> {
        (0..len)
            .map(|_| {
                // xorshift64*: deterministic, dependency-free test noise in [-0.5, 0.5).
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                let v = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
                v as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn passthrough(x: &[f32]) -> Vec<f32> {
        let mut stft = StreamingStft::new();
        let mut istft = StreamingIstft::new();
        let mut spec = vec![Complex32::default(); N_BINS];
        let mut y = vec![0.0f32; x.len()];
        for (hop, out) in x.chunks_exact(HOP).zip(y.chunks_exact_mut(HOP)) {
            stft.push_hop(hop, &mut spec);
            istft.push_frame(&spec, out);
        }
        y
    }

    #[test]
    fn passthrough_is_a_pure_delay() {
        let x = noise(HOP * 50, 7);
        let y = passthrough(&x);
        let d = STFT_ISTFT_DELAY;
        // Before the delay the output holds only the zero priming: f32 rounding of the FFT,
        // divided by the tiny envelope at the window's start (w[2]^2 ~ 6e-8), leaves ~1e-5.
        assert!(y[..d].iter().all(|v| v.abs() < 1e-4));
        let snr = snr_db(&x[..x.len() - d], &y[d..]).expect("non-silent input");
        assert!(snr >= 80.0, "passthrough SNR {snr} dB");
    }

    #[test]
    fn ignores_imaginary_dc_and_nyquist() {
        let mut istft = StreamingIstft::new();
        let mut a = vec![0.0f32; HOP];
        let mut b = vec![0.0f32; HOP];
        let mut frame = vec![Complex32::new(1.0, 0.5); N_BINS];
        frame[0].im = 0.0;
        frame[N_BINS - 1].im = 0.0;
        istft.push_frame(&frame, &mut a);
        istft.reset();
        frame[0].im = 3.0;
        frame[N_BINS - 1].im = -2.0;
        istft.push_frame(&frame, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn reset_restores_initial_state() {
        let x = noise(HOP * 8, 3);
        let first = passthrough(&x);
        let mut stft = StreamingStft::new();
        let mut istft = StreamingIstft::new();
        let mut spec = vec![Complex32::default(); N_BINS];
        let mut out = vec![0.0f32; HOP];
        for hop in x.chunks_exact(HOP).take(5) {
            stft.push_hop(hop, &mut spec);
            istft.push_frame(&spec, &mut out);
        }
        stft.reset();
        istft.reset();
        let mut again = vec![0.0f32; x.len()];
        for (hop, out) in x.chunks_exact(HOP).zip(again.chunks_exact_mut(HOP)) {
            stft.push_hop(hop, &mut spec);
            istft.push_frame(&spec, out);
        }
        assert_eq!(first, again);
    }

    #[test]
    #[should_panic(expected = "out must be exactly HOP samples")]
    fn wrong_out_length_panics() {
        let mut istft = StreamingIstft::new();
        istft.push_frame(&[Complex32::default(); N_BINS], &mut [0.0; HOP + 1]);
    }
}

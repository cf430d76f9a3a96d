//! Streaming DSP: STFT / iSTFT and magnitude compression as docs/SIGNAL.md defines them.
//!
//! The numpy reference `training/signal.py` is the executable form of the same contract; the
//! fixture in `tests/fixtures/signal/` pins the two together (see `tests/dsp_signal.rs`).
//!
//! Everything on the real-time path (`StreamingStft`, `StreamingIstft`, the compression and mask
//! helpers) works on caller-owned buffers with state pre-allocated at construction, so a 10 ms hop
//! never touches the allocator. `metrics` is for tests and tools, not for the hot path.

pub mod compress;
pub mod istft;
pub mod mask;
pub mod metrics;
pub mod stft;
pub mod window;

pub use compress::{compress_in_place, decompress_in_place, to_model_channels};
pub use istft::StreamingIstft;
pub use mask::apply_mask_in_place;
pub use metrics::{MetricError, aligned_snr_db, best_lag, si_sdr_db, snr_db};
pub use realfft::num_complex::Complex32;
pub use stft::StreamingStft;
pub use window::{WINDOW_OFFSET, hann_window_padded};

/// Audio sample rate of the whole pipeline (mono).
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT size; one analysis frame spans this many samples.
pub const N_FFT: usize = 512;
/// Length of the (periodic Hann) window inside the frame; the rest of the frame is zero.
pub const WIN_LENGTH: usize = 400;
/// Hop between frames: 10 ms at 16 kHz, the pipeline's unit of work.
pub const HOP: usize = 160;
/// Bins of the one-sided spectrum, `N_FFT / 2 + 1`.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Exponent of the magnitude compression applied to the model input.
pub const COMPRESS_EXPONENT: f32 = 0.3;
/// iSTFT output samples whose overlap-added squared window is not above this are emitted as 0.
pub const ENVELOPE_EPS: f32 = 1e-8;
/// Delay in samples of `StreamingStft` followed by `StreamingIstft`, hop for hop.
///
/// The analyser starts from `N_FFT` zeros, so the frame emitted after input hop t covers input
/// `[160 t - 352, 160 t + 160)`, and the synthesis emits the oldest `HOP` samples of that frame:
/// input `[160 t - 352, 160 t - 192)`. Output sample n therefore equals input sample n - 352.
pub const STFT_ISTFT_DELAY: usize = N_FFT - HOP;

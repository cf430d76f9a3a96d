//! The analysis / synthesis window shared by `StreamingStft` and `StreamingIstft`.

use super::{N_FFT, WIN_LENGTH};

/// Offset of the 400-sample window inside the 512-sample frame: `(N_FFT - WIN_LENGTH) / 2`.
///
/// This is where `torch.stft` puts a window shorter than `n_fft` (central padding), and matching
/// it keeps the model's training features (computed with torch) identical to ours.
pub const WINDOW_OFFSET: usize = (N_FFT - WIN_LENGTH) / 2;

/// Periodic Hann window of `WIN_LENGTH` samples, zero-padded centrally to `N_FFT`.
///
/// `w[56 + n] = 0.5 - 0.5 cos(2 pi n / 400)` for `n` in `0..400`, zero elsewhere. Periodic (not
/// symmetric) because that is `torch.hann_window`'s default and because its squares overlap-add
/// to a near-constant envelope at hop 160. Computed in f64 and rounded once, so it is as close to
/// the numpy reference as f32 allows.
pub fn hann_window_padded() -> [f32; N_FFT] {
    let mut w = [0.0f32; N_FFT];
    for (n, slot) in w[WINDOW_OFFSET..WINDOW_OFFSET + WIN_LENGTH]
        .iter_mut()
        .enumerate()
    {
        let phase = 2.0 * std::f64::consts::PI * n as f64 / WIN_LENGTH as f64;
        *slot = (0.5 - 0.5 * phase.cos()) as f32;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_centred_periodic_hann() {
        let w = hann_window_padded();
        assert_eq!(WINDOW_OFFSET, 56);
        assert!(w[..56].iter().all(|&v| v == 0.0));
        assert!(w[456..].iter().all(|&v| v == 0.0));
        assert_eq!(w[56], 0.0);
        assert!((w[56 + 200] - 1.0).abs() < 1e-7);
        for n in 1..WIN_LENGTH {
            assert!((w[56 + n] - w[56 + WIN_LENGTH - n]).abs() < 1e-7, "n = {n}");
        }
    }
}

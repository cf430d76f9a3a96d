//! Signal-quality metrics for tests and tools: SNR, SI-SDR and delay estimation.
//!
//! These are used by end-to-end tests that compare audio received over RTP with its source, so
//! they never panic on awkward input: empty, silent, non-finite or mismatched input gives a
//! `MetricError`. They allocate and are not meant for the real-time path. Sums are in f64.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex64;

/// Why a metric could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// A signal (or the part where the two overlap after alignment) has no samples.
    #[error("empty input")]
    Empty,
    /// `snr_db` / `si_sdr_db` compare sample by sample and need equal lengths.
    #[error("length mismatch: reference has {reference} samples, estimate {estimate}")]
    LengthMismatch { reference: usize, estimate: usize },
    /// A sample is NaN or infinite.
    #[error("non-finite sample in input")]
    NonFinite,
    /// The reference has zero energy (for SI-SDR: after removing its mean), so the ratio is undefined.
    #[error("reference is silent")]
    SilentReference,
    /// The estimate has zero energy where that leaves the metric undefined (SI-SDR, `best_lag`).
    #[error("estimate is silent")]
    SilentEstimate,
}

fn check(signal: &[f32]) -> Result<(), MetricError> {
    if signal.is_empty() {
        return Err(MetricError::Empty);
    }
    if signal.iter().any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite);
    }
    Ok(())
}

fn check_pair(reference: &[f32], estimate: &[f32]) -> Result<(), MetricError> {
    check(reference)?;
    check(estimate)?;
    if reference.len() != estimate.len() {
        return Err(MetricError::LengthMismatch {
            reference: reference.len(),
            estimate: estimate.len(),
        });
    }
    Ok(())
}

fn energy(signal: impl Iterator<Item = f64>) -> f64 {
    signal.map(|v| v * v).sum()
}

fn ratio_db(signal_energy: f64, noise_energy: f64) -> f64 {
    if noise_energy == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal_energy / noise_energy).log10()
    }
}

/// Signal-to-noise ratio in dB: `10 log10(sum r^2 / sum (r - e)^2)`.
///
/// Not scale-invariant: a gain error counts as noise. Identical signals give `+inf`; a silent
/// estimate gives 0 dB.
///
/// # Errors
///
/// `Empty`, `NonFinite`, `LengthMismatch` (lengths must be equal), `SilentReference`.
pub fn snr_db(reference: &[f32], estimate: &[f32]) -> Result<f64, MetricError> {
    check_pair(reference, estimate)?;
    let signal = energy(reference.iter().map(|&r| f64::from(r)));
    if signal == 0.0 {
        return Err(MetricError::SilentReference);
    }
    let noise = energy(
        reference
            .iter()
            .zip(estimate)
            .map(|(&r, &e)| f64::from(r) - f64::from(e)),
    );
    Ok(ratio_db(signal, noise))
}

/// Scale-invariant signal-to-distortion ratio in dB.
///
/// Both signals are made zero-mean; with `alpha = <e, r> / <r, r>` the target is `alpha r`, the
/// distortion `e - alpha r`, and SI-SDR is `10 log10(|alpha r|^2 / |e - alpha r|^2)`. Any non-zero
/// gain (even a negative one) of a perfect estimate therefore gives `+inf`.
///
/// # Errors
///
/// `Empty`, `NonFinite`, `LengthMismatch`, `SilentReference` (constant reference),
/// `SilentEstimate` (constant estimate: the ratio is 0 / 0).
pub fn si_sdr_db(reference: &[f32], estimate: &[f32]) -> Result<f64, MetricError> {
    check_pair(reference, estimate)?;
    let n = reference.len() as f64;
    let mean_r = reference.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mean_e = estimate.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let r = || reference.iter().map(move |&v| f64::from(v) - mean_r);
    let e = || estimate.iter().map(move |&v| f64::from(v) - mean_e);
    let rr = energy(r());
    if rr == 0.0 {
        return Err(MetricError::SilentReference);
    }
    if energy(e()) == 0.0 {
        return Err(MetricError::SilentEstimate);
    }
    let alpha = r().zip(e()).map(|(a, b)| a * b).sum::<f64>() / rr;
    let target = alpha * alpha * rr;
    let distortion = energy(r().zip(e()).map(|(a, b)| b - alpha * a));
    Ok(ratio_db(target, distortion))
}

/// Lag (in samples) at which `estimate` best matches `reference`: positive means delayed.
///
/// Maximises the cross-correlation `c[l] = sum_n r[n] e[n + l]` over
/// `-max_lag <= l <= max_lag` (also limited to lags where the signals overlap at all), so
/// `estimate[n + l] == reference[n]` yields `l`. Correlation is not normalised and its sign
/// matters: a polarity-inverted copy is not a match. Ties go to the smallest `|l|`, then to the
/// positive lag. Computed with one zero-padded FFT per signal and one inverse, O(N log N): about
/// tens of milliseconds for 10 s at 16 kHz.
///
/// # Errors
///
/// `Empty`, `NonFinite`, `SilentReference`, `SilentEstimate` (a silent signal correlates
/// equally, with 0, at every lag). The lengths may differ.
pub fn best_lag(reference: &[f32], estimate: &[f32], max_lag: usize) -> Result<isize, MetricError> {
    check(reference)?;
    check(estimate)?;
    if energy(reference.iter().map(|&v| f64::from(v))) == 0.0 {
        return Err(MetricError::SilentReference);
    }
    if energy(estimate.iter().map(|&v| f64::from(v))) == 0.0 {
        return Err(MetricError::SilentEstimate);
    }
    let len = (reference.len() + estimate.len()).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(len);
    let inverse = planner.plan_fft_inverse(len);
    let padded = |x: &[f32]| {
        let mut buf = vec![Complex64::new(0.0, 0.0); len];
        for (slot, &v) in buf.iter_mut().zip(x) {
            slot.re = f64::from(v);
        }
        buf
    };
    let mut r = padded(reference);
    let mut e = padded(estimate);
    forward.process(&mut r);
    forward.process(&mut e);
    // conj(R) E is the transform of the circular cross-correlation c[l] = sum_n r[n] e[n + l];
    // the padding to at least len(r) + len(e) keeps it from wrapping onto itself.
    for (a, b) in e.iter_mut().zip(&r) {
        *a *= b.conj();
    }
    inverse.process(&mut e);
    let corr = |lag: isize| -> f64 {
        let idx = if lag >= 0 {
            lag as usize
        } else {
            len - lag.unsigned_abs()
        };
        e[idx].re
    };
    // Lags with any overlap: -(len_r - 1) ..= len_e - 1.
    let max_pos = max_lag.min(estimate.len() - 1);
    let max_neg = max_lag.min(reference.len() - 1);
    let mut best = 0isize;
    let mut best_value = corr(0);
    for k in 1..=max_pos.max(max_neg) {
        for lag in [k as isize, -(k as isize)] {
            let in_range = if lag > 0 { k <= max_pos } else { k <= max_neg };
            if in_range {
                let value = corr(lag);
                if value > best_value {
                    best = lag;
                    best_value = value;
                }
            }
        }
    }
    Ok(best)
}

/// Aligns `estimate` to `reference` with `best_lag` and returns `(lag, snr_db)` of the overlap.
///
/// With `lag >= 0`, `reference[n]` is compared with `estimate[n + lag]`; with `lag < 0`,
/// `reference[n - lag]` with `estimate[n]`; over all `n` where both exist. The SNR is the plain
/// `snr_db` (not scale-invariant) of those overlapping parts.
///
/// # Errors
///
/// Those of `best_lag`, then `Empty` if nothing overlaps and `SilentReference` if the reference is
/// silent over the overlap.
pub fn aligned_snr_db(
    reference: &[f32],
    estimate: &[f32],
    max_lag: usize,
) -> Result<(isize, f64), MetricError> {
    let lag = best_lag(reference, estimate, max_lag)?;
    let shift = lag.unsigned_abs();
    let (r, e) = if lag >= 0 {
        (reference, estimate.get(shift..).unwrap_or(&[]))
    } else {
        (reference.get(shift..).unwrap_or(&[]), estimate)
    };
    let n = r.len().min(e.len());
    snr_db(&r[..n], &e[..n]).map(|snr| (lag, snr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| {
                (n as f32 * 0.113).sin() * (n as f32 * 0.0071).cos() + 0.2 * (n as f32 * 2.3).sin()
            })
            .collect()
    }

    #[test]
    fn snr_basics() {
        let r = signal(1000);
        assert_eq!(snr_db(&r, &r), Ok(f64::INFINITY));
        let half: Vec<f32> = r.iter().map(|v| v * 0.5).collect();
        let snr = snr_db(&r, &half).expect("valid");
        assert!((snr - 20.0 * 2f64.log10()).abs() < 1e-9, "{snr}");
        assert_eq!(snr_db(&r, &vec![0.0; 1000]), Ok(0.0));
    }

    #[test]
    fn si_sdr_is_scale_invariant() {
        let r = signal(1000);
        let scaled: Vec<f32> = r.iter().map(|v| v * -3.0 + 0.25).collect();
        assert!(si_sdr_db(&r, &scaled).expect("valid") > 100.0);
    }

    #[test]
    fn errors_instead_of_panics() {
        let r = signal(10);
        assert_eq!(snr_db(&[], &[]), Err(MetricError::Empty));
        assert_eq!(
            snr_db(&r, &r[..5]),
            Err(MetricError::LengthMismatch {
                reference: 10,
                estimate: 5
            })
        );
        assert_eq!(
            snr_db(&[0.0; 4], &[1.0; 4]),
            Err(MetricError::SilentReference)
        );
        assert_eq!(
            si_sdr_db(&[1.0; 4], &[1.0, 2.0, 3.0, 4.0]),
            Err(MetricError::SilentReference)
        );
        assert_eq!(si_sdr_db(&r, &[2.0; 10]), Err(MetricError::SilentEstimate));
        assert_eq!(snr_db(&[f32::NAN], &[1.0]), Err(MetricError::NonFinite));
        assert_eq!(best_lag(&[], &r, 5), Err(MetricError::Empty));
        assert_eq!(best_lag(&r, &[], 5), Err(MetricError::Empty));
        assert_eq!(best_lag(&r, &[0.0; 3], 5), Err(MetricError::SilentEstimate));
        assert_eq!(best_lag(&[1.0], &[1.0], usize::MAX), Ok(0));
        assert_eq!(aligned_snr_db(&[], &r, 5), Err(MetricError::Empty));
    }

    #[test]
    fn lag_sign_convention() {
        let r = signal(2000);
        for lag in [0isize, 1, 37, -1, -250] {
            let e: Vec<f32> = (0..2000)
                .map(|n| {
                    let src = n as isize - lag;
                    if (0..2000).contains(&src) {
                        r[src as usize]
                    } else {
                        0.0
                    }
                })
                .collect();
            assert_eq!(best_lag(&r, &e, 300), Ok(lag));
            let (found, snr) = aligned_snr_db(&r, &e, 300).expect("valid");
            assert_eq!(found, lag);
            assert!(snr > 100.0, "lag {lag}: {snr}");
        }
    }

    #[test]
    fn max_lag_limits_the_search() {
        let r = signal(2000);
        let mut e = vec![0.0; 100];
        e.extend_from_slice(&r);
        assert_eq!(best_lag(&r, &e, 200), Ok(100));
        assert_ne!(best_lag(&r, &e, 50), Ok(100));
    }
}

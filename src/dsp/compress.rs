//! Magnitude compression of the model input: `|X|^0.3 e^{i angle X}` and its inverse.
//!
//! Compressing the magnitude (while keeping the phase) shrinks the dynamic range of speech spectra
//! to something a network trains on well; the exponent is `COMPRESS_EXPONENT`.

use super::{COMPRESS_EXPONENT, Complex32};

/// Raises every bin's magnitude to `exponent`, keeping its phase; a zero bin stays zero.
///
/// Fast path: `c * (|c|^2)^((exponent - 1) / 2)` is `|c|^exponent e^{i angle c}` with a single
/// `powf` and no trigonometry, square root or `hypot`. When `|c|^2` is not a normal f32 (|c| below
/// about 1e-19 or above 1e19, never in practice for audio spectra) the slower `hypot` form is used,
/// so every finite non-zero bin keeps its exact definition; only an exact zero maps to zero.
#[inline]
fn power_magnitude(c: Complex32, exponent: f32) -> Complex32 {
    let mag_sq = c.re * c.re + c.im * c.im;
    if mag_sq.is_normal() {
        c * mag_sq.powf(0.5 * (exponent - 1.0))
    } else if c.re != 0.0 || c.im != 0.0 {
        c * c.re.hypot(c.im).powf(exponent - 1.0)
    } else {
        Complex32::new(0.0, 0.0)
    }
}

/// `X <- |X|^0.3 e^{i angle X}` for every bin (zero bins stay zero). Does not allocate.
pub fn compress_in_place(bins: &mut [Complex32]) {
    for c in bins.iter_mut() {
        *c = power_magnitude(*c, COMPRESS_EXPONENT);
    }
}

/// Inverse of `compress_in_place`: `Y <- |Y|^(1/0.3) e^{i angle Y}`. Does not allocate.
pub fn decompress_in_place(bins: &mut [Complex32]) {
    let exponent = 1.0 / COMPRESS_EXPONENT;
    for c in bins.iter_mut() {
        *c = power_magnitude(*c, exponent);
    }
}

/// Writes the compressed spectrum of one frame as the model's two input channels.
///
/// `re_out[k]` and `im_out[k]` get the real and imaginary part of `compress(frame[k])`: one row
/// (one frame) of channels 0 and 1 of the `[batch, 2, frames, 257]` model input. `frame` is the
/// UNcompressed STFT frame and is left untouched. Does not allocate.
///
/// # Panics
///
/// If `re_out` or `im_out` is not as long as `frame`.
pub fn to_model_channels(frame: &[Complex32], re_out: &mut [f32], im_out: &mut [f32]) {
    assert_eq!(
        re_out.len(),
        frame.len(),
        "to_model_channels: re_out must be as long as frame"
    );
    assert_eq!(
        im_out.len(),
        frame.len(),
        "to_model_channels: im_out must be as long as frame"
    );
    for ((&c, re), im) in frame.iter().zip(re_out.iter_mut()).zip(im_out.iter_mut()) {
        let y = power_magnitude(c, COMPRESS_EXPONENT);
        *re = y.re;
        *im = y.im;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins() -> Vec<Complex32> {
        (0..257)
            .map(|k| {
                let a = k as f32 * 0.71;
                Complex32::new(a.cos() * (k as f32 + 0.5), a.sin() * 3.0)
            })
            .collect()
    }

    #[test]
    fn compress_matches_definition_and_round_trips() {
        let x = bins();
        let mut y = x.clone();
        compress_in_place(&mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((b.norm() - a.norm().powf(0.3)).abs() < 1e-5 * b.norm().max(1.0));
            assert!((b.arg() - a.arg()).abs() < 1e-5);
        }
        decompress_in_place(&mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).norm() <= 1e-5 * a.norm().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn zero_magnitude_is_safe() {
        let mut z = vec![Complex32::new(0.0, 0.0), Complex32::new(-0.0, 0.0)];
        compress_in_place(&mut z);
        assert!(z.iter().all(|c| c.re == 0.0 && c.im == 0.0));
        decompress_in_place(&mut z);
        assert!(z.iter().all(|c| c.re == 0.0 && c.im == 0.0));
    }

    #[test]
    fn extreme_magnitudes_take_the_exact_path() {
        // |c|^2 underflows (1e-30) or overflows (5e25) in f32: the hypot fallback keeps them exact.
        for c in [
            Complex32::new(1e-30, 0.0),
            Complex32::new(0.0, -3e-38),
            Complex32::new(3e25, 4e25),
        ] {
            let mut y = [c];
            compress_in_place(&mut y);
            let expected = f64::from(c.norm()).powf(0.3);
            let got = f64::from(y[0].norm());
            assert!(
                (got / expected - 1.0).abs() < 1e-5,
                "{c}: {got} vs {expected}"
            );
            assert!((y[0].arg() - c.arg()).abs() < 1e-5);
        }
    }

    #[test]
    fn model_channels_are_compressed_parts() {
        let x = bins();
        let mut re = vec![0.0; x.len()];
        let mut im = vec![0.0; x.len()];
        to_model_channels(&x, &mut re, &mut im);
        let mut y = x.clone();
        compress_in_place(&mut y);
        for k in 0..x.len() {
            assert_eq!((re[k], im[k]), (y[k].re, y[k].im));
        }
    }
}

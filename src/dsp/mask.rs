//! Applying the model's complex mask to the mixture spectrum.
//!
//! The model sees the compressed spectrum but its mask multiplies the UNcompressed mixture
//! spectrum (`S = M X`, complex product), which then goes to `StreamingIstft` as is.

use super::Complex32;

/// `spec[k] <- (mask_re[k] + i mask_im[k]) * spec[k]` for every bin. Does not allocate.
///
/// `mask_re` / `mask_im` are one frame's row of the model output channels 0 and 1.
///
/// # Panics
///
/// If `mask_re` or `mask_im` is not as long as `spec`.
pub fn apply_mask_in_place(spec: &mut [Complex32], mask_re: &[f32], mask_im: &[f32]) {
    assert_eq!(
        mask_re.len(),
        spec.len(),
        "apply_mask_in_place: mask_re must be as long as spec"
    );
    assert_eq!(
        mask_im.len(),
        spec.len(),
        "apply_mask_in_place: mask_im must be as long as spec"
    );
    for ((s, &re), &im) in spec.iter_mut().zip(mask_re).zip(mask_im) {
        *s *= Complex32::new(re, im);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complex_product() {
        let mut s = vec![Complex32::new(1.0, 2.0), Complex32::new(-3.0, 0.5)];
        apply_mask_in_place(&mut s, &[0.5, 0.0], &[1.0, -2.0]);
        assert_eq!(s[0], Complex32::new(1.0 * 0.5 - 2.0, 0.5 * 2.0 + 1.0));
        assert_eq!(s[1], Complex32::new(1.0, 6.0));
    }
}

//! Borrowed RGB images and the one resampling the detector needs, written into reused buffers.

/// A packed RGB8 image: `height` rows of `stride` bytes, the first `3 * width` of each used.
#[derive(Clone, Copy)]
pub struct RgbView<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl<'a> RgbView<'a> {
    /// A tightly packed image (stride = 3 * width).
    pub fn packed(data: &'a [u8], width: usize, height: usize) -> Self {
        assert!(data.len() >= width * height * 3, "RGB buffer too short");
        RgbView {
            data,
            width,
            height,
            stride: width * 3,
        }
    }

    /// Row `y` (only the used bytes).
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..y * self.stride + self.width * 3]
    }
}

/// Resample `src` by `scale` (< 1 shrinks) into planar f32 NCHW `dst` of `dst_w x dst_h`, values
/// 0..255 as CenterFace wants them; the image sits top-left and the rest is zero (letterbox).
///
/// Shrinking averages every source pixel under each destination pixel (a box filter): plain
/// bilinear at 1/4 scale would alias high-frequency texture into face-like blobs. Enlarging (small
/// stills) is bilinear.
pub fn resize_to_planar(src: &RgbView, scale: f32, dst: &mut [f32], dst_w: usize, dst_h: usize) {
    assert_eq!(dst.len(), 3 * dst_w * dst_h);
    dst.fill(0.0);
    let out_w = ((src.width as f32 * scale).round() as usize).clamp(1, dst_w);
    let out_h = ((src.height as f32 * scale).round() as usize).clamp(1, dst_h);
    let plane = dst_w * dst_h;
    let inv = 1.0 / scale;
    if scale >= 1.0 {
        for y in 0..out_h {
            let sy = ((y as f32 + 0.5) * inv - 0.5).clamp(0.0, (src.height - 1) as f32);
            let y0 = sy as usize;
            let y1 = (y0 + 1).min(src.height - 1);
            let fy = sy - y0 as f32;
            let (r0, r1) = (src.row(y0), src.row(y1));
            for x in 0..out_w {
                let sx = ((x as f32 + 0.5) * inv - 0.5).clamp(0.0, (src.width - 1) as f32);
                let x0 = sx as usize;
                let x1 = (x0 + 1).min(src.width - 1);
                let fx = sx - x0 as f32;
                for c in 0..3 {
                    let top = r0[3 * x0 + c] as f32 * (1.0 - fx) + r0[3 * x1 + c] as f32 * fx;
                    let bot = r1[3 * x0 + c] as f32 * (1.0 - fx) + r1[3 * x1 + c] as f32 * fx;
                    dst[c * plane + y * dst_w + x] = top * (1.0 - fy) + bot * fy;
                }
            }
        }
        return;
    }
    // Box filter: destination pixel x takes source columns [floor(x/s), floor((x+1)/s)).
    let span = |i: usize, n_src: usize| {
        let a = ((i as f32 * inv) as usize).min(n_src - 1);
        let b = (((i + 1) as f32 * inv) as usize).clamp(a + 1, n_src);
        (a, b)
    };
    for y in 0..out_h {
        let (ya, yb) = span(y, src.height);
        for x in 0..out_w {
            let (xa, xb) = span(x, src.width);
            let mut acc = [0u32; 3];
            for sy in ya..yb {
                let row = &src.row(sy)[3 * xa..3 * xb];
                for px in row.chunks_exact(3) {
                    acc[0] += px[0] as u32;
                    acc[1] += px[1] as u32;
                    acc[2] += px[2] as u32;
                }
            }
            let n = ((yb - ya) * (xb - xa)) as f32;
            for c in 0..3 {
                dst[c * plane + y * dst_w + x] = acc[c] as f32 / n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_shrink_averages_and_pads() {
        // 4x2 image, columns 0,1 = 10, columns 2,3 = 30 (all channels); shrink by 2 into 4x4.
        let mut data = Vec::new();
        for _ in 0..2 {
            for v in [10u8, 10, 30, 30] {
                data.extend([v, v, v]);
            }
        }
        let src = RgbView::packed(&data, 4, 2);
        let mut dst = vec![-1.0; 3 * 4 * 4];
        resize_to_planar(&src, 0.5, &mut dst, 4, 4);
        assert_eq!(&dst[0..4], &[10.0, 30.0, 0.0, 0.0]);
        assert!(dst[4..16].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn identity_scale_copies() {
        let data: Vec<u8> = (0..2 * 2 * 3).map(|v| v as u8).collect();
        let src = RgbView::packed(&data, 2, 2);
        let mut dst = vec![0.0; 12];
        resize_to_planar(&src, 1.0, &mut dst, 2, 2);
        assert_eq!(dst[0], 0.0);
        assert_eq!(dst[1], 3.0);
        assert_eq!(dst[4], 1.0); // green plane, first pixel
    }
}

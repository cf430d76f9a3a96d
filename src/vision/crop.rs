//! The mouth crop (docs/SIGNAL.md, "Mouth crop"; training/mouth_crop.py is the same function).
//!
//! A square centred on the midpoint of the two mouth corners, rotated so the eye line is
//! horizontal, side 1.8 x the mouth-corner distance clamped to [0.35, 0.8] x the face box width,
//! sampled bilinearly (edge pixels repeated outside the frame) at ROI_SIZE x ROI_SIZE from BT.601
//! grey, divided by 255. Geometry in f64 so both implementations agree to rounding.

use super::image::RgbView;
use super::{BBox, Landmarks};

/// Side of the crop in samples (the separator's `roi_size`).
pub const ROI_SIZE: usize = 48;
/// Crop side as a multiple of the mouth-corner distance.
pub const SIDE_PER_MOUTH_WIDTH: f64 = 1.8;
/// Bounds of the crop side as fractions of the face box width.
pub const SIDE_MIN_FRAC: f64 = 0.35;
pub const SIDE_MAX_FRAC: f64 = 0.8;

/// Where the crop lies in the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MouthCrop {
    pub centre: [f64; 2],
    pub side: f64,
    /// Angle of the eye line (radians, image y down); the crop's x axis follows it.
    pub angle: f64,
}

/// The middle of the mouth: halfway between the two mouth-corner landmarks (the crop's centre,
/// and where the overlay and timeline place a speaking face's sound).
pub fn mouth_centre(lm: &Landmarks) -> [f64; 2] {
    [
        (lm[3][0] as f64 + lm[4][0] as f64) / 2.0,
        (lm[3][1] as f64 + lm[4][1] as f64) / 2.0,
    ]
}

impl MouthCrop {
    pub fn from_face(bbox: &BBox, lm: &Landmarks) -> Self {
        let p = |i: usize| [lm[i][0] as f64, lm[i][1] as f64];
        let (ml, mr, el, er) = (p(3), p(4), p(0), p(1));
        let centre = mouth_centre(lm);
        let mouth_w = (mr[0] - ml[0]).hypot(mr[1] - ml[1]);
        let face_w = (bbox[2] - bbox[0]).max(1.0) as f64;
        let side =
            (SIDE_PER_MOUTH_WIDTH * mouth_w).clamp(SIDE_MIN_FRAC * face_w, SIDE_MAX_FRAC * face_w);
        let angle = (er[1] - el[1]).atan2(er[0] - el[0]);
        MouthCrop {
            centre,
            side,
            angle,
        }
    }

    /// Sample the crop into `out` (ROI_SIZE^2 values in [0, 1], row-major).
    pub fn sample(&self, img: &RgbView, out: &mut [f32]) {
        assert_eq!(out.len(), ROI_SIZE * ROI_SIZE);
        let (cos, sin) = (self.angle.cos(), self.angle.sin());
        let step = self.side / ROI_SIZE as f64;
        for i in 0..ROI_SIZE {
            let v = (i as f64 + 0.5) * step - self.side / 2.0;
            for j in 0..ROI_SIZE {
                let u = (j as f64 + 0.5) * step - self.side / 2.0;
                // Crop axes rotated by `angle` into the frame; -0.5 turns continuous coordinates
                // into pixel-centre indices.
                let x = self.centre[0] + u * cos - v * sin - 0.5;
                let y = self.centre[1] + u * sin + v * cos - 0.5;
                out[i * ROI_SIZE + j] = (bilinear_grey(img, x, y) / 255.0) as f32;
            }
        }
    }
}

/// BT.601 luma of pixel (x, y), with the indices clamped to the frame.
#[inline]
fn grey(img: &RgbView, x: isize, y: isize) -> f64 {
    let x = x.clamp(0, img.width as isize - 1) as usize;
    let y = y.clamp(0, img.height as isize - 1) as usize;
    let p = &img.row(y)[3 * x..3 * x + 3];
    0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
}

fn bilinear_grey(img: &RgbView, x: f64, y: f64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (xi, yi) = (x0 as isize, y0 as isize);
    let top = grey(img, xi, yi) * (1.0 - fx) + grey(img, xi + 1, yi) * fx;
    let bot = grey(img, xi, yi + 1) * (1.0 - fx) + grey(img, xi + 1, yi + 1) * fx;
    top * (1.0 - fy) + bot * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(mouth: [[f32; 2]; 2]) -> (BBox, Landmarks) {
        let lm = [[40.0, 40.0], [60.0, 40.0], [50.0, 50.0], mouth[0], mouth[1]];
        ([20.0, 20.0, 80.0, 90.0], lm)
    }

    #[test]
    fn side_is_clamped_by_face_width() {
        let (b, lm) = face([[49.0, 60.0], [51.0, 60.0]]); // 2 px mouth: side 3.6 < 0.35 * 60
        assert!((MouthCrop::from_face(&b, &lm).side - 21.0).abs() < 1e-9);
        let (b, lm) = face([[40.0, 60.0], [60.0, 60.0]]); // 20 px: 36, within [21, 48]
        let c = MouthCrop::from_face(&b, &lm);
        assert!((c.side - 36.0).abs() < 1e-9 && c.centre == [50.0, 60.0] && c.angle == 0.0);
    }

    #[test]
    fn uniform_image_gives_uniform_crop() {
        let data = vec![200u8; 100 * 100 * 3];
        let img = RgbView::packed(&data, 100, 100);
        let (b, lm) = face([[40.0, 60.0], [60.0, 60.0]]);
        let mut out = vec![0.0; ROI_SIZE * ROI_SIZE];
        MouthCrop::from_face(&b, &lm).sample(&img, &mut out);
        assert!(out.iter().all(|&v| (v - 200.0 / 255.0).abs() < 1e-5));
    }
}

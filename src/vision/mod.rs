//! Faces in the live video: a pretrained detector (CenterFace, ONNX), a tracker that keeps one id
//! per person, and the mouth crop the separator is conditioned on.
//!
//! All coordinates are continuous input-video pixels: pixel (i, j) covers [i, i+1) x [j, j+1).

pub mod crop;
pub mod decode;
pub mod detector;
pub mod image;
pub mod offline;
pub mod pipeline;
pub mod still;
pub mod tracker;

pub use crop::{MouthCrop, ROI_SIZE};
pub use detector::{CenterFace, Detection};
pub use image::RgbView;
pub use pipeline::{FacePipeline, VisionConfig};
pub use tracker::{Tracker, TrackerConfig};

/// Axis-aligned box `[x0, y0, x1, y1]` in input pixels.
pub type BBox = [f32; 4];

/// The five CenterFace landmarks, in this order: left eye, right eye, nose, left and right mouth
/// corner ("left" = smaller x in an upright frontal face).
pub type Landmarks = [[f32; 2]; 5];

/// What the vision stage says about one tracked face in one video frame.
#[derive(Debug, Clone)]
pub struct FaceObs {
    /// The frame's pts (pipeline running time, ns).
    pub pts: u64,
    /// Stable per person for as long as the track lives (see [`TrackerConfig::max_age_ns`]).
    pub track_id: u64,
    pub bbox: BBox,
    pub landmarks: Landmarks,
    /// Detector confidence of the last matched detection.
    pub score: f32,
    /// `ROI_SIZE x ROI_SIZE` grey levels in [0, 1], row-major (docs/SIGNAL.md, "Mouth crop").
    pub mouth_crop: Vec<f32>,
    /// False when the face is smaller than `min_face_px` or only predicted, not seen lately: it is
    /// tracked (its id survives) but not handed to separation.
    pub offered: bool,
}

/// Intersection over union of two boxes; 0 for empty ones.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &BBox| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_basics() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        let half = iou(&a, &[5.0, 0.0, 15.0, 10.0]);
        assert!((half - 1.0 / 3.0).abs() < 1e-6);
    }
}

//! The vision stage for one stream: detect every `every` frames at reduced resolution, track in
//! between, and emit one [`FaceObs`] per visible track per frame with its mouth crop.

use super::crop::{MouthCrop, ROI_SIZE};
use super::detector::{CenterFace, DetectorConfig};
use super::image::RgbView;
use super::tracker::{Tracker, TrackerConfig};
use super::{Detection, FaceObs};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct VisionConfig {
    /// Run the detector on every `every`-th frame (1 = every frame).
    pub every: u32,
    /// Longer side of the detector's input, in pixels (before rounding up to 32).
    pub detect_long_side: usize,
    /// The model file (None: the committed one).
    pub model: Option<PathBuf>,
    pub detector: DetectorConfig,
    pub tracker: TrackerConfig,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            every: 5,
            detect_long_side: 480,
            model: None,
            detector: DetectorConfig::default(),
            tracker: TrackerConfig::default(),
        }
    }
}

pub struct FacePipeline {
    cfg: VisionConfig,
    detector: CenterFace,
    tracker: Tracker,
    frame: u64,
    /// pts of the latest detector run: a track last seen there is offered until the next run.
    last_detect_pts: Option<u64>,
    dets: Vec<Detection>,
}

impl FacePipeline {
    pub fn new(cfg: VisionConfig) -> Result<Self> {
        let detector = CenterFace::load(cfg.model.as_deref(), cfg.detector.clone())?;
        let tracker = Tracker::new(cfg.tracker.clone());
        Ok(FacePipeline {
            cfg,
            detector,
            tracker,
            frame: 0,
            last_detect_pts: None,
            dets: Vec::new(),
        })
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Process one frame; `out` is cleared and gets one observation per visible track.
    /// `with_crops: false` skips the mouth crops (the CLI's JSON does not print them).
    pub fn process(
        &mut self,
        pts: u64,
        img: &RgbView,
        with_crops: bool,
        out: &mut Vec<FaceObs>,
    ) -> Result<()> {
        if self.frame.is_multiple_of(self.cfg.every.max(1) as u64) {
            self.detector
                .detect(img, self.cfg.detect_long_side, &mut self.dets)?;
            self.tracker.update(pts, &self.dets);
            self.last_detect_pts = Some(pts);
        }
        self.frame += 1;
        self.observe(pts, img, with_crops, out);
        Ok(())
    }

    /// A frame without the detector, for a caller that has fallen behind: the tracks' predicted
    /// boxes with fresh mouth crops (the crops are cheap, the detector is not). A detection due
    /// now runs at the next [`Self::process`].
    pub fn track_only(
        &mut self,
        pts: u64,
        img: &RgbView,
        with_crops: bool,
        out: &mut Vec<FaceObs>,
    ) {
        self.observe(pts, img, with_crops, out);
    }

    /// One observation per visible track at `pts` into `out` (cleared first).
    fn observe(&self, pts: u64, img: &RgbView, with_crops: bool, out: &mut Vec<FaceObs>) {
        out.clear();
        for t in self.tracker.tracks() {
            if !self.tracker.visible(t, pts) {
                continue;
            }
            let (bbox, landmarks) = t.predict(pts);
            let seen_at_last_run = Some(t.last_seen_ns) == self.last_detect_pts;
            let big_enough = bbox[2] - bbox[0] >= self.tracker.cfg.min_face_px;
            let mut mouth_crop = Vec::new();
            if with_crops {
                mouth_crop.resize(ROI_SIZE * ROI_SIZE, 0.0);
                MouthCrop::from_face(&bbox, &landmarks).sample(img, &mut mouth_crop);
            }
            out.push(FaceObs {
                pts,
                track_id: t.id,
                bbox,
                landmarks,
                score: t.score,
                mouth_crop,
                // Between detections a track found by the latest run is predicted, which is fine;
                // one that the latest run missed is held back (still drawn, coasting) until it is
                // seen again. Relative to the run, not to a frame count, so frames the video
                // thread skips under load change nothing.
                offered: big_enough && seen_at_last_run,
            });
        }
    }
}

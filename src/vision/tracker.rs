//! Face tracks with stable ids: detections are matched to constant-velocity predictions by IoU
//! (then by centre distance, for fast motion between sparse detections); an unmatched track
//! coasts and keeps its id for `max_age_ns`, so a person who is missed or briefly occluded comes
//! back under the same id; an unmatched detection starts a new id.

use super::decode::Detection;
use super::{BBox, Landmarks, iou};

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// A track not matched for this long is forgotten (its id never comes back).
    pub max_age_ns: u64,
    /// A track not matched for this long is still kept but no longer reported as visible.
    pub coast_ns: u64,
    /// Minimum IoU between prediction and detection for the first matching pass.
    pub min_iou: f32,
    /// Second pass: centre distance below this fraction of the track's box width matches.
    pub max_centre_dist: f32,
    /// Faces narrower than this (input pixels) are tracked but not offered to separation.
    pub min_face_px: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_age_ns: 1_000_000_000,
            coast_ns: 400_000_000,
            min_iou: 0.2,
            max_centre_dist: 0.7,
            min_face_px: 40.0,
        }
    }
}

/// One person's track.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    /// Last matched box and landmarks, and when.
    pub bbox: BBox,
    pub landmarks: Landmarks,
    pub score: f32,
    pub last_seen_ns: u64,
    pub first_seen_ns: u64,
    /// Centre velocity in pixels per ns, smoothed over matches.
    velocity: [f32; 2],
}

impl Track {
    /// The box and landmarks moved to where constant velocity puts them at `pts`. The
    /// extrapolation stops after `coast_ns`-ish (0.5 s) so a lost face does not drift away.
    pub fn predict(&self, pts: u64) -> (BBox, Landmarks) {
        let dt = pts.saturating_sub(self.last_seen_ns).min(500_000_000) as f32;
        let (dx, dy) = (self.velocity[0] * dt, self.velocity[1] * dt);
        let b = self.bbox;
        let mut lm = self.landmarks;
        for p in &mut lm {
            *p = [p[0] + dx, p[1] + dy];
        }
        ([b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy], lm)
    }
}

fn centre(b: &BBox) -> [f32; 2] {
    [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]
}

pub struct Tracker {
    pub cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    // Reused between updates.
    predicted: Vec<BBox>,
    pairs: Vec<(f32, usize, usize)>,
    track_used: Vec<bool>,
    det_used: Vec<bool>,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Tracker {
            cfg,
            tracks: Vec::new(),
            next_id: 1,
            predicted: Vec::new(),
            pairs: Vec::new(),
            track_used: Vec::new(),
            det_used: Vec::new(),
        }
    }

    /// Every live track (seen within `max_age_ns` of the last update).
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Whether `t` counts as visible at `pts` (matched within `coast_ns`).
    pub fn visible(&self, t: &Track, pts: u64) -> bool {
        pts.saturating_sub(t.last_seen_ns) <= self.cfg.coast_ns
    }

    /// Match the detections of the frame at `pts`, update, spawn and expire tracks.
    pub fn update(&mut self, pts: u64, dets: &[Detection]) {
        self.predicted.clear();
        self.predicted
            .extend(self.tracks.iter().map(|t| t.predict(pts).0));
        self.track_used.clear();
        self.track_used.resize(self.tracks.len(), false);
        self.det_used.clear();
        self.det_used.resize(dets.len(), false);

        // Pass 1: greedy on IoU, best pairs first.
        self.pairs.clear();
        for (ti, pb) in self.predicted.iter().enumerate() {
            for (di, d) in dets.iter().enumerate() {
                let o = iou(pb, &d.bbox);
                if o >= self.cfg.min_iou {
                    self.pairs.push((o, ti, di));
                }
            }
        }
        self.pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.assign(pts, dets);

        // Pass 2: what is left, by centre distance relative to size, nearest first; sizes must
        // roughly agree so two people side by side are not swapped. The distance is to the
        // prediction or to the last seen place, whichever is nearer: a head that turns back
        // between two detections is far from where constant velocity puts it.
        self.pairs.clear();
        for (ti, pb) in self.predicted.iter().enumerate() {
            if self.track_used[ti] {
                continue;
            }
            let (pc, pw) = (centre(pb), pb[2] - pb[0]);
            let lc = centre(&self.tracks[ti].bbox);
            for (di, d) in dets.iter().enumerate() {
                if self.det_used[di] {
                    continue;
                }
                let (dc, dw) = (centre(&d.bbox), d.bbox[2] - d.bbox[0]);
                let near = (pc[0] - dc[0])
                    .hypot(pc[1] - dc[1])
                    .min((lc[0] - dc[0]).hypot(lc[1] - dc[1]));
                let dist = near / pw.max(1.0);
                let ratio = dw / pw.max(1.0);
                if dist < self.cfg.max_centre_dist && (0.6..1.6).contains(&ratio) {
                    self.pairs.push((-dist, ti, di));
                }
            }
        }
        self.pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.assign(pts, dets);

        for (di, d) in dets.iter().enumerate() {
            if !self.det_used[di] {
                self.tracks.push(Track {
                    id: self.next_id,
                    bbox: d.bbox,
                    landmarks: d.landmarks,
                    score: d.score,
                    last_seen_ns: pts,
                    first_seen_ns: pts,
                    velocity: [0.0; 2],
                });
                self.next_id += 1;
            }
        }
        let max_age = self.cfg.max_age_ns;
        self.tracks
            .retain(|t| pts.saturating_sub(t.last_seen_ns) <= max_age);
    }

    fn assign(&mut self, pts: u64, dets: &[Detection]) {
        for &(_, ti, di) in &self.pairs {
            if self.track_used[ti] || self.det_used[di] {
                continue;
            }
            self.track_used[ti] = true;
            self.det_used[di] = true;
            let t = &mut self.tracks[ti];
            let d = &dets[di];
            let dt = pts.saturating_sub(t.last_seen_ns);
            if dt > 0 {
                let (c0, c1) = (centre(&t.bbox), centre(&d.bbox));
                let v = [(c1[0] - c0[0]) / dt as f32, (c1[1] - c0[1]) / dt as f32];
                // Half-and-half smoothing: detections jitter by a few pixels at reduced resolution.
                t.velocity = [0.5 * (t.velocity[0] + v[0]), 0.5 * (t.velocity[1] + v[1])];
            }
            t.bbox = d.bbox;
            t.landmarks = d.landmarks;
            t.score = d.score;
            t.last_seen_ns = pts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 40_000_000;

    fn det(x: f32, y: f32, w: f32) -> Detection {
        Detection {
            bbox: [x, y, x + w, y + w],
            score: 0.9,
            landmarks: [[x, y]; 5],
        }
    }

    #[test]
    fn moving_face_keeps_id_and_new_face_gets_new_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        for k in 0..50u64 {
            let mut d = vec![det(100.0 + 8.0 * k as f32, 100.0, 80.0)];
            if k >= 20 {
                d.push(det(600.0, 300.0, 80.0));
            }
            // Detect every 5th frame only, like the pipeline does.
            if k % 5 == 0 {
                t.update(k * FRAME, &d);
            }
        }
        let ids: Vec<u64> = t.tracks().iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn head_turning_back_between_detections_keeps_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        // Moving left 25 px per detection, then 36 px right: far from the prediction.
        for (k, x) in [300.0, 275.0, 250.0, 225.0, 261.0].into_iter().enumerate() {
            t.update(k as u64 * 5 * FRAME, &[det(x, 160.0, 86.0)]);
        }
        assert_eq!(t.tracks().len(), 1);
        assert_eq!(t.tracks()[0].id, 1);
    }

    #[test]
    fn occlusion_shorter_than_max_age_keeps_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(0, &[det(100.0, 100.0, 80.0)]);
        t.update(900_000_000, &[]);
        t.update(950_000_000, &[det(104.0, 100.0, 80.0)]);
        assert_eq!(t.tracks().len(), 1);
        assert_eq!(t.tracks()[0].id, 1);
        // Gone for longer than a second: forgotten, a return is a new id.
        t.update(2_100_000_000, &[]);
        t.update(2_200_000_000, &[det(104.0, 100.0, 80.0)]);
        assert_eq!(t.tracks()[0].id, 2);
    }
}

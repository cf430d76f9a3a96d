//! Tracking through real clips at 1280x720, detector every 5 frames: each main speaker keeps one
//! track id over >= 95% of the frames, and no other id ever takes their place. Skips when the
//! shared data is absent.

mod common;

use avsepd::vision::offline::track_uri;
use avsepd::vision::{BBox, VisionConfig, iou};
use std::collections::HashMap;

/// Per frame: (track id, box) of every reported face.
fn run(rel: &str) -> Option<Vec<Vec<(u64, BBox)>>> {
    let path = common::shared_data(rel)?;
    let uri = avsepd::media::uri::to_uri(path.to_str().unwrap()).unwrap();
    let mut frames = Vec::new();
    let n = track_uri(
        &uri,
        1280,
        720,
        VisionConfig::default(),
        true,
        |_, faces| {
            for f in faces {
                assert_eq!(f.mouth_crop.len(), 48 * 48);
            }
            frames.push(faces.iter().map(|f| (f.track_id, f.bbox)).collect());
        },
    )
    .unwrap();
    assert!(n > 100, "only {n} frames decoded");
    Some(frames)
}

/// Check the `speakers` longest-lived tracks; returns their coverage (fraction of frames).
fn check_main_tracks(frames: &[Vec<(u64, BBox)>], speakers: usize) -> Vec<f64> {
    let mut count: HashMap<u64, usize> = HashMap::new();
    for f in frames {
        for (id, _) in f {
            *count.entry(*id).or_default() += 1;
        }
    }
    let mut ids: Vec<(u64, usize)> = count.into_iter().collect();
    ids.sort_by_key(|&(id, n)| (std::cmp::Reverse(n), id));
    let mut coverage = Vec::new();
    for &(id, n) in ids.iter().take(speakers) {
        let frac = n as f64 / frames.len() as f64;
        eprintln!(
            "track {id}: in {n} of {} frames ({:.1}%)",
            frames.len(),
            100.0 * frac
        );
        assert!(
            frac >= 0.95,
            "track {id} covers only {:.1}% of the frames",
            100.0 * frac
        );
        // No id switch: no other track ever sits where this one was last seen.
        let mut last: Option<BBox> = None;
        for (k, f) in frames.iter().enumerate() {
            if let Some((_, b)) = f.iter().find(|(i, _)| *i == id) {
                last = Some(*b);
            }
            if let Some(l) = last {
                for (other, b) in f.iter().filter(|(i, _)| *i != id) {
                    assert!(
                        iou(&l, b) < 0.3,
                        "frame {k}: track {other} took the place of {id}"
                    );
                }
            }
        }
        coverage.push(frac);
    }
    coverage
}

#[test]
fn debate_two_speakers_keep_their_ids() {
    let Some(frames) = run("video/debate_2spk.mp4") else {
        return;
    };
    check_main_tracks(&frames, 2);
}

#[test]
fn restaurant_speaker_keeps_its_id() {
    let Some(frames) = run("video/restaurant_1spk_noisy.mp4") else {
        return;
    };
    check_main_tracks(&frames, 1);
}

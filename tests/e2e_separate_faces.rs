//! `avsepd separate` on the bundled demo clip: the vision stage finds both faces, keeps one track
//! id per person through the whole clip, the timeline and overlay carry them, and every audio
//! chunk gets the faces of its own video frame.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn demo_clip_faces_reach_the_timeline() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(avsepd())
        .args(["--log-format", "json", "separate"])
        .arg(repo().join("demo/demo.mp4"))
        .args(["--bypass", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let timeline: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("timeline.json")).unwrap()).unwrap();
    let frames = timeline["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 250);
    // Frames per track id, and where each track sits (left or right half of the 640-px frame).
    let mut per_track: BTreeMap<u64, (usize, f64)> = BTreeMap::new();
    for f in frames {
        for face in f["faces"].as_array().unwrap() {
            let id = face["track_id"].as_u64().unwrap();
            let b: Vec<f64> = face["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let e = per_track.entry(id).or_default();
            e.0 += 1;
            e.1 += (b[0] + b[2]) / 2.0;
        }
    }
    eprintln!(
        "tracks (id: frames): {:?}",
        per_track.iter().map(|(k, v)| (k, v.0)).collect::<Vec<_>>()
    );
    let long: Vec<_> = per_track.iter().filter(|(_, v)| v.0 >= 238).collect();
    assert_eq!(
        long.len(),
        2,
        "two faces, each tracked under one id in >= 95% of frames: {per_track:?}"
    );
    let centres: Vec<f64> = long.iter().map(|(_, v)| v.1 / v.0 as f64).collect();
    assert!(
        centres.iter().any(|c| *c < 320.0) && centres.iter().any(|c| *c > 320.0),
        "one left, one right: {centres:?}"
    );
    // The overlay still has every frame.
    assert_eq!(count_video_frames(&out.path().join("overlay.mp4")), 250);

    // Every 40 ms audio chunk was separated with the faces of its own video frame (by pts): a
    // file waits for the vision stage instead of skipping frames or taking older faces.
    let stderr = String::from_utf8_lossy(&run.stderr);
    let report: serde_json::Value = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "stream finished")
        .expect("a `stream finished` report in the log")["fields"]
        .clone();
    let count = |k: &str| report[k].as_u64().unwrap();
    // 160340 samples: 250.5 chunks, and the flush that brings out the last of them.
    let chunks = 160_340u64.div_ceil(640);
    assert!(
        count("face_chunks_on_time") >= chunks,
        "chunks with their own frame's faces: {report}"
    );
    for k in [
        "face_chunks_stale",
        "face_frames_dropped",
        "vision_skipped_frames",
    ] {
        assert_eq!(count(k), 0, "{k}: {report}");
    }
}

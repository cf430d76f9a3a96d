//! SIGTERM in the middle of `avsepd separate` on a live RTSP source: exit 0 within 2 s, and the
//! WAV, MP4 and timeline it leaves are complete, readable files covering what was received.

mod common;

use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn sigterm_leaves_complete_outputs() {
    init();
    let server =
        RtspFileServer::start(&repo().join("demo/demo.mp4"), "clip", ServedAudio::Aac, 0).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(avsepd())
        .args(["--log-format", "json", "separate"])
        .arg(server.url())
        .args(["--bypass", "--transport", "tcp", "--out"])
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop in the middle: once about 2 s of the 10 s clip have reached the speaker WAV (its
    // size grows as samples are written), not after a fixed sleep, which on a starved machine
    // could come before the first frame.
    let wav_path = out.path().join("speaker-0.wav");
    let half_way = 44 + 2 * 16_000 * 2; // header + 2 s of 16-bit mono at 16 kHz
    let wav_len = || std::fs::metadata(&wav_path).map_or(0, |m| m.len());
    let reached = wait_until(Duration::from_secs(60), || {
        wav_len() >= half_way || child.try_wait().unwrap().is_some()
    });
    if let Some(status) = child.try_wait().unwrap() {
        let stderr = child
            .stderr
            .take()
            .map(|e| std::io::read_to_string(e).unwrap_or_default())
            .unwrap_or_default();
        panic!("separate ended early ({status}):\n{stderr}");
    }
    assert!(reached, "no 2 s of output within 60 s");
    let (status, took, stderr) = sigterm_and_wait(&mut child, Duration::from_secs(10));
    eprintln!("SIGTERM -> {status} in {} ms", took.as_millis());
    assert!(status.success(), "{status}\n{stderr}");
    assert!(
        took <= Duration::from_secs(2),
        "stopping took {took:?}\n{stderr}"
    );

    // Every received frame is either in the files or counted as dropped: a stop drains the
    // queues for a bounded time only (src/stream/shutdown.rs), so a machine that has fallen
    // behind may drop its backlog, but never silently.
    let report = finished_report(&stderr);
    let count = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {report}"))
    };
    let (spec, wav) = read_wav(&out.path().join("speaker-0.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
    let secs = wav.len() as f64 / 16_000.0;
    let frames = count_video_frames(&out.path().join("overlay.mp4"));
    let dropped = (
        count("video_dropped_frames"),
        count("audio_dropped_buffers"),
    );
    eprintln!(
        "wav {secs:.2} s, overlay {frames} frames, dropped at the stop (video, audio): {dropped:?}"
    );
    assert_eq!(wav.len() as u64, count("audio_out_samples"));
    assert_eq!(frames as u64, count("video_out_frames"));
    assert_eq!(frames as u64 + dropped.0, count("video_in_frames"));
    assert!((1.5..9.0).contains(&secs), "wav holds {secs:.2} s");
    if dropped == (0, 0) {
        let expected = secs * 25.0;
        assert!(
            (frames as f64 - expected).abs() <= 0.2 * expected + 5.0,
            "{frames} frames for {secs:.2} s"
        );
    }
    let timeline: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("timeline.json")).unwrap()).unwrap();
    assert_eq!(timeline["frames"].as_array().unwrap().len(), frames);
}

/// The "stream finished" line of the daemon's JSON log: its fields.
fn finished_report(stderr: &str) -> serde_json::Value {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["fields"].clone())
        .find(|f| f["message"] == "stream finished")
        .unwrap_or_else(|| panic!("no `stream finished` line in the log:\n{stderr}"))
}

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
    assert!(took <= Duration::from_secs(2), "stopping took {took:?}");

    let (spec, wav) = read_wav(&out.path().join("speaker-0.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
    let secs = wav.len() as f64 / 16_000.0;
    let frames = count_video_frames(&out.path().join("overlay.mp4"));
    eprintln!("wav {secs:.2} s, overlay {frames} frames");
    assert!((1.5..9.0).contains(&secs), "wav holds {secs:.2} s");
    let expected = secs * 25.0;
    assert!(
        (frames as f64 - expected).abs() <= 0.2 * expected + 5.0,
        "{frames} frames for {secs:.2} s"
    );
    let timeline: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("timeline.json")).unwrap()).unwrap();
    assert_eq!(timeline["frames"].as_array().unwrap().len(), frames);
}

//! `avsepd separate rtsp://... --out DIR --bypass` against the in-process RTSP server serving a
//! real clip (L16 audio): speaker-0.wav equals the clip's audio as GStreamer decodes it to 16 kHz
//! mono at >= 40 dB SNR, and overlay.mp4 plays with the clip's frame count.

mod common;

use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use common::*;
use std::process::Command;

#[test]
fn separate_real_clip_over_rtsp_bypass() {
    let Some(clip) = shared_data("video/restaurant_1spk_noisy.mp4") else {
        return;
    };
    init();
    let reference = decode_audio_16k(&clip);
    let clip_frames = count_video_frames(&clip);
    let server = RtspFileServer::start(&clip, "restaurant", ServedAudio::L16, 0).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(avsepd())
        .args(["--log-format", "json", "separate"])
        .arg(server.url())
        .args(["--bypass", "--transport", "tcp", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "separate failed: {}\n{stderr}",
        run.status
    );

    let (spec, wav) = read_wav(&out.path().join("speaker-0.wav"));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    let (lag, snr) = avsepd::dsp::aligned_snr_db(&reference, &wav, 16_000).unwrap();
    eprintln!(
        "speaker-0.wav: {} samples (reference {}), SNR {snr:.1} dB at lag {lag}",
        wav.len(),
        reference.len()
    );
    assert!(snr >= 40.0, "SNR {snr:.1} dB");
    assert!(
        wav.len() as f64 >= 0.98 * reference.len() as f64,
        "audio lost"
    );

    let frames = count_video_frames(&out.path().join("overlay.mp4"));
    eprintln!("overlay.mp4: {frames} frames (clip {clip_frames})");
    let ratio = frames as f64 / clip_frames as f64;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "overlay {frames} frames vs clip {clip_frames}"
    );

    let timeline: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("timeline.json")).unwrap()).unwrap();
    let entries = timeline["frames"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        frames,
        "one timeline entry per overlay frame"
    );
    let pts: Vec<u64> = entries.iter().map(|f| f["pts"].as_u64().unwrap()).collect();
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "timeline pts increase");
}

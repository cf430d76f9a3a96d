//! End to end, all real: the in-process RTSP server serves the generated demo clip with L16
//! audio -> `avsepd run` (bypass, L16 egress) -> RTP on 127.0.0.1 -> GStreamer receivers built
//! from the SDP files. The received audio must match the clip's audio (as GStreamer decodes it to
//! 16 kHz mono) at >= 40 dB SNR after alignment; the overlay must decode with the clip's frame
//! count +-5%.

mod common;

use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use common::*;
use std::time::{Duration, Instant};

#[test]
fn rtsp_in_rtp_out_bypass_matches_source() {
    init();
    let clip = repo().join("demo/demo.mp4");
    let reference = decode_audio_16k(&clip);
    let clip_frames = count_video_frames(&clip);
    assert!(
        reference.len() > 150_000 && clip_frames >= 240,
        "reference decode: {} samples, {clip_frames} frames",
        reference.len()
    );

    let server = RtspFileServer::start(&clip, "clip", ServedAudio::L16, 0).unwrap();
    server.hold_clients(); // released once our receivers listen
    let dir = tempfile::tempdir().unwrap();
    let base = free_udp_ports(102);
    let config = dir.path().join("avsepd.toml");
    let api = free_tcp_addr();
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"{api}\"\n\n[reconnect]\nenabled = false\n\n[egress]\nrtp_host = \"127.0.0.1\"\nsdp_dir = \"{sdp}\"\naudio_codec = \"l16\"\n\n\
             [streams.door]\nurl = \"{url}\"\ntransport = \"tcp\"\nbase_port = {base}\n",
            sdp = dir.path().display(),
            url = server.url()
        ),
    )
    .unwrap();
    let (mut daemon, log) = spawn_daemon(&config);

    let audio_sdp = dir.path().join("door-speaker-0.sdp");
    let video_sdp = dir.path().join("door-overlay.sdp");
    assert!(
        wait_for_file(&audio_sdp, Duration::from_secs(20)),
        "no audio SDP"
    );
    assert!(
        wait_for_file(&video_sdp, Duration::from_secs(20)),
        "no overlay SDP"
    );
    let audio_rx = RtpReceiver::from_sdp(&audio_sdp);
    let video_rx = RtpReceiver::from_sdp(&video_sdp);
    std::thread::sleep(Duration::from_millis(300)); // receivers reach PLAYING
    server.release_clients();

    // Mid-stream, the control endpoint reports the stream as up and counting: polled until 1 s
    // of audio is counted, not read after a fixed sleep, which on a loaded machine can come
    // before the RTSP handshake and preroll are done (a CI run once saw 0 samples after 3 s).
    assert!(http_get(api, "/healthz").is_some_and(|r| r.0 == 200));
    let mut metrics = String::new();
    let counting = wait_until(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(50));
        metrics = http_get(api, "/metrics").map(|r| r.1).unwrap_or_default();
        metric(&metrics, "avsepd_audio_in_samples_total{stream=\"door\"}") > 16_000.0
    });
    assert!(counting, "no 1 s of audio counted within 30 s\n{metrics}");
    assert_eq!(metric(&metrics, "avsepd_stream_up{stream=\"door\"}"), 1.0);

    // The clip is 10 s of real time; the daemon exits at its end.
    let started = Instant::now();
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(90) {
            // Leave it running for a post-mortem (gdb -p) when AVSEPD_TEST_KEEP is set;
            // otherwise the guard kills it.
            let pid = daemon.id();
            let text = log.lock().unwrap().clone();
            if std::env::var_os("AVSEPD_TEST_KEEP").is_some() {
                std::mem::forget(daemon);
            }
            panic!("daemon {pid} did not exit at the end of the stream\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(200)); // the drain thread reads the last lines
    let stderr = log.lock().unwrap().clone();
    assert!(status.success(), "daemon failed: {status}\n{stderr}");
    std::thread::sleep(Duration::from_millis(800)); // jitterbuffer drains
    audio_rx.stop();
    video_rx.stop();

    let received = audio_rx.samples.lock().unwrap().clone();
    let frames = *video_rx.frames.lock().unwrap();
    eprintln!(
        "received {} samples (reference {}), {frames} frames (clip {clip_frames})",
        received.len(),
        reference.len()
    );
    if let Some(dump) = std::env::var_os("AVSEPD_TEST_DUMP") {
        let bytes: Vec<u8> = received.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(dump, bytes).unwrap();
    }
    let (lag, snr) = avsepd::dsp::aligned_snr_db(&reference, &received, 16_000).expect("alignment");
    eprintln!("aligned SNR {snr:.1} dB at lag {lag}");
    assert!(
        snr >= 40.0,
        "received audio SNR {snr:.1} dB < 40 dB (lag {lag})"
    );
    assert!(
        received.len() as f64 >= 0.95 * reference.len() as f64,
        "lost audio: {} of {}",
        received.len(),
        reference.len()
    );
    // Frames the overlay output dropped itself (its encoder more than 1 s behind on a starved
    // machine) are counted in the final report: received + counted must account for the clip.
    let out_dropped: usize = stderr
        .split("\"video_out_dropped_frames\":")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the final report counts the overlay's drops");
    let ratio = (frames + out_dropped) as f64 / clip_frames as f64;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "overlay frames {frames} (+ {out_dropped} dropped and counted) vs clip {clip_frames}"
    );
    // The daemon's own accounting agrees: nothing dropped.
    assert!(stderr.contains("\"audio_dropped_buffers\":0"), "{stderr}");
}

/// A server dropped right after it started stops: its quit must not be lost when it comes before
/// the server's thread has entered its main loop (a join that waited forever).
#[test]
fn rtsp_server_dropped_at_once_stops() {
    init();
    let clip = repo().join("demo/demo.mp4");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..30 {
            drop(RtspFileServer::start(&clip, "x", ServedAudio::L16, 0).unwrap());
        }
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "30 servers started and dropped at once did not all stop within 60 s"
    );
}

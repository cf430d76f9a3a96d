//! Resilience: the in-process RTSP server is stopped and restarted 3 times while `avsepd run`
//! streams from it. The daemon never exits, /readyz goes 503 while the camera is away and back
//! to 200 within 5 s of each return, RTP output resumes, and the reconnect counters match.

mod common;

use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Poll `/readyz` until it answers `want`; the time it took, or None after `limit`.
fn wait_ready(api: SocketAddr, want: u16, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if http_get(api, "/readyz").map(|r| r.0) == Some(want) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn camera_restarts_are_survived() {
    init();
    let clip = repo().join("demo/demo.mp4");
    let rtsp_port = free_tcp_addr().port();
    let api = free_tcp_addr();
    let mut server =
        Some(RtspFileServer::start(&clip, "cam", ServedAudio::L16, rtsp_port).unwrap());
    let url = server.as_ref().unwrap().url();
    let dir = tempfile::tempdir().unwrap();
    let base = free_udp_ports(102);
    let config = dir.path().join("avsepd.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"{api}\"\n\n[egress]\nsdp_dir = \"{sdp}\"\naudio_codec = \"l16\"\noverlay = false\n\n\
             [vision]\nenabled = false\n\n\
             [reconnect]\nstall_timeout_ms = 1500\ninitial_backoff_ms = 200\nmax_backoff_ms = 800\njitter_percent = 0\n\n\
             [streams.cam]\nurl = \"{url}\"\ntransport = \"tcp\"\nbase_port = {base}\n",
            sdp = dir.path().display(),
        ),
    )
    .unwrap();
    let (mut daemon, log) = spawn_daemon(&config);
    let sdp = dir.path().join("cam-speaker-0.sdp");
    assert!(wait_for_file(&sdp, Duration::from_secs(20)));
    let rx = RtpReceiver::from_sdp(&sdp);
    let received = || rx.samples.lock().unwrap().len();

    assert!(
        wait_ready(api, 200, Duration::from_secs(30)).is_some(),
        "never ready"
    );
    let events = sse_kinds(api);
    std::thread::sleep(Duration::from_millis(300)); // the SSE client is connected
    for cycle in 1..=3 {
        // Let it run, then take the camera away.
        std::thread::sleep(Duration::from_millis(1500));
        let before = received();
        drop(server.take());
        let down = wait_ready(api, 503, Duration::from_secs(15));
        assert!(
            down.is_some(),
            "cycle {cycle}: /readyz stayed 200 with the camera gone"
        );
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "cycle {cycle}: the daemon exited"
        );
        std::thread::sleep(Duration::from_millis(1000));
        // Bring it back on the same port.
        server = Some(RtspFileServer::start(&clip, "cam", ServedAudio::L16, rtsp_port).unwrap());
        let up = wait_ready(api, 200, Duration::from_secs(20));
        eprintln!("cycle {cycle}: down after {down:?}, ready again after {up:?}");
        let up = up.unwrap_or_else(|| panic!("cycle {cycle}: not ready again within 20 s"));
        assert!(
            up <= Duration::from_secs(5),
            "cycle {cycle}: ready again only after {up:?}"
        );
        // RTP output resumes.
        let t = Instant::now();
        while received() < before + 16_000 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            received() >= before + 16_000,
            "cycle {cycle}: RTP audio did not resume ({} -> {})",
            before,
            received()
        );
    }
    let (_, metrics) = http_get(api, "/metrics").unwrap();
    let recoveries = metric(&metrics, "avsepd_recoveries_total{stream=\"cam\"}");
    let reconnects = metric(&metrics, "avsepd_reconnects_total{stream=\"cam\"}");
    eprintln!("reconnect attempts {reconnects}, recoveries {recoveries}");
    assert_eq!(recoveries, 3.0, "{metrics}");
    // An SSE client saw the stream go down and come back each time.
    let kinds = events.lock().unwrap().clone();
    eprintln!("events: {kinds:?}");
    let n = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(n("up"), 3, "{kinds:?}");
    assert_eq!(n("down"), 3, "{kinds:?}");
    assert!(n("retrying") >= 3, "{kinds:?}");
    assert!(reconnects >= 3.0, "{metrics}");
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");

    // A clean stop.
    let (status, _, _) = sigterm_and_wait(&mut daemon, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200)); // the drain thread reads the last lines
    let stderr = log.lock().unwrap().clone();
    assert!(status.success(), "{status}\n{stderr}");
}

/// The camera comes back with another format (1280x720 H.264 + AAC 48 kHz instead of 640x360 +
/// L16 16 kHz): the new session is decoded and converted to the stream's fixed formats, audio
/// and overlay resume, and the counters keep counting.
#[test]
fn camera_returns_with_another_format() {
    let Some(other) = shared_data("video/restaurant_1spk_noisy.mp4") else {
        return;
    };
    init();
    let clip = repo().join("demo/demo.mp4");
    let rtsp_port = free_tcp_addr().port();
    let api = free_tcp_addr();
    let server = RtspFileServer::start(&clip, "cam", ServedAudio::L16, rtsp_port).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = free_udp_ports(102);
    let config = dir.path().join("avsepd.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"{api}\"\n\n[egress]\nsdp_dir = \"{sdp}\"\naudio_codec = \"l16\"\n\n\
             [vision]\nenabled = false\n\n\
             [reconnect]\nstall_timeout_ms = 1500\ninitial_backoff_ms = 200\nmax_backoff_ms = 800\n\n\
             [streams.cam]\nurl = \"{url}\"\ntransport = \"tcp\"\nbase_port = {base}\n",
            sdp = dir.path().display(),
            url = server.url(),
        ),
    )
    .unwrap();
    let (mut daemon, log) = spawn_daemon(&config);
    let sdp = dir.path().join("cam-speaker-0.sdp");
    assert!(wait_for_file(&sdp, Duration::from_secs(20)));
    let rx = RtpReceiver::from_sdp(&sdp);
    assert!(
        wait_ready(api, 200, Duration::from_secs(30)).is_some(),
        "never ready"
    );
    std::thread::sleep(Duration::from_secs(2));
    let counters = || {
        let m = http_get(api, "/metrics").map(|r| r.1).unwrap_or_default();
        (
            metric(&m, "avsepd_audio_in_samples_total{stream=\"cam\"}"),
            metric(&m, "avsepd_video_in_frames_total{stream=\"cam\"}"),
        )
    };
    let (audio_before, video_before) = counters();
    let received_before = rx.samples.lock().unwrap().len();

    drop(server);
    assert!(
        wait_ready(api, 503, Duration::from_secs(15)).is_some(),
        "camera loss not noticed"
    );
    let _server = RtspFileServer::start(&other, "cam", ServedAudio::Aac, rtsp_port).unwrap();
    let up = wait_ready(api, 200, Duration::from_secs(20));
    assert!(
        up.is_some_and(|t| t <= Duration::from_secs(5)),
        "not ready again: {up:?}\n{}",
        log.lock().unwrap()
    );
    std::thread::sleep(Duration::from_secs(3));
    let (audio_after, video_after) = counters();
    let received_after = rx.samples.lock().unwrap().len();
    eprintln!(
        "audio {audio_before} -> {audio_after} samples, video {video_before} -> {video_after} frames, RTP {received_before} -> {received_after}"
    );
    // About 3 s of the new source: at least 2 s of audio and 50 frames arrived and went out.
    assert!(
        audio_after - audio_before >= 32_000.0,
        "audio did not resume"
    );
    assert!(video_after - video_before >= 50.0, "video did not resume");
    assert!(
        received_after >= received_before + 32_000,
        "RTP audio did not resume"
    );
    let (status, _, _) = sigterm_and_wait(&mut daemon, Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", log.lock().unwrap());
}

/// Write a clip with GStreamer: `video_frames` of 160x120 H.264 at 25 fps and `audio_ms` of a
/// 440 Hz Opus tone at 16 kHz, in Matroska (the audio may stop long before the video).
fn write_clip(path: &std::path::Path, video_frames: u32, audio_ms: u32) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    let desc = format!(
        "videotestsrc num-buffers={video_frames} ! video/x-raw,width=160,height=120,framerate=25/1 \
         ! videoconvert ! x264enc tune=zerolatency ! h264parse ! mux. \
         audiotestsrc wave=sine freq=440 samplesperbuffer=320 num-buffers={} \
         ! audio/x-raw,rate=16000,channels=1 ! audioconvert ! opusenc ! mux. \
         matroskamux name=mux ! filesink location={}",
        audio_ms / 20,
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).expect("clip pipeline");
    pipeline.set_state(gst::State::Playing).expect("play");
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the clip is written within 60 s");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The daemon on one source (stream "clip": L16 out, no overlay, no vision), with its /metrics
/// and its log; `stop` ends it with SIGTERM.
struct ClipDaemon {
    api: SocketAddr,
    daemon: Daemon,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl ClipDaemon {
    /// `reconnect`: the lines of the [reconnect] table; `stream`: more lines of the stream's.
    fn start(dir: tempfile::TempDir, url: &str, reconnect: &str, stream: &str) -> ClipDaemon {
        let api = free_tcp_addr();
        let base = free_udp_ports(102);
        let config = dir.path().join("avsepd.toml");
        std::fs::write(
            &config,
            format!(
                "[daemon]\nlisten = \"{api}\"\n\n[egress]\nsdp_dir = \"{sdp}\"\naudio_codec = \"l16\"\noverlay = false\n\n\
                 [vision]\nenabled = false\n\n[reconnect]\n{reconnect}\n\n\
                 [streams.clip]\nurl = \"{url}\"\nbase_port = {base}\n{stream}",
                sdp = dir.path().display(),
            ),
        )
        .unwrap();
        let (daemon, log) = spawn_daemon(&config);
        ClipDaemon {
            api,
            daemon,
            log,
            _dir: dir,
        }
    }

    /// The daemon on a clip made by [`write_clip`].
    fn on_clip(video_frames: u32, audio_ms: u32, reconnect: &str) -> ClipDaemon {
        init();
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mkv");
        write_clip(&clip, video_frames, audio_ms);
        let url = clip.display().to_string();
        ClipDaemon::start(dir, &url, reconnect, "")
    }

    /// One series of the stream from /metrics (NaN while the API does not answer).
    fn metric(&self, series: &str) -> f64 {
        let m = http_get(self.api, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default();
        metric(&m, &format!("{series}{{stream=\"clip\"}}"))
    }

    fn logged(&self, what: &str) -> bool {
        self.log.lock().unwrap().contains(what)
    }

    /// SIGTERM; the exit status and the whole log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let (status, _, _) = sigterm_and_wait(&mut self.daemon, Duration::from_secs(10));
        (status, self.log.lock().unwrap().clone())
    }
}

/// A source that comes back within a second (a 2 s file that ends and is restarted after 300 ms):
/// the time it was away is not filled with silence made after the fact (it would reach a live
/// receiver a whole gap late and burst through the outputs' 1 s queues), the timeline is
/// re-anchored instead, and every session's audio still goes out.
#[test]
fn short_outages_are_not_back_filled() {
    let d = ClipDaemon::on_clip(
        50,
        2000,
        "initial_backoff_ms = 300\nmax_backoff_ms = 300\njitter_percent = 0",
    );
    // Three returns of the source (each session 2 s, then 300 ms away).
    let back = wait_until(Duration::from_secs(90), || {
        d.metric("avsepd_recoveries_total") >= 3.0
    });
    let (gap, audio_in, audio_out) = (
        d.metric("avsepd_audio_gap_samples_total"),
        d.metric("avsepd_audio_in_samples_total"),
        d.metric("avsepd_audio_out_samples_total"),
    );
    eprintln!("gap {gap} samples, in {audio_in}, out {audio_out}");
    let (status, stderr) = d.stop();
    assert!(back, "the source did not come back 3 times\n{stderr}");
    assert!(status.success(), "{status}\n{stderr}");
    // Three whole sessions of 2 s went in and out (nominally 96 000 samples; a little margin for
    // the codec's trimming and a busy machine).
    assert!(audio_in >= 3.0 * 30_000.0, "{audio_in} samples in");
    assert!(
        audio_out >= audio_in - 16_000.0,
        "{audio_out} out of {audio_in}"
    );
    // Each outage lasted >= 300 ms (4800 samples): filling them would insert >= 14 400 samples.
    assert!(gap < 1_600.0, "{gap} samples of silence were inserted");
}

/// A camera whose audio stops while its video goes on (its audio encoder died: no end of stream,
/// the packets just stop) is restarted after the stall timeout, with an error that says which
/// track is missing, instead of running on with silent speaker outputs. While the audio stays
/// dead, each new session is restarted too and the backoff grows (its video alone does not make
/// it healthy); once the camera is repaired, the audio comes back.
#[test]
fn a_camera_whose_audio_dies_is_restarted() {
    let camera = LiveRtspCamera::start();
    let d = ClipDaemon::start(
        tempfile::tempdir().unwrap(),
        &camera.url,
        "stall_timeout_ms = 1500\ninitial_backoff_ms = 300\nmax_backoff_ms = 2000\njitter_percent = 0",
        "transport = \"tcp\"\n",
    );
    let audio_in = || d.metric("avsepd_audio_in_samples_total");
    let flowing = wait_until(Duration::from_secs(30), || audio_in() >= 16_000.0);
    let cut = camera.cut_audio();
    // The first restart, then a second one of a session whose audio never came.
    let restarted = wait_until(Duration::from_secs(30), || d.logged("\"attempt\":2"));
    camera.restore_audio();
    let at_restore = audio_in();
    let resumed = wait_until(Duration::from_secs(30), || {
        audio_in() >= at_restore + 16_000.0
    });
    eprintln!(
        "audio cut in {cut} media; {at_restore} samples when restored, now {}",
        audio_in()
    );
    let (status, stderr) = d.stop();
    for line in stderr
        .lines()
        .filter(|l| l.contains("reconnecting") || l.contains("flows"))
    {
        eprintln!("{line}");
    }
    assert!(flowing, "no audio from the camera\n{stderr}");
    assert!(cut >= 1, "no media to cut");
    assert!(
        restarted,
        "no second restart (with a grown backoff) while the audio stayed dead\n{stderr}"
    );
    assert!(
        stderr
            .matches("no audio for 1.5 s while its video flows")
            .count()
            >= 2,
        "{stderr}"
    );
    assert!(resumed, "audio did not come back\n{stderr}");
    assert!(status.success(), "{status}\n{stderr}");
}

/// A file whose audio ends long before its video (2 s of 10) is not a dead camera: it plays to
/// its end, and only then starts again.
#[test]
fn a_file_with_a_short_audio_track_plays_to_its_end() {
    let d = ClipDaemon::on_clip(
        250,
        2000,
        "stall_timeout_ms = 1500\ninitial_backoff_ms = 300\nmax_backoff_ms = 300\njitter_percent = 0",
    );
    let started = Instant::now();
    let restarted = wait_until(Duration::from_secs(40), || {
        d.metric("avsepd_recoveries_total") >= 1.0
    });
    let after = started.elapsed();
    let frames = d.metric("avsepd_video_in_frames_total");
    let (status, stderr) = d.stop();
    eprintln!("restarted after {after:?}, {frames} frames");
    assert!(restarted, "never restarted\n{stderr}");
    assert!(!stderr.contains("while its video flows"), "{stderr}");
    assert!(stderr.contains("source ended"), "{stderr}");
    // The whole video went in before the restart: 250 frames (the second session's first few too).
    assert!(frames >= 240.0, "{frames} frames\n{stderr}");
    assert!(status.success(), "{status}\n{stderr}");
}

/// While a reconnect waits, the end of the last session has gone out: the audio stage does not
/// hold its last ~60 ms (the unfinished chunk and the iSTFT's delay) until the source returns.
#[test]
fn the_end_of_a_session_goes_out_before_the_source_returns() {
    let d = ClipDaemon::on_clip(
        50,
        2000,
        "initial_backoff_ms = 4000\nmax_backoff_ms = 4000\njitter_percent = 0",
    );
    let ended = wait_until(Duration::from_secs(30), || {
        d.metric("avsepd_reconnects_total") >= 1.0
    });
    let counts = || {
        (
            d.metric("avsepd_audio_in_samples_total"),
            d.metric("avsepd_audio_out_samples_total"),
        )
    };
    // Within the 4 s wait: every sample taken in has gone out.
    let flushed = wait_until(Duration::from_secs(3), || {
        let (i, o) = counts();
        o >= i
    });
    let (audio_in, audio_out) = counts();
    let reconnects = d.metric("avsepd_reconnects_total");
    eprintln!("in {audio_in}, out {audio_out} while waiting to reconnect");
    let (status, stderr) = d.stop();
    assert!(ended, "the clip never ended\n{stderr}");
    assert!(audio_in >= 30_000.0, "{audio_in} samples in\n{stderr}");
    assert_eq!(reconnects, 1.0, "the source came back before the check");
    assert!(
        flushed,
        "{} samples still held while the source was away",
        audio_in - audio_out
    );
    assert!(status.success(), "{status}\n{stderr}");
}

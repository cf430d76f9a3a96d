//! Helpers shared by the integration tests: real GStreamer decoders and RTP receivers.
#![allow(dead_code)]

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn avsepd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_avsepd"))
}

/// `../shared/data/<rel>`, or None with a message (a user's clone has no shared data).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = repo().join("../shared/data").join(rel);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} is absent (shared evaluation data not available)",
            p.display()
        );
        None
    }
}

pub fn init() {
    avsepd::media::init().expect("GStreamer");
}

/// Pull every F32 sample / every frame out of an appsink until EOS or `deadline`.
fn drain_appsink(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    deadline: Duration,
) -> (Vec<f32>, usize) {
    pipeline.set_state(gst::State::Playing).expect("play");
    let mut samples = Vec::new();
    let mut frames = 0;
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            Some(s) => {
                frames += 1;
                if let Some(b) = s.buffer() {
                    let map = b.map_readable().expect("map");
                    if s.caps()
                        .and_then(|c| c.structure(0).map(|st| st.name().starts_with("audio")))
                        == Some(true)
                    {
                        samples.extend(
                            map.as_slice()
                                .chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        );
                    }
                }
            }
            None if sink.is_eos() => break,
            None => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("stop");
    (samples, frames)
}

/// Link decodebin's pads of one kind (`audio/`, `video/`) to `target` as they appear.
fn link_decoded(dec: &gst::Element, kind: &'static str, target: &gst::Element) {
    let target = target.downgrade();
    dec.connect_pad_added(move |_, pad| {
        let matches = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with(kind)))
            == Some(true);
        if let (true, Some(t)) = (matches, target.upgrade()) {
            let _ = pad.link(&t.static_pad("sink").unwrap());
        }
    });
}

/// A file's audio as GStreamer decodes it to 16 kHz mono (audioconvert ! audioresample).
pub fn decode_audio_16k(path: &Path) -> Vec<f32> {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let dec = gst::ElementFactory::make("decodebin").build().unwrap();
    let conv = gst::ElementFactory::make("audioconvert").build().unwrap();
    let res = gst::ElementFactory::make("audioresample").build().unwrap();
    let sink = gst_app::AppSink::builder()
        .caps(&avsepd::media::egress::audio_caps())
        .sync(false)
        .build();
    pipeline
        .add_many([&src, &dec, &conv, &res, sink.upcast_ref()])
        .unwrap();
    src.link(&dec).unwrap();
    gst::Element::link_many([&conv, &res, sink.upcast_ref()]).unwrap();
    link_decoded(&dec, "audio/", &conv);
    drain_appsink(&pipeline, &sink, Duration::from_secs(60)).0
}

/// Decode a video file and count its frames.
pub fn count_video_frames(path: &Path) -> usize {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let dec = gst::ElementFactory::make("decodebin").build().unwrap();
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline.add_many([&src, &dec, sink.upcast_ref()]).unwrap();
    src.link(&dec).unwrap();
    link_decoded(&dec, "video/", sink.upcast_ref());
    drain_appsink(&pipeline, &sink, Duration::from_secs(60)).1
}

pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let s = r
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    (spec, s)
}

/// An RTP receiver built from an SDP file: udpsrc with the SDP's caps ! rtpjitterbuffer !
/// decodebin, collecting audio (16 kHz mono f32) or counting video frames.
pub struct RtpReceiver {
    pipeline: gst::Pipeline,
    pub samples: Arc<Mutex<Vec<f32>>>,
    pub frames: Arc<Mutex<usize>>,
}

impl RtpReceiver {
    pub fn from_sdp(path: &Path) -> RtpReceiver {
        init();
        let text = std::fs::read(path).unwrap();
        let msg = gstreamer_sdp::SDPMessage::parse_buffer(&text).expect("valid SDP");
        let media = msg.media(0).expect("SDP has a media section");
        let port = media.port();
        let pt: i32 = media.format(0).unwrap().parse().unwrap();
        let mut caps = media.caps_from_media(pt).expect("caps from SDP");
        {
            let c = caps.make_mut();
            let s = c.structure_mut(0).unwrap();
            s.set_name("application/x-rtp");
        }
        media
            .attributes_to_caps(caps.make_mut())
            .expect("SDP attributes");
        let is_audio = media.media() == Some("audio");
        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("udpsrc")
            .property("port", port as i32)
            .property("address", "127.0.0.1")
            .property("caps", &caps)
            .property("buffer-size", 4 * 1024 * 1024i32)
            .build()
            .unwrap();
        let jb = gst::ElementFactory::make("rtpjitterbuffer")
            .property("latency", 200u32)
            .build()
            .unwrap();
        let dec = gst::ElementFactory::make("decodebin").build().unwrap();
        pipeline.add_many([&src, &jb, &dec]).unwrap();
        gst::Element::link_many([&src, &jb, &dec]).unwrap();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let frames = Arc::new(Mutex::new(0usize));
        let tail: Vec<gst::Element> = if is_audio {
            vec![
                gst::ElementFactory::make("audioconvert").build().unwrap(),
                gst::ElementFactory::make("audioresample").build().unwrap(),
            ]
        } else {
            vec![gst::ElementFactory::make("videoconvert").build().unwrap()]
        };
        let sink = gst_app::AppSink::builder().sync(false).build();
        if is_audio {
            sink.set_caps(Some(&avsepd::media::egress::audio_caps()));
        }
        pipeline.add_many(tail.iter()).unwrap();
        pipeline.add(&sink).unwrap();
        let mut chain: Vec<&gst::Element> = tail.iter().collect();
        chain.push(sink.upcast_ref());
        gst::Element::link_many(chain).unwrap();
        let (s2, f2) = (samples.clone(), frames.clone());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    *f2.lock().unwrap() += 1;
                    if is_audio && let Some(b) = sample.buffer() {
                        let map = b.map_readable().map_err(|_| gst::FlowError::Error)?;
                        s2.lock().unwrap().extend(
                            map.as_slice()
                                .chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        );
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let first = tail[0].clone();
        dec.connect_pad_added(move |_, pad| {
            let _ = pad.link(&first.static_pad("sink").unwrap());
        });
        pipeline
            .set_state(gst::State::Playing)
            .expect("receiver plays");
        RtpReceiver {
            pipeline,
            samples,
            frames,
        }
    }

    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for RtpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback address with a port that was free a moment ago (for the control API, a server).
pub fn free_tcp_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Poll `done` every 5 ms until it holds or `limit` has passed; whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Wait until `path` exists (bounded).
pub fn wait_for_file(path: &Path, limit: Duration) -> bool {
    wait_until(limit, || path.is_file())
}

/// A base port with `span` free UDP ports above it, different for each caller.
pub fn free_udp_ports(span: u16) -> u16 {
    use std::net::UdpSocket;
    // Different for each test binary (pid) and for each call within one (tests run in parallel
    // threads): udpsrc binds with SO_REUSEADDR, so two tests on one port would steal packets.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = 20000 + (std::process::id() % 40) as u16 * 1000 + call * 420;
    let mut base = start;
    loop {
        let ok = (0..span).all(|i| UdpSocket::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
        base = base.wrapping_add(span + 2).max(20000);
    }
}

/// A GET on the daemon's control API: (status code, whole response), or None while it is not
/// listening.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, out))
}

/// The value of one Prometheus sample line (NaN when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Send SIGTERM and wait (bounded) for the exit: the status, the time it took, and stderr.
pub fn sigterm_and_wait(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, Duration, String) {
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > limit {
            let _ = child.kill();
            panic!("no exit {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    let stderr = child
        .stderr
        .take()
        .map(|e| std::io::read_to_string(e).unwrap_or_default())
        .unwrap_or_default();
    (status, took, stderr)
}

/// Collect a child's stderr on a thread (so a chatty child can never block on a full pipe).
pub fn drain_stderr(child: &mut std::process::Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(mut err) = child.stderr.take() {
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    log
}

/// Follow the control API's server-sent events on a thread; the `event:` kinds in arrival order.
pub fn sse_kinds(addr: std::net::SocketAddr) -> Arc<Mutex<Vec<String>>> {
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let sink = kinds.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            return;
        };
        if write!(s, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n").is_err() {
            return;
        }
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            if let Some(kind) = line.strip_prefix("event: ") {
                sink.lock().unwrap().push(kind.trim().to_string());
            }
        }
    });
    kinds
}

/// A daemon started by a test; killed when the test ends, passed or failed, so a failing test
/// never leaves a daemon running behind it.
pub struct Daemon(pub std::process::Child);

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `avsepd --log-format json run --config CONFIG` as a child, its stderr collected on a thread.
pub fn spawn_daemon(config: &Path) -> (Daemon, Arc<Mutex<String>>) {
    let mut child = std::process::Command::new(avsepd())
        .args(["--log-format", "json", "run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("avsepd starts");
    let log = drain_stderr(&mut child);
    (Daemon(child), log)
}

/// A live RTSP camera made of test sources (a moving pattern in H.264, a 440 Hz tone in L16 at
/// 16 kHz), served at `rtsp://127.0.0.1:<port>/live`. Its audio can be cut while its video goes
/// on, without an end of stream: a camera whose audio encoder died. Each client gets its own
/// media, so a client that reconnects hears the tone again.
pub struct LiveRtspCamera {
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    valves: Arc<Mutex<Vec<gst::glib::WeakRef<gst::Element>>>>,
    /// Media made while this is set start with their audio cut.
    cut: Arc<std::sync::atomic::AtomicBool>,
    pub url: String,
}

impl LiveRtspCamera {
    pub fn start() -> LiveRtspCamera {
        use gstreamer_rtsp_server as rtsp;
        use gstreamer_rtsp_server::prelude::*;
        init();
        let context = gst::glib::MainContext::new();
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(
            "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 config-interval=-1 \
             audiotestsrc is-live=true wave=sine freq=440 samplesperbuffer=320 \
             ! audio/x-raw,rate=16000,channels=1 ! valve name=mute drop-mode=transform-to-gap ! audioconvert \
             ! audio/x-raw,format=S16BE,rate=16000,channels=1 ! rtpL16pay name=pay1 pt=97 )",
        );
        factory.set_shared(false);
        let valves: Arc<Mutex<Vec<gst::glib::WeakRef<gst::Element>>>> = Arc::default();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, cut_new) = (valves.clone(), cut.clone());
        factory.connect_media_configure(move |_, media| {
            if let Some(bin) = media.element().downcast_ref::<gst::Bin>()
                && let Some(valve) = bin.by_name("mute")
            {
                valve.set_property("drop", cut_new.load(std::sync::atomic::Ordering::SeqCst));
                seen.lock().unwrap().push(valve.downgrade());
            }
        });
        server.mount_points().unwrap().add_factory("/live", factory);
        let source = server.attach(Some(&context)).expect("RTSP server listens");
        let port = server.bound_port();
        assert!(port > 0, "RTSP server bound no port");
        let main_loop = gst::glib::MainLoop::new(Some(&context), false);
        let thread = {
            let main_loop = main_loop.clone();
            std::thread::spawn(move || {
                let _ = context.with_thread_default(|| main_loop.run());
                if let Some(s) = context.find_source_by_id(&source) {
                    s.destroy();
                }
                drop(server);
            })
        };
        LiveRtspCamera {
            main_loop,
            thread: Some(thread),
            valves,
            cut,
            url: format!("rtsp://127.0.0.1:{port}/live"),
        }
    }

    /// Cut the audio of every media served so far and of those made from now on (the video goes
    /// on): the camera's audio stays dead across reconnects. Returns how many were cut now.
    pub fn cut_audio(&self) -> usize {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let valves = self.valves.lock().unwrap();
        valves
            .iter()
            .filter_map(|v| v.upgrade())
            .map(|v| v.set_property("drop", true))
            .count()
    }

    /// Media made from now on have their audio again (a repaired camera).
    pub fn restore_audio(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for LiveRtspCamera {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            // A quit before the thread entered `run` would be undone by it: repeat until it ends
            // (10 s at most: a stuck server thread is left behind, not waited for).
            let since = Instant::now();
            while !t.is_finished() && since.elapsed() < Duration::from_secs(10) {
                self.main_loop.quit();
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

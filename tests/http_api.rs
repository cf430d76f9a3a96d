//! The control API over real sockets: streams built in-process (one never run, so it stays
//! buffering; one run on the bundled clip), `serve` on an ephemeral loopback port, and a raw
//! `std::net::TcpStream` client. Every wait is bounded.

mod common;

use avsepd::control::http::{ApiOptions, LATENCY_BUCKETS, StreamRegistry, serve};
use avsepd::media::egress::RtpAudioCodec;
use avsepd::media::ingest::IngestOptions;
use avsepd::stream::{RtpOutputs, Stream, StreamSpec};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(20);

fn spec(name: &str, uri: &str, base_port: u16, overlay: bool) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        ingest: IngestOptions::new(uri),
        rtp: Some(RtpOutputs {
            host: "127.0.0.1".into(),
            base_port,
            overlay_port: base_port + 100,
            codec: RtpAudioCodec::L16,
            opus_bitrate: 32_000,
            mtu: 1200,
            overlay,
            overlay_bitrate_kbps: 800,
            sdp_dir: std::env::temp_dir(),
        }),
        record_dir: None,
        stall_timeout: Duration::from_secs(10),
        max_duration: None,
        vision: None,
        reconnect: None,
        separation: Default::default(),
    }
}

/// A stream that is never run: its status stays `buffering`. Its source carries credentials,
/// which the API must never show.
fn idle(name: &str) -> Arc<Stream> {
    Arc::new(Stream::new(spec(
        name,
        "rtsp://operator:hunter2@192.0.2.10:554/cam",
        5000,
        true,
    )))
}

fn local() -> ApiOptions {
    ApiOptions::new("127.0.0.1:0".parse().unwrap())
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

fn request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn get_with(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}\r\n").as_bytes(),
    )
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, None)
}

fn json(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

// ---- Prometheus text ------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Family {
    help: bool,
    kind: String,
    /// (sample name, labels, value)
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label `key=\"`");
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {key:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("unterminated label value") {
                (_, '\\') => match chars.next().expect("dangling escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().unwrap_or_else(|_| panic!("not a float: {v:?}")),
    }
}

/// Parse exposition text, checking that every sample belongs to a family declared with HELP and
/// TYPE, and that every histogram's buckets are cumulative and end with `+Inf` == `_count`.
fn parse_prometheus(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("HELP text");
            families.entry(name.into()).or_default().help = true;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            families.entry(name.into()).or_default().kind = kind.into();
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (
                    name,
                    parse_labels(labels.strip_suffix('}').expect("closing brace")),
                ),
                None => (series, BTreeMap::new()),
            };
            assert!(name.starts_with("avsepd_"), "{line}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    let base = name.strip_suffix(suffix)?;
                    (families.get(base)?.kind == "histogram").then_some(base)
                })
                .unwrap_or(name);
            let f = families
                .get_mut(family)
                .unwrap_or_else(|| panic!("sample before HELP/TYPE: {line}"));
            assert!(f.help && !f.kind.is_empty(), "{family} lacks HELP or TYPE");
            f.samples
                .push((name.to_owned(), labels, parse_value(value)));
        }
    }
    for (name, f) in &families {
        assert!(f.help && !f.kind.is_empty(), "{name} lacks HELP or TYPE");
        if f.kind == "histogram" {
            check_histogram(name, f);
        }
    }
    families
}

/// One histogram series: buckets (le, cumulative count), sum, count.
type Series = (Vec<(f64, f64)>, Option<f64>, Option<f64>);

fn check_histogram(name: &str, f: &Family) {
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    for (sample, labels, value) in &f.samples {
        let mut key = labels.clone();
        let le = key.remove("le");
        let entry = series.entry(format!("{key:?}")).or_default();
        match sample.strip_prefix(name).unwrap() {
            "_bucket" => entry
                .0
                .push((parse_value(&le.expect("bucket without le")), *value)),
            "_sum" => entry.1 = Some(*value),
            "_count" => entry.2 = Some(*value),
            other => panic!("{name}: unexpected sample suffix {other}"),
        }
    }
    for (labels, (buckets, sum, count)) in series {
        assert!(sum.is_some(), "{name}{labels}: no _sum");
        let count = count.unwrap_or_else(|| panic!("{name}{labels}: no _count"));
        assert!(
            buckets.windows(2).all(|w| w[0].0 < w[1].0),
            "{name}: le order"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{name}: not cumulative"
        );
        let last = buckets.last().expect("buckets");
        assert!(
            last.0.is_infinite(),
            "{name}{labels}: last bucket is not +Inf"
        );
        assert_eq!(last.1, count, "{name}{labels}: +Inf bucket != count");
    }
}

/// The value of `name` with exactly these labels.
fn sample(families: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    families
        .values()
        .flat_map(|f| &f.samples)
        .find(|(n, l, _)| n == name && *l == want)
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
        .2
}

// ---- server-sent events ---------------------------------------------------------------------

struct Sse {
    socket: TcpStream,
    pending: String,
}

#[derive(Debug)]
struct Event {
    kind: String,
    data: Value,
}

impl Sse {
    fn connect(addr: SocketAddr, token: Option<&str>) -> Sse {
        let mut socket = TcpStream::connect(addr).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(socket, "GET /api/events HTTP/1.1\r\nHost: t\r\n{auth}\r\n").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut sse = Sse {
            socket,
            pending: String::new(),
        };
        let deadline = Instant::now() + IO_TIMEOUT;
        while !sse.pending.contains("\r\n\r\n") {
            assert!(sse.fill(deadline), "no response head: {:?}", sse.pending);
        }
        let (head, rest) = sse.pending.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: text/event-stream"), "{head}");
        sse.pending = rest.to_owned();
        sse
    }

    /// Read more; false at the deadline or when the server closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.socket.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending
                        .push_str(std::str::from_utf8(&buf[..n]).unwrap());
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
        false
    }

    /// The next complete frame's text (events and comments alike).
    fn next_frame(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Some(i) = self.pending.find("\n\n") {
                let frame = self.pending[..i].to_owned();
                self.pending.drain(..i + 2);
                return Some(frame);
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// Wait for the first event that satisfies `want`; the others are skipped.
    fn wait_for(&mut self, within: Duration, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some(frame) = self.next_frame(deadline) {
            let mut kind = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = Some(k.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).expect("event data is JSON"));
                }
            }
            if let (Some(kind), Some(data)) = (kind, data) {
                let event = Event { kind, data };
                if want(&event) {
                    return event;
                }
                seen.push(event);
            } else {
                seen.push(Event {
                    kind: frame,
                    data: Value::Null,
                });
            }
        }
        panic!("event not received within {within:?}; got {seen:?}");
    }
}

fn is(kind: &'static str, stream: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.kind == kind && e.data["stream"] == stream
}

// ---- tests ----------------------------------------------------------------------------------

/// A stream run on the clip: readiness follows it, SSE reports `up` and `stopped`, the metrics
/// parse and agree with the stream's report.
#[test]
fn readiness_events_and_metrics_follow_a_running_stream() {
    common::init();
    let clip = common::repo().join("demo/demo.mp4");
    let uri = avsepd::media::uri::to_uri(clip.to_str().unwrap()).unwrap();
    let base = common::free_udp_ports(4);
    // Something listens where the audio goes (it is never read; the kernel drops the excess).
    let _sink = std::net::UdpSocket::bind(("127.0.0.1", base)).unwrap();
    let mut live_spec = spec("live", &uri, base, false);
    live_spec.ingest.pace_to_clock = true; // the file plays as a camera would, in real time
    // No duration limit: the 10 s clip runs until the test stops it.
    let live = Arc::new(Stream::new(live_spec));
    let both = serve(local(), vec![live.clone(), idle("idle")]).unwrap();
    let only_live = serve(local(), vec![live.clone()]).unwrap();

    let r = get(both, "/readyz");
    assert_eq!(r.status, 503, "{}", r.body);
    let not_ready = json(&r)["not_ready"].clone();
    assert_eq!(not_ready.as_array().unwrap().len(), 2, "{not_ready}");
    assert!(
        not_ready
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "buffering"),
        "{not_ready}"
    );

    let mut events = Sse::connect(only_live, None);
    let first = events.wait_for(IO_TIMEOUT, is("status", "live"));
    assert_eq!(first.data["status"]["state"], "buffering");

    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let runner = {
        let (live, stop) = (live.clone(), stop.clone());
        std::thread::spawn(move || {
            let _ = done_tx.send(live.run(&stop).map_err(|e| format!("{e:#}")));
        })
    };
    // Stop the stream whatever happens below, so a failed assertion does not leave it running.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop_guard = StopOnDrop(stop.clone());

    let up = events.wait_for(Duration::from_secs(60), is("up", "live"));
    assert!(up.data["unix_ms"].as_u64().unwrap() > 0);
    // The clip's first voice starts at 0.3 s; without a model slot 0 carries the mixture, so
    // slot 0 speaks (src/stream/speech.rs) and the event says so, with the pts.
    let speech = events.wait_for(Duration::from_secs(30), is("speech_start", "live"));
    let detail = speech.data["detail"].as_str().unwrap();
    assert!(detail.starts_with("slot 0, pts "), "{detail}");
    let pts: u64 = detail.rsplit(' ').next().unwrap().parse().unwrap();
    // The same as fields, for programs.
    assert_eq!(speech.data["slot"], 0, "{}", speech.data);
    assert_eq!(speech.data["pts"], pts, "{}", speech.data);
    assert_eq!(speech.data["track_id"], Value::Null, "{}", speech.data);
    assert!(
        (200_000_000..1_000_000_000).contains(&pts),
        "speech starts at {pts} ns, the voice at 0.3 s"
    );

    // Ready while the stream runs; the server that also shows the idle stream names only it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = get(only_live, "/readyz");
    while ready.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        ready = get(only_live, "/readyz");
    }
    // `up` was announced, and the paced clip lasts 10 s: the stream is running now.
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(json(&ready)["ready"], true);
    let r = get(both, "/readyz");
    assert_eq!(r.status, 503);
    let not_ready = json(&r)["not_ready"].clone();
    assert_eq!(not_ready.as_array().unwrap().len(), 1, "{not_ready}");
    assert_eq!(not_ready[0]["name"], "idle");
    assert_eq!(not_ready[0]["state"], "buffering");
    assert_eq!(not_ready[0]["last_error"], Value::Null);

    // Metrics while running; wait (bounded) for a second of audio before stopping.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = parse_prometheus(&get(only_live, "/metrics").body);
        let labels = [("stream", "live"), ("state", "running")];
        assert_eq!(sample(&m, "avsepd_stream_state", &labels), 1.0);
        assert_eq!(sample(&m, "avsepd_stream_up", &[("stream", "live")]), 1.0);
        let samples = sample(&m, "avsepd_audio_in_samples_total", &[("stream", "live")]);
        if samples > 16_000.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {samples} samples after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = get(only_live, "/api/streams/live");
    assert_eq!(json(&r)["status"]["state"], "running");
    assert_eq!(json(&r)["up"], true);
    stop.store(true, Ordering::SeqCst);

    let stopped = events.wait_for(Duration::from_secs(90), is("stopped", "live"));
    assert_eq!(stopped.data["stream"], "live");
    let report = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the stream's run returns after it stopped")
        .expect("the stream runs without error");
    runner.join().unwrap();
    assert!(report.audio_in_samples > 16_000, "{report:?}");

    let r = get(only_live, "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(json(&r)["not_ready"][0]["name"], "live");
    assert_eq!(json(&r)["not_ready"][0]["state"], "stopped");

    let r = get(only_live, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.head.contains("Content-Type: text/plain; version=0.0.4"),
        "{}",
        r.head
    );
    let m = parse_prometheus(&r.body);
    let live_label = [("stream", "live")];
    for (state, on) in [("running", 0.0), ("stopped", 1.0), ("buffering", 0.0)] {
        assert_eq!(
            sample(
                &m,
                "avsepd_stream_state",
                &[("stream", "live"), ("state", state)]
            ),
            on,
            "{state}"
        );
    }
    assert_eq!(sample(&m, "avsepd_stream_up", &live_label), 0.0);
    assert_eq!(sample(&m, "avsepd_reconnects_total", &live_label), 0.0);
    let segments = sample(&m, "avsepd_speech_segments_total", &live_label);
    assert_eq!(segments, report.speech_segments as f64);
    assert!(segments >= 1.0, "{report:?}");
    // Nobody speaks in a stopped stream.
    assert_eq!(sample(&m, "avsepd_speaking_slots", &live_label), 0.0);
    let api = json(&get(only_live, "/api/streams/live"));
    assert_eq!(api["speaking_slots"], serde_json::json!([]), "{api}");
    assert_eq!(api["source_slot"], Value::Null, "{api}");
    assert_eq!(api["speech_segments"], report.speech_segments, "{api}");
    assert_eq!(
        sample(&m, "avsepd_audio_in_samples_total", &live_label),
        report.audio_in_samples as f64
    );
    let count = sample(&m, "avsepd_latency_seconds_count", &live_label);
    assert_eq!(count, report.latency.packets as f64);
    assert!(count > 0.0, "no latency measured: {report:?}");
    let rtf = sample(&m, "avsepd_dsp_real_time_factor", &live_label);
    assert!(
        (rtf - report.real_time_factor()).abs() < 1e-9,
        "{rtf} vs {report:?}"
    );
    assert!(rtf > 0.0, "real-time factor {rtf}");
    assert_eq!(m["avsepd_latency_seconds"].kind, "histogram");
    // Where the models ran: this stream had none (bypass, no faces), so none yet or the CPU
    // (another test of this binary may have built a session in this process).
    let info = &m["avsepd_build_info"].samples;
    assert_eq!(info.len(), 1, "{info:?}");
    let (_, labels, v) = &info[0];
    assert_eq!(*v, 1.0);
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        ["none yet", "cpu"].contains(&labels["execution_provider"].as_str()),
        "{labels:?}"
    );
    assert_eq!(
        m["avsepd_latency_seconds"].samples.len(),
        LATENCY_BUCKETS.len() + 3 // the finite buckets, +Inf, _sum, _count
    );
}

#[test]
fn idle_streams_list_outputs_and_sdp() {
    common::init();
    let addr = serve(local(), vec![idle("door"), idle("yard")]).unwrap();

    let r = get(addr, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert!(r.head.contains("Connection: close"), "{}", r.head);

    let r = get(addr, "/api/streams");
    assert_eq!(r.status, 200);
    assert!(
        !r.body.contains("hunter2"),
        "credentials leaked: {}",
        r.body
    );
    let list = json(&r);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["name"], "door");
    assert_eq!(list[0]["status"]["state"], "buffering");
    assert_eq!(list[0]["source"], "rtsp://***@192.0.2.10:554/cam");

    let r = get(addr, "/api/streams/yard");
    assert_eq!(r.status, 200);
    assert_eq!(json(&r)["name"], "yard");
    assert!(!r.body.contains("hunter2"));

    let r = get(addr, "/api/streams/door/outputs");
    assert_eq!(r.status, 200);
    let outputs = json(&r)["outputs"].clone();
    let outputs = outputs.as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(outputs[0]["kind"], "speaker");
    assert_eq!(outputs[0]["slot"], 0);
    assert_eq!(outputs[0]["host"], "127.0.0.1");
    assert_eq!(outputs[0]["port"], 5000);
    assert_eq!(outputs[0]["codec"], "l16");
    assert_eq!(outputs[0]["sdp"], "/sdp/door-speaker-0.sdp");
    assert_eq!(outputs[1]["kind"], "overlay");
    assert_eq!(outputs[1]["port"], 5100);
    assert_eq!(outputs[1]["codec"], "h264");
    assert_eq!(outputs[1]["sdp"], "/sdp/door-overlay.sdp");

    for (output, port, rtpmap) in [
        (&outputs[0], 5000, "96 L16/16000/1"),
        (&outputs[1], 5100, "96 H264/90000"),
    ] {
        let r = get(addr, output["sdp"].as_str().unwrap());
        assert_eq!(r.status, 200);
        assert!(
            r.head.contains("Content-Type: application/sdp"),
            "{}",
            r.head
        );
        let sdp = gstreamer_sdp::SDPMessage::parse_buffer(r.body.as_bytes()).expect("valid SDP");
        let media = sdp.media(0).expect("one media");
        assert_eq!(media.port(), port);
        assert_eq!(media.attribute_val("rtpmap"), Some(rtpmap));
    }

    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    let m = parse_prometheus(&r.body);
    for family in [
        "avsepd_stream_up",
        "avsepd_reconnects_total",
        "avsepd_stream_state",
        "avsepd_latency_seconds",
        "avsepd_dsp_real_time_factor",
        "avsepd_audio_in_samples_total",
        "avsepd_latency_p99_seconds",
        "avsepd_audio_dropped_buffers_total",
        "avsepd_video_dropped_frames_total",
        "avsepd_audio_out_dropped_buffers_total",
        "avsepd_video_out_dropped_frames_total",
    ] {
        assert!(m.contains_key(family), "no {family} in\n{}", r.body);
    }
    assert_eq!(
        sample(
            &m,
            "avsepd_stream_state",
            &[("stream", "yard"), ("state", "buffering")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "avsepd_latency_seconds_bucket",
            &[("stream", "door"), ("le", "+Inf")]
        ),
        0.0
    );
    assert_eq!(
        sample(&m, "avsepd_dsp_real_time_factor", &[("stream", "door")]),
        0.0
    );

    let r = get(addr, "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(json(&r)["not_ready"].as_array().unwrap().len(), 2);

    for path in [
        "/",
        "/nope",
        "/api/streams/",
        "/api/streams/gate",
        "/api/streams/gate/outputs",
        "/api/streams/door/outputs/0",
        "/sdp/door-speaker-1.sdp",
        "/sdp/gate-overlay.sdp",
        "/sdp/../../etc/passwd",
        "/sdp/%2e%2e%2fetc%2fpasswd",
        "/sdp//etc/passwd",
    ] {
        assert_eq!(get(addr, path).status, 404, "{path}");
    }
    let r = get(addr, "/api/streams/gate");
    assert!(json(&r)["error"].as_str().unwrap().contains("gate"));
}

#[test]
fn a_token_guards_everything_but_healthz() {
    common::init();
    let options = ApiOptions {
        token: Some("s3cret-token".into()),
        ..local()
    };
    let addr = serve(options, vec![idle("door")]).unwrap();
    assert_eq!(get(addr, "/healthz").status, 200);
    for path in [
        "/readyz",
        "/metrics",
        "/api/streams",
        "/api/streams/door",
        "/api/streams/door/outputs",
        "/sdp/door-speaker-0.sdp",
        "/api/events",
        "/nope",
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.head.contains("WWW-Authenticate: Bearer"), "{}", r.head);
        assert!(!r.body.contains("s3cret"));
        assert_eq!(
            get_with(addr, path, Some("s3cret-toke")).status,
            401,
            "{path}"
        );
        assert_eq!(
            get_with(addr, path, Some("s3cret-token2")).status,
            401,
            "{path}"
        );
    }
    assert_eq!(get_with(addr, "/metrics", Some("s3cret-token")).status, 200);
    assert_eq!(
        get_with(addr, "/api/streams/door", Some("s3cret-token")).status,
        200
    );
    assert_eq!(get_with(addr, "/readyz", Some("s3cret-token")).status, 503);
    assert_eq!(get_with(addr, "/nope", Some("s3cret-token")).status, 404);
    let r = request(
        addr,
        b"GET /metrics HTTP/1.1\r\nAuthorization: Basic s3cret-token\r\n\r\n",
    );
    assert_eq!(r.status, 401);
    let mut events = Sse::connect(addr, Some("s3cret-token"));
    events.wait_for(IO_TIMEOUT, is("status", "door"));
}

#[test]
fn bad_requests_are_refused_cleanly() {
    common::init();
    let options = ApiOptions {
        read_timeout: Duration::from_millis(300),
        ..local()
    };
    let addr = serve(options, vec![idle("door")]).unwrap();

    let r = request(
        addr,
        b"POST /api/streams HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert!(r.head.contains("Allow: GET"), "{}", r.head);
    assert_eq!(request(addr, b"HEAD /healthz HTTP/1.1\r\n\r\n").status, 405);
    assert_eq!(request(addr, b"GET /healthz\r\n\r\n").status, 400);
    assert_eq!(request(addr, b"GET healthz HTTP/1.1\r\n\r\n").status, 400);

    // A head over 8 KiB: 431, and the response arrives although the client sent more.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    assert_eq!(request(addr, big.as_bytes()).status, 431);
    // Just under the limit is fine.
    let fits = format!(
        "GET /healthz HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(8 * 1024 - 100)
    );
    assert_eq!(request(addr, fits.as_bytes()).status, 200);

    // A client that never finishes its head gets 408 once the read timeout passes.
    let started = Instant::now();
    let r = request(addr, b"GET /healthz HTTP/1.1\r\nHost: slow");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Many connections at once, all answered.
    let handles: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || get(addr, "/metrics").status))
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
}

#[test]
fn events_follow_the_registry_and_keep_alive() {
    common::init();
    let registry: StreamRegistry = Default::default();
    let options = ApiOptions {
        keepalive: Duration::from_millis(200),
        ..local()
    };
    let addr = serve(options, registry.clone()).unwrap();
    assert_eq!(json(&get(addr, "/api/streams")), serde_json::json!([]));
    assert_eq!(
        get(addr, "/readyz").status,
        200,
        "no streams: nothing is not ready"
    );

    let mut events = Sse::connect(addr, None);
    // Idle: a keep-alive comment arrives.
    let deadline = Instant::now() + IO_TIMEOUT;
    let frame = events.next_frame(deadline).expect("a frame");
    assert!(frame.contains("retry:"), "{frame}");
    let frame = events.next_frame(deadline).expect("a keep-alive");
    assert_eq!(frame, ": keep-alive");

    // A reload adds a stream: the API shows it, and the open event stream reports it.
    let added = idle("gate");
    registry.write().unwrap().push(added.clone());
    assert_eq!(json(&get(addr, "/api/streams"))[0]["name"], "gate");
    assert_eq!(get(addr, "/api/streams/gate/outputs").status, 200);
    let e = events.wait_for(IO_TIMEOUT, is("status", "gate"));
    assert_eq!(e.data["status"]["state"], "buffering");
    registry.write().unwrap().clear();
    assert_eq!(get(addr, "/api/streams/gate").status, 404);
}

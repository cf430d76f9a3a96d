//! A small HTTP control endpoint on tokio: `GET /healthz`, `GET /metrics` (Prometheus text) and
//! `GET /api/streams` (JSON). Loopback by default (`daemon.listen`). It only reads the streams'
//! atomic counters, so it can never stall the media path.

use crate::stream::Stream;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bind `addr` and serve on a background thread. Binding errors are returned (naming the address)
/// so a daemon that cannot be controlled does not start.
pub fn serve(addr: SocketAddr, streams: Vec<Arc<Stream>>) -> Result<SocketAddr> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("control API cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let streams = Arc::new(streams);
    std::thread::Builder::new()
        .name("control-http".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        continue;
                    };
                    let streams = streams.clone();
                    tokio::spawn(async move {
                        let _ = handle(socket, &streams).await;
                    });
                }
            })
        })?;
    tracing::info!(%bound, "control API listening");
    Ok(bound)
}

async fn handle(mut socket: tokio::net::TcpStream, streams: &[Arc<Stream>]) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // Read until the end of the request head (or a full buffer: such requests are refused).
    while len < buf.len() {
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            socket.read(&mut buf[len..]),
        )
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics(streams)),
        ("GET", "/api/streams") => ("200 OK", "application/json", streams_json(streams)),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

/// Prometheus exposition text: one family per counter, labelled by stream.
pub fn metrics(streams: &[Arc<Stream>]) -> String {
    type Getter = fn(&Stream) -> f64;
    let families: [(&str, &str, &str, Getter); 14] = [
        (
            "avsepd_stream_up",
            "gauge",
            "1 while the stream's source is delivering",
            |s| s.counters.up.load(Ordering::Relaxed) as u8 as f64,
        ),
        (
            "avsepd_audio_in_samples_total",
            "counter",
            "audio samples placed on the timeline",
            |s| s.counters.audio_in_samples.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_audio_out_samples_total",
            "counter",
            "audio samples sent per slot 0",
            |s| s.counters.audio_out_samples.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_audio_dropped_buffers_total",
            "counter",
            "audio buffers dropped at ingest (channel full)",
            |s| s.counters.audio_dropped_buffers.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_audio_gap_samples_total",
            "counter",
            "silence inserted for timestamp gaps",
            |s| s.counters.audio_gap_samples.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_video_in_frames_total",
            "counter",
            "video frames decoded",
            |s| s.counters.video_in_frames.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_video_out_frames_total",
            "counter",
            "overlay frames sent",
            |s| s.counters.video_out_frames.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_video_dropped_frames_total",
            "counter",
            "video frames dropped at ingest (channel full)",
            |s| s.counters.video_dropped_frames.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_latency_p99_seconds",
            "gauge",
            "ingest-to-RTP-send latency, 99th percentile",
            |s| s.latency.stats().p99_ms / 1000.0,
        ),
        (
            "avsepd_dsp_busy_seconds_total",
            "counter",
            "time the DSP stage spent working",
            |s| s.counters.dsp_busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
        ),
        (
            "avsepd_faces_observed_total",
            "counter",
            "face observations (one per visible track per frame)",
            |s| s.counters.faces_observed.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_tracks_started_total",
            "counter",
            "face tracks started",
            |s| s.counters.tracks_started.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_face_frames_dropped_total",
            "counter",
            "frames of faces the separation stage could not take in time",
            |s| s.counters.face_frames_dropped.load(Ordering::Relaxed) as f64,
        ),
        (
            "avsepd_vision_busy_seconds_total",
            "counter",
            "time the vision stage spent detecting, tracking and cropping",
            |s| s.counters.vision_busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in streams {
            let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", s.spec.name, get(s));
        }
    }
    out
}

fn streams_json(streams: &[Arc<Stream>]) -> String {
    let list: Vec<_> = streams
        .iter()
        .map(|s| {
            let c = &s.counters;
            serde_json::json!({
                "name": s.spec.name,
                "source": crate::media::uri::redact(&s.spec.ingest.uri),
                "up": c.up.load(Ordering::Relaxed),
                "audio_in_samples": c.audio_in_samples.load(Ordering::Relaxed),
                "audio_out_samples": c.audio_out_samples.load(Ordering::Relaxed),
                "video_in_frames": c.video_in_frames.load(Ordering::Relaxed),
                "video_out_frames": c.video_out_frames.load(Ordering::Relaxed),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

//! Shared by the subcommands: config -> stream specs, running several streams, summaries.

use anyhow::Result;
use avsepd::config::{
    AudioCodec, Config, ReconnectSettings, SeparationConfig, SeparationMode, StreamConfig,
    Transport, VisionSettings,
};
use avsepd::media::egress::RtpAudioCodec;
use avsepd::media::ingest::{Backpressure, IngestOptions, RtspTransport};
use avsepd::stream::{
    ReconnectPolicy, RtpOutputs, SeparationSpec, Stream, StreamReport, StreamSpec,
};
use avsepd::vision::VisionConfig;

/// Wrap specs into shareable streams (the control API reads their counters).
pub fn streams(specs: Vec<StreamSpec>) -> Vec<Arc<Stream>> {
    specs
        .into_iter()
        .map(|s| Arc::new(Stream::new(s)))
        .collect()
}
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Default no-data timeout after which a stream is declared stalled.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `--duration`: a positive, finite number of seconds that fits a `Duration` (clap reports a
/// bad one, naming the flag, instead of a panic deep inside).
pub fn seconds_arg(s: &str) -> std::result::Result<Duration, String> {
    let d: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(d.is_finite() && d > 0.0) {
        return Err(format!("must be a positive number of seconds, got {s}"));
    }
    Duration::try_from_secs_f64(d).map_err(|_| format!("{s} seconds is too long"))
}

/// How long the RTP destination's name may take to resolve (the supervisor thread waits for it,
/// and it must keep sending systemd its watchdog pings).
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// The RTP destination must resolve before streams start (and on a reload that starts any):
/// udpsink drops every packet for a host it cannot resolve without a word, so a typo in the
/// name would send nothing, for good. Once per config, bounded by [`RESOLVE_LIMIT`]; under
/// systemd a failed start is retried (Restart=on-failure), a failed reload changes nothing.
pub fn check_rtp_host(host: &str) -> Result<()> {
    use std::net::ToSocketAddrs;
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = host.to_string();
    std::thread::Builder::new()
        .name("resolve-rtp-host".into())
        .spawn(move || {
            let _ = tx.send(
                (name.as_str(), 0u16)
                    .to_socket_addrs()
                    .map(|mut a| a.next()),
            );
        })?;
    match rx.recv_timeout(RESOLVE_LIMIT) {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => anyhow::bail!("egress.rtp_host: `{host}` resolves to no address"),
        Ok(Err(e)) => anyhow::bail!("egress.rtp_host: `{host}` does not resolve ({e})"),
        Err(_) => anyhow::bail!(
            "egress.rtp_host: `{host}` did not resolve within {} s",
            RESOLVE_LIMIT.as_secs()
        ),
    }
}

/// The spec of a configured stream with live RTP outputs.
pub fn live_spec(cfg: &Config, name: &str, sc: &StreamConfig) -> Result<StreamSpec> {
    let uri = avsepd::media::uri::to_uri(&sc.url)?;
    let live = avsepd::media::uri::is_live(&uri);
    let mut ingest = IngestOptions::new(uri);
    ingest.transport = match sc.transport {
        Transport::Auto => RtspTransport::Auto,
        Transport::Tcp => RtspTransport::Tcp,
        Transport::Udp => RtspTransport::Udp,
    };
    ingest.latency_ms = sc.latency_ms;
    ingest.clock_synced = sc.clock_synced;
    ingest.width = sc.video_width;
    ingest.height = sc.video_height;
    // A file standing in for a camera is played in real time.
    ingest.pace_to_clock = !live;
    ingest.backpressure = Backpressure::DropAndCount;
    let e = &cfg.egress;
    Ok(StreamSpec {
        name: name.to_string(),
        ingest,
        rtp: Some(RtpOutputs {
            host: e.rtp_host.clone(),
            base_port: sc.base_port,
            overlay_port: sc.overlay_port(),
            codec: match e.audio_codec {
                AudioCodec::Opus => RtpAudioCodec::Opus,
                AudioCodec::L16 => RtpAudioCodec::L16,
            },
            opus_bitrate: e.opus_bitrate,
            mtu: e.rtp_mtu,
            overlay: e.overlay,
            overlay_bitrate_kbps: e.overlay_bitrate_kbps,
            sdp_dir: e.sdp_dir.clone(),
        }),
        record_dir: None,
        max_duration: None,
        vision: vision_config(&cfg.vision),
        reconnect: reconnect_policy(&cfg.reconnect),
        stall_timeout: Duration::from_millis(cfg.reconnect.stall_timeout_ms as u64),
        separation: separation_spec(&cfg.separation)?,
    })
}

/// The separation back-end from `[separation]`. A model file that is not there is refused here,
/// before a reload stops anything (the model itself is loaded and checked when the stream starts).
pub fn separation_spec(s: &SeparationConfig) -> Result<SeparationSpec> {
    Ok(match s.mode {
        SeparationMode::Bypass => SeparationSpec::Bypass,
        SeparationMode::Model => {
            let path = s
                .model
                .clone()
                .unwrap_or_else(avsepd::model::face_separator::default_model_path);
            anyhow::ensure!(
                path.is_file(),
                "separation.model: `{}` is not a file",
                path.display()
            );
            SeparationSpec::Model {
                path,
                slots: usize::from(s.max_speakers),
            }
        }
    })
}

/// The reconnect policy from `[reconnect]`; `None` when disabled.
pub fn reconnect_policy(r: &ReconnectSettings) -> Option<ReconnectPolicy> {
    r.enabled.then(|| ReconnectPolicy {
        initial: Duration::from_millis(r.initial_backoff_ms as u64),
        max: Duration::from_millis(r.max_backoff_ms as u64),
        jitter: r.jitter_percent as f64 / 100.0,
    })
}

/// The vision stage's settings from `[vision]`; `None` when disabled.
pub fn vision_config(v: &VisionSettings) -> Option<VisionConfig> {
    if !v.enabled {
        return None;
    }
    let mut c = VisionConfig {
        every: v.detect_every,
        ..VisionConfig::default()
    };
    c.tracker.min_face_px = v.min_face_px as f32;
    Some(c)
}

/// Run streams, each on its own thread, until all have ended or `stop` is set (the daemon's
/// `run` manages its streams with `fleet::Fleet` instead, to reload them one by one).
pub fn run_all(streams: Vec<Arc<Stream>>, stop: Arc<AtomicBool>) -> Vec<Result<StreamReport>> {
    let threads: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let stop = stop.clone();
            let name = stream.spec.name.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{name}-supervisor"))
                .spawn(move || stream.run(&stop));
            (name, handle)
        })
        .collect();
    threads
        .into_iter()
        .map(|(name, h)| match h {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("stream `{name}` panicked"))),
            Err(e) => Err(anyhow::anyhow!("stream `{name}`: cannot start thread: {e}")),
        })
        .collect()
}

/// One summary line per stream, for logs and for tests to read.
pub fn log_report(r: &StreamReport) {
    tracing::info!(
        stream = %r.name,
        audio_in_samples = r.audio_in_samples,
        audio_out_samples = r.audio_out_samples,
        audio_dropped_buffers = r.audio_dropped_buffers,
        video_in_frames = r.video_in_frames,
        video_out_frames = r.video_out_frames,
        video_dropped_frames = r.video_dropped_frames,
        audio_out_dropped_buffers = r.audio_out_dropped_buffers,
        video_out_dropped_frames = r.video_out_dropped_frames,
        face_chunks_on_time = r.face_chunks_on_time,
        face_chunks_stale = r.face_chunks_stale,
        face_frames_dropped = r.face_frames_dropped,
        vision_skipped_frames = r.vision_skipped_frames,
        vision_track_only_frames = r.vision_track_only_frames,
        speech_segments = r.speech_segments,
        latency_p50_ms = r.latency.p50_ms,
        latency_p99_ms = r.latency.p99_ms,
        "stream finished"
    );
}

/// Stop the stream from the CLI's point of view: a failed source is an error exit.
pub fn finish(reports: Vec<Result<StreamReport>>) -> Result<std::process::ExitCode> {
    let mut failed = false;
    for r in reports {
        match r {
            Ok(r) => {
                log_report(&r);
                if let Some(e) = &r.error {
                    eprintln!("avsepd: stream `{}`: {e}", r.name);
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("avsepd: error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

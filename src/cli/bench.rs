//! `avsepd bench`: run the live path on a real stream and print latency (ingest appsink -> RTP
//! send, p50/p99), real-time factor, CPU and peak memory.

use anyhow::Result;
use avsepd::media::egress::RtpAudioCodec;
use avsepd::media::ingest::{IngestOptions, RtspTransport};
use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use avsepd::stream::{RtpOutputs, SeparationSpec, Stream, StreamSpec};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Input URI or path (default: the bundled demo clip over the in-process RTSP server).
    #[arg(long)]
    input: Option<String>,
    /// Seconds of input to run.
    #[arg(long, default_value = "10", value_parser = super::common::seconds_arg)]
    duration: Duration,
    /// First RTP port of the (loopback) outputs (the overlay goes to this + 100).
    #[arg(long, default_value_t = 5700, value_parser = clap::value_parser!(u16).range(1..=65435))]
    rtp_port: u16,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Leave out face detection and tracking (measures the audio path alone; implies bypass).
    #[arg(long)]
    no_faces: bool,
    /// Run the shipped face-conditioned separator on up to 2 faces instead of the bypass.
    #[arg(long, conflicts_with = "no_faces")]
    separate: bool,
    /// Like `--separate`, with this model file.
    #[arg(long, conflicts_with = "no_faces")]
    model: Option<PathBuf>,
}

pub fn main(args: BenchArgs) -> Result<ExitCode> {
    avsepd::media::init()?;
    let _server;
    let uri = match &args.input {
        Some(i) => avsepd::media::uri::to_uri(i)?,
        None => {
            let clip = super::demo::bundled_clip()?;
            let server = RtspFileServer::start(&clip, "bench", ServedAudio::Aac, 0)?;
            let url = server.url();
            _server = server;
            url
        }
    };
    let live = avsepd::media::uri::is_live(&uri);
    let mut ingest = IngestOptions::new(uri.clone());
    ingest.transport = RtspTransport::Tcp;
    // The bundled clip's server runs in this process, on this clock.
    ingest.clock_synced = args.input.is_none();
    ingest.pace_to_clock = !live;
    let sdp_dir = std::env::temp_dir().join(format!("avsepd-bench-{}", std::process::id()));
    let spec = StreamSpec {
        name: "bench".into(),
        ingest,
        rtp: Some(RtpOutputs {
            host: "127.0.0.1".into(),
            base_port: args.rtp_port,
            overlay_port: args.rtp_port + 100,
            codec: RtpAudioCodec::L16,
            opus_bitrate: 32_000,
            mtu: 1200,
            overlay: true,
            overlay_bitrate_kbps: 800,
            sdp_dir: sdp_dir.clone(),
        }),
        record_dir: None,
        stall_timeout: super::common::STALL_TIMEOUT,
        max_duration: Some(args.duration.max(Duration::from_millis(500))),
        vision: (!args.no_faces).then(avsepd::vision::VisionConfig::default),
        reconnect: None,
        separation: if args.separate || args.model.is_some() {
            SeparationSpec::Model {
                path: args
                    .model
                    .clone()
                    .unwrap_or_else(avsepd::model::face_separator::default_model_path),
                slots: 2,
            }
        } else {
            SeparationSpec::Bypass
        },
    };
    let mode = match &spec.separation {
        SeparationSpec::Bypass => "bypass (STFT -> identity mask -> iSTFT)".to_string(),
        SeparationSpec::Model { path, slots } => format!(
            "separator `{}` on up to {slots} faces (STFT -> model masks -> iSTFT per face)",
            path.display()
        ),
    };
    let usage_before = rusage();
    let stream = Stream::new(spec);
    let report = stream.run(&Arc::new(AtomicBool::new(false)))?;
    let usage_after = rusage();
    let _ = std::fs::remove_dir_all(&sdp_dir);
    let cpu_s = usage_after.0 - usage_before.0;
    let audio_s = report.audio_in_samples as f64 / 16_000.0;
    let vision_ms_per_frame = stream.counters.vision_busy_ns.load(Ordering::Relaxed) as f64
        / 1e6
        / report.video_out_frames.max(1) as f64;
    let faces_per_frame = stream.counters.faces_observed.load(Ordering::Relaxed) as f64
        / report.video_out_frames.max(1) as f64;
    let rss_mb = usage_after.1 as f64 / 1024.0;
    let l = report.latency;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "input": avsepd::media::uri::redact(&uri),
                "mode": mode,
                "execution_provider": avsepd::model::runtime::active_provider(),
                "audio_s": audio_s,
                "wall_s": report.wall_s,
                "latency_p50_ms": l.p50_ms,
                "latency_p99_ms": l.p99_ms,
                "latency_max_ms": l.max_ms,
                "packets": l.packets,
                "dsp_rtf": report.real_time_factor(),
                "cpu_s": cpu_s,
                "cpu_percent_of_one_core": 100.0 * cpu_s / report.wall_s.max(1e-9),
                "peak_rss_mb": rss_mb,
                "audio_dropped_buffers": report.audio_dropped_buffers,
                "video_dropped_frames": report.video_dropped_frames,
                "audio_out_dropped_buffers": report.audio_out_dropped_buffers,
                "video_out_dropped_frames": report.video_out_dropped_frames,
                "vision_ms_per_frame": vision_ms_per_frame,
                "faces_per_frame": faces_per_frame,
            })
        );
    } else {
        println!("input            {}", avsepd::media::uri::redact(&uri));
        println!("mode             {mode}, L16 RTP + H.264 overlay");
        println!(
            "models on        {}",
            avsepd::model::runtime::active_provider()
        );
        println!(
            "audio            {audio_s:.2} s in {:.2} s wall",
            report.wall_s
        );
        println!(
            "latency          p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} packets; ingest appsink -> udpsink)",
            l.p50_ms, l.p99_ms, l.max_ms, l.packets
        );
        println!(
            "real-time factor {:.4} (audio thread time, STFT + model + iSTFT, / audio time)",
            report.real_time_factor()
        );
        println!(
            "cpu              {cpu_s:.2} s ({:.0}% of one core, whole process incl. decode/encode)",
            100.0 * cpu_s / report.wall_s.max(1e-9)
        );
        println!("peak rss         {rss_mb:.1} MB");
        if !args.no_faces {
            println!(
                "vision           {vision_ms_per_frame:.1} ms per frame (detect every 5th, track, crop), {faces_per_frame:.2} faces per frame"
            );
        }
        println!(
            "dropped          {} audio buffers, {} video frames at ingest; {} audio buffers, {} video frames at the RTP outputs",
            report.audio_dropped_buffers,
            report.video_dropped_frames,
            report.audio_out_dropped_buffers,
            report.video_out_dropped_frames
        );
    }
    if let Some(e) = &report.error {
        eprintln!("avsepd bench: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// (user + system CPU seconds, peak RSS in KiB) of this process.
fn rusage() -> (f64, i64) {
    // SAFETY: getrusage fills the struct we own; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime) + secs(u.ru_stime), u.ru_maxrss)
}

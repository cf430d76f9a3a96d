//! `avsepd separate INPUT --out DIR`: one input to per-speaker WAVs, the overlay MP4 and the
//! timeline, as fast as the input allows (files) or in real time (RTSP).

use anyhow::{Result, bail};
use avsepd::media::ingest::{Backpressure, IngestOptions, RtspTransport};
use avsepd::stream::{SeparationSpec, Stream, StreamSpec};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(clap::Args)]
pub struct SeparateArgs {
    /// A media file or an rtsp:// URL.
    input: String,
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
    /// Pass the mixture through (no model): speaker-0.wav is the input's audio.
    #[arg(long, conflicts_with = "model")]
    bypass: bool,
    /// The face-conditioned separator model [default: the shipped models/separator.onnx].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Speaker slots: speaker-<k>.wav for k below this, each the voice of the face holding slot k.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    max_speakers: u8,
    /// Stop after this many seconds of input.
    #[arg(long, value_parser = super::common::seconds_arg)]
    duration: Option<Duration>,
    /// RTSP transport.
    #[arg(long, value_parser = ["auto", "tcp", "udp"], default_value = "auto")]
    transport: String,
    /// The RTSP source's clock is synchronized with this host's (both NTP, or the same machine):
    /// steadier timestamps, video in step with audio.
    #[arg(long)]
    clock_synced: bool,
    /// Leave out face detection and tracking (no boxes, empty timeline faces).
    #[arg(long)]
    no_faces: bool,
    /// Run the face detector on every K-th frame and track in between.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=25))]
    detect_every: u32,
    /// Video size the overlay is rendered at, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x360")]
    size: String,
}

pub fn main(args: SeparateArgs) -> Result<ExitCode> {
    if !args.bypass && args.no_faces {
        bail!("--no-faces leaves the separator no faces to separate by: add --bypass");
    }
    let (width, height) = parse_size(&args.size)?;
    let uri = avsepd::media::uri::to_uri(&args.input)?;
    let live = avsepd::media::uri::is_live(&uri);
    let mut ingest = IngestOptions::new(uri);
    ingest.transport = match args.transport.as_str() {
        "tcp" => RtspTransport::Tcp,
        "udp" => RtspTransport::Udp,
        _ => RtspTransport::Auto,
    };
    ingest.clock_synced = args.clock_synced;
    ingest.width = width;
    ingest.height = height;
    if live {
        // Live input cannot be slowed down: a deep queue instead (about 20 s of audio).
        ingest.backpressure = Backpressure::DropAndCount;
        ingest.audio_capacity = 2048;
        ingest.video_capacity = 256;
    } else {
        ingest.backpressure = Backpressure::Wait;
    }
    let max_duration = args.duration;
    // The limit is applied where buffers leave the pipeline: a file decodes far ahead of the
    // compute threads, so stopping on the stream's position would still process whatever is
    // queued (the whole clip, for a short one). Each branch ends exactly at the limit, and the
    // stream ends when both have; a live source also keeps the position check as a backstop.
    ingest.max_duration_ns = max_duration.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let spec = StreamSpec {
        name: "separate".into(),
        ingest,
        rtp: None,
        record_dir: Some(args.out.clone()),
        stall_timeout: super::common::STALL_TIMEOUT,
        max_duration: if live { max_duration } else { None },
        vision: (!args.no_faces).then(|| avsepd::vision::VisionConfig {
            every: args.detect_every,
            ..Default::default()
        }),
        reconnect: None,
        separation: if args.bypass {
            SeparationSpec::Bypass
        } else {
            SeparationSpec::Model {
                path: args
                    .model
                    .clone()
                    .unwrap_or_else(avsepd::model::face_separator::default_model_path),
                slots: usize::from(args.max_speakers),
            }
        },
    };
    let stop = avsepd::control::signals::watch()?;
    let stream = Arc::new(Stream::new(spec));
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| progress_bar(&stream, max_duration));
    let report = stream.run(&stop);
    if let Some((bar, handle)) = progress {
        bar.finish_and_clear();
        let _ = handle.join();
    }
    let report = report?;
    super::common::log_report(&report);
    if let Some(e) = &report.error {
        bail!("{e}");
    }
    if report.audio_out_samples == 0 && report.video_out_frames == 0 {
        bail!("input `{}` produced neither audio nor video", args.input);
    }
    println!(
        "wrote {} ({:.2} s of audio, {} video frames)",
        args.out.display(),
        report.audio_out_samples as f64 / 16_000.0,
        report.video_out_frames
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_size(s: &str) -> Result<(u32, u32)> {
    let parsed = s
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    match parsed {
        Some((w, h))
            if (64..=3840).contains(&w) && (64..=2160).contains(&h) && w % 2 == 0 && h % 2 == 0 =>
        {
            Ok((w, h))
        }
        _ => bail!(
            "--size must be WIDTHxHEIGHT with even sides between 64x64 and 3840x2160, got `{s}`"
        ),
    }
}

/// A progress bar over input time, updated from the stream's counters.
fn progress_bar(
    stream: &Arc<Stream>,
    limit: Option<Duration>,
) -> (indicatif::ProgressBar, std::thread::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} s ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("separating");
    let (b, s) = (bar.clone(), stream.clone());
    let handle = std::thread::spawn(move || {
        while !b.is_finished() {
            let total = s.counters.duration_ns.load(Ordering::Relaxed);
            let total = limit.map(|l| l.as_nanos() as u64).unwrap_or(total);
            b.set_length(total / 1_000_000_000);
            b.set_position(s.counters.position_ns.load(Ordering::Relaxed) / 1_000_000_000);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    (bar, handle)
}

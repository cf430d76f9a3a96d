//! `avsepd demo`: the bundled clip served by an in-process RTSP server, the daemon run against it
//! with live RTP outputs and recordings in `out/demo/`, until the clip ends.

use super::common;
use anyhow::{Result, bail};
use avsepd::config::{Config, SeparationMode};
use avsepd::media::ingest::RtspTransport;
use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where SDP files and recordings go.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// The clip to serve (default: the bundled demo/demo.mp4).
    #[arg(long)]
    clip: Option<PathBuf>,
    /// First RTP port of the outputs.
    #[arg(long, default_value_t = 5600)]
    rtp_port: u16,
    /// Pass the mixture through on speaker 0 instead of separating the two faces' voices.
    #[arg(long)]
    bypass: bool,
}

/// The bundled clip: `AVSEPD_DEMO_CLIP`, the source tree, or the installed share directory.
pub fn bundled_clip() -> Result<PathBuf> {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("AVSEPD_DEMO_CLIP") {
        tried.push(PathBuf::from(p));
    }
    tried.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/demo.mp4"));
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        tried.push(prefix.join("share/avsepd/demo/demo.mp4"));
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => bail!(
            "demo clip not found (tried {})",
            tried
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn main(args: DemoArgs) -> Result<ExitCode> {
    let clip = match args.clip {
        Some(c) => c,
        None => bundled_clip()?,
    };
    let server = RtspFileServer::start(&clip, "demo", ServedAudio::Aac, 0)?;
    println!("serving {} at {}", clip.display(), server.url());
    let mut cfg = Config::single_stream("demo", server.url());
    cfg.egress.sdp_dir = args.out.clone();
    if !args.bypass {
        // Two faces on the clip: one speaker slot each.
        cfg.separation.mode = SeparationMode::Model;
        cfg.separation.max_speakers = 2;
    }
    let speakers = if args.bypass { 1 } else { 2 };
    for s in cfg.streams.values_mut() {
        s.base_port = args.rtp_port;
    }
    cfg.validate()?;
    let sc = &cfg.streams["demo"];
    let mut spec = common::live_spec(&cfg, "demo", sc)?;
    spec.ingest.transport = RtspTransport::Tcp;
    // The server runs in this process, on this clock.
    spec.ingest.clock_synced = true;
    spec.record_dir = Some(args.out.clone());
    // The demo ends with its clip instead of replaying it.
    spec.reconnect = None;
    let host = &cfg.egress.rtp_host;
    for k in 0..speakers {
        let port = sc.base_port + 2 * k;
        println!("live RTP: speaker {k} on udp://{host}:{port}");
    }
    println!(
        "live RTP: overlay on udp://{host}:{}; play with:",
        sc.overlay_port()
    );
    let mut sdps: Vec<(String, &str)> = (0..speakers)
        .map(|k| {
            (
                format!("demo-speaker-{k}.sdp"),
                "audioconvert ! autoaudiosink",
            )
        })
        .collect();
    sdps.push(("demo-overlay.sdp".into(), "videoconvert ! autovideosink"));
    for (sdp, sink) in sdps {
        let s = args.out.join(sdp);
        let s = s.display();
        println!("  gst-launch-1.0 filesrc location={s} ! sdpdemux ! decodebin ! {sink}");
        println!("  ffplay -protocol_whitelist file,udp,rtp {s}");
    }
    let stop = avsepd::control::signals::watch()?;
    let reports = common::run_all(common::streams(vec![spec]), stop);
    let code = common::finish(reports)?;
    let wavs: Vec<String> = (0..speakers)
        .map(|k| format!("{}/speaker-{k}.wav", args.out.display()))
        .collect();
    println!(
        "recordings: {}, {1}/overlay.mp4, {1}/timeline.json (slot of each face, who speaks when)",
        wavs.join(", "),
        args.out.display()
    );
    drop(server);
    Ok(code)
}

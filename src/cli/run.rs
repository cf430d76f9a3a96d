//! `avsepd run --config FILE` or `avsepd run --url URL [...]`: the daemon.

use super::common;
use anyhow::Result;
use avsepd::config::{AudioCodec, Config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "url"])))]
pub struct RunArgs {
    /// Config file (see config/avsepd.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// One stream's URL (rtsp://..., file://... or a path) instead of a config file.
    #[arg(long)]
    url: Option<String>,
    /// Name of the `--url` stream (used in SDP file names).
    #[arg(long, default_value = "cam", requires = "url")]
    name: String,
    /// Host the RTP outputs are sent to.
    #[arg(long)]
    rtp_host: Option<String>,
    /// First RTP port: speaker k on PORT + 2k, overlay on PORT + 100.
    #[arg(long)]
    rtp_port: Option<u16>,
    /// Where SDP files are written.
    #[arg(long)]
    sdp_dir: Option<PathBuf>,
    /// Control API address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Speaker audio codec.
    #[arg(long, value_parser = ["opus", "l16"])]
    codec: Option<String>,
}

/// Config from the file or the shortcut, with the flags applied on top, validated.
pub fn effective_config(args: &RunArgs) -> Result<Config> {
    let mut cfg = match (&args.config, &args.url) {
        (Some(path), _) => Config::load(path)?,
        (None, Some(url)) => Config::single_stream(&args.name, url),
        (None, None) => unreachable!("clap requires --config or --url"),
    };
    if let Some(h) = &args.rtp_host {
        cfg.egress.rtp_host = h.clone();
    }
    if let Some(d) = &args.sdp_dir {
        cfg.egress.sdp_dir = d.clone();
    }
    if let Some(l) = args.listen {
        cfg.daemon.listen = l;
    }
    if let Some(c) = &args.codec {
        cfg.egress.audio_codec = if c == "l16" {
            AudioCodec::L16
        } else {
            AudioCodec::Opus
        };
    }
    if let Some(p) = args.rtp_port {
        for s in cfg.streams.values_mut() {
            s.base_port = p;
            s.overlay_port = None;
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn main(args: RunArgs) -> Result<ExitCode> {
    let cfg = effective_config(&args)?;
    avsepd::media::init()?;
    let stop = avsepd::control::signals::watch()?;
    let mut specs = Vec::new();
    for (name, sc) in cfg.streams.iter().filter(|(_, s)| s.enabled) {
        specs.push(common::live_spec(&cfg, name, sc)?);
    }
    for spec in &specs {
        tracing::info!(
            stream = %spec.name,
            source = %avsepd::media::uri::redact(&spec.ingest.uri),
            "starting"
        );
    }
    let streams = common::streams(specs);
    avsepd::control::http::serve(cfg.daemon.listen, streams.clone())?;
    let reports = common::run_all(streams, stop);
    common::finish(reports)
}

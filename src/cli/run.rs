//! `avsepd run --config FILE` or `avsepd run --url URL [...]`: the daemon.

use super::common;
use anyhow::Result;
use avsepd::config::{AudioCodec, Config};
use avsepd::control::notify::{self, Notifier};
use avsepd::stream::Stream;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    let mut running = common::spawn_all(&streams, &stop);
    supervise(&Notifier::from_env(), &streams, &mut running, &stop);
    common::finish(running.join())
}

/// How often the status line is refreshed when no watchdog asks for more.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Tell systemd how the daemon is doing until every stream has ended.
///
/// - `READY=1` is sent once the config is valid, GStreamer is initialised, the control API is
///   listening and every stream's supervisor thread has been started; the first thing each one
///   does is its source's first connect attempt. READY does not wait for a camera to answer: one
///   that is down shows in `STATUS=` instead of holding up the start (or failing it).
/// - `WATCHDOG=1` is sent from this loop, at half of `$WATCHDOG_USEC`. It proves that this loop
///   runs, not that each stream's threads do: a wedged main loop stops the pings and systemd
///   restarts the service; a wedged stream thread does not (its stall timeout ends it instead).
/// - `STATUS=` is one line, e.g. `2 streams: door running, yard waiting for data`, re-sent when
///   it changes. `STOPPING=1` when a stop was asked for (SIGTERM) or the streams have ended.
fn supervise(
    notifier: &Notifier,
    streams: &[Arc<Stream>],
    running: &mut common::Running,
    stop: &AtomicBool,
) {
    let mut warned = false;
    let mut check = |what: &str, r: std::io::Result<()>| {
        if let Err(e) = r
            && !std::mem::replace(&mut warned, true)
        {
            tracing::warn!("cannot notify systemd ({what}): {e}");
        }
    };
    let ping = notify::watchdog_ping_interval();
    let tick = ping.map_or(STATUS_INTERVAL, |p| p.min(STATUS_INTERVAL));
    let mut status = status_line(streams, running);
    check("READY", notifier.ready(&status));
    if notifier.is_enabled() {
        tracing::info!(
            watchdog_ping_s = ping.map(|p| p.as_secs_f64()),
            "notified systemd: ready"
        );
    }
    loop {
        let all_ended = running.wait(tick);
        if all_ended || stop.load(Ordering::SeqCst) {
            let line = format!(
                "stopping: finishing the outputs of {}",
                count(streams.len())
            );
            check("STOPPING", notifier.stopping(&line));
            // systemd no longer expects pings once STOPPING=1 is sent; keep them going anyway
            // in case it still does, until the streams have finished.
            while !running.wait(tick) {
                if ping.is_some() {
                    check("WATCHDOG", notifier.watchdog());
                }
            }
            return;
        }
        if ping.is_some() {
            check("WATCHDOG", notifier.watchdog());
        }
        let now = status_line(streams, running);
        if now != status {
            check("STATUS", notifier.status(&now));
            status = now;
        }
    }
}

fn count(n: usize) -> String {
    format!("{n} stream{}", if n == 1 { "" } else { "s" })
}

/// `2 streams: door running, yard waiting for data`: running while data arrives (within the stall
/// timeout), ended once its supervisor has returned.
fn status_line(streams: &[Arc<Stream>], running: &common::Running) -> String {
    let each: Vec<String> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let state = if running.ended(i) {
                "ended"
            } else if s.counters.up.load(Ordering::Relaxed) {
                "running"
            } else {
                "waiting for data"
            };
            format!("{} {state}", s.spec.name)
        })
        .collect();
    format!("{}: {}", count(streams.len()), each.join(", "))
}

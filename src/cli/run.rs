//! `avsepd run --config FILE` or `avsepd run --url URL [...]`: the daemon.

use super::common;
use super::fleet::{Fleet, Registry};
use anyhow::Result;
use avsepd::config::{AudioCodec, Config, Transport};
use avsepd::control::notify::{self, Notifier};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// RTSP lower transport of the `--url` stream.
    #[arg(long, value_parser = ["auto", "tcp", "udp"])]
    transport: Option<String>,
    /// The `--url` camera's clock is synchronized with this host's (both NTP): steadier
    /// timestamps, video in step with audio (README "Outputs").
    #[arg(long)]
    clock_synced: bool,
}

/// Config from the file or the shortcut, with the flags applied on top, validated.
pub fn effective_config(args: &RunArgs) -> Result<Config> {
    if args.config.is_some() {
        let per_stream = [
            ("--transport", args.transport.is_some()),
            ("--clock-synced", args.clock_synced),
        ];
        if let Some((flag, _)) = per_stream.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} applies to a --url stream; with --config, set it per stream in the file (streams.NAME.transport, streams.NAME.clock_synced)"
            );
        }
    }
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
    if args.url.is_some() {
        for s in cfg.streams.values_mut() {
            if let Some(t) = &args.transport {
                s.transport = match t.as_str() {
                    "tcp" => Transport::Tcp,
                    "udp" => Transport::Udp,
                    _ => Transport::Auto,
                };
            }
            s.clock_synced |= args.clock_synced;
        }
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

/// `cfg`: [`effective_config`] of `args`, which `main` reads before logging starts (the file's
/// `daemon.log_format` applies when `--log-format` is not given).
pub fn main(args: RunArgs, cfg: Config) -> Result<ExitCode> {
    avsepd::media::init()?;
    load_onnx_runtime(&cfg)?;
    let stop = avsepd::control::signals::watch()?;
    let reload = avsepd::control::signals::watch_reload()?;
    let registry: Registry = Default::default();
    let mut fleet = Fleet::new(registry.clone());
    fleet.start_all(&cfg)?;
    // The API reads the registry, which a reload updates.
    avsepd::control::http::serve(
        avsepd::control::http::ApiOptions::from_config(&cfg.daemon)?,
        registry.clone(),
    )?;
    supervise(&Notifier::from_env(), &args, &mut fleet, &stop, &reload);
    common::finish(fleet.join())
}

/// How often the status line is refreshed when no watchdog asks for more.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Tell systemd how the daemon is doing until every stream has ended, and apply reloads.
///
/// - `READY=1` is sent once the config is valid, GStreamer is initialised, the control API is
///   listening and every stream's supervisor thread has been started; the first thing each one
///   does is its source's first connect attempt. READY does not wait for a camera to answer: one
///   that is down shows in `STATUS=` instead of holding up the start (or failing it).
/// - `WATCHDOG=1` is sent from this loop, at half of `$WATCHDOG_USEC`. It proves that this loop
///   runs, not that each stream's threads do: a wedged main loop stops the pings and systemd
///   restarts the service; a wedged stream thread does not (its stall timeout ends it instead).
/// - `STATUS=` is one line, e.g. `2 streams: door running, yard retrying`, re-sent when it
///   changes. `STOPPING=1` when a stop was asked for (SIGTERM) or the streams have ended.
/// - SIGHUP (`systemctl reload`): the config file is read again; an invalid one is logged and
///   ignored (the daemon keeps running on the old one); a valid one is applied stream by stream.
fn supervise(
    notifier: &Notifier,
    args: &RunArgs,
    fleet: &mut Fleet,
    stop: &AtomicBool,
    reload: &AtomicBool,
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
    let mut status = status_line(fleet);
    check("READY", notifier.ready(&status));
    if notifier.is_enabled() {
        tracing::info!(
            watchdog_ping_s = ping.map(|p| p.as_secs_f64()),
            "notified systemd: ready"
        );
    }
    loop {
        let all_ended = fleet.wait(tick);
        if all_ended || stop.load(Ordering::SeqCst) {
            let line = format!(
                "stopping: finishing the outputs of {}",
                count(fleet.streams().len())
            );
            check("STOPPING", notifier.stopping(&line));
            fleet.stop_all();
            // systemd no longer expects pings once STOPPING=1 is sent; keep them going anyway
            // in case it still does, until the streams have finished.
            while !fleet.wait(tick) {
                if ping.is_some() {
                    check("WATCHDOG", notifier.watchdog());
                }
            }
            return;
        }
        if reload.swap(false, Ordering::SeqCst) {
            check("RELOADING", notifier.status("reloading the configuration"));
            apply_reload(args, fleet);
        }
        if ping.is_some() {
            check("WATCHDOG", notifier.watchdog());
        }
        let now = status_line(fleet);
        if now != status {
            check("STATUS", notifier.status(&now));
            status = now;
        }
    }
}

/// Load ONNX Runtime (once per process) where the config needs it or names it: the face detector
/// needs it, and later loads (`runtime::environment(None)`) reuse this one, so the configured
/// path must be the first one tried. A library already loaded from elsewhere stays: a changed
/// path takes effect at the next start, which is logged.
fn load_onnx_runtime(cfg: &Config) -> Result<()> {
    let configured = cfg.daemon.onnxruntime_library.as_deref();
    if !cfg.vision.enabled && configured.is_none() {
        return Ok(());
    }
    let lib = avsepd::model::runtime::init(configured).map_err(|e| match configured {
        Some(p) => e.context(format!("daemon.onnxruntime_library = `{}`", p.display())),
        None => e,
    })?;
    if let Some(p) = configured
        && p != lib
    {
        tracing::warn!(
            loaded = %lib.display(),
            configured = %p.display(),
            "daemon.onnxruntime_library changed: the loaded library stays until a restart"
        );
    } else {
        tracing::info!(library = %lib.display(), "ONNX Runtime");
    }
    Ok(())
}

/// Re-read the config and apply it; a config that does not validate changes nothing.
fn apply_reload(args: &RunArgs, fleet: &mut Fleet) {
    if args.config.is_none() {
        tracing::warn!("reload: nothing to reload (started with --url, not --config)");
        return;
    }
    match effective_config(args) {
        Ok(cfg) => {
            // The provider stays what the daemon started with; a changed one is logged.
            avsepd::model::runtime::set_execution_provider(cfg.daemon.execution_provider);
            match load_onnx_runtime(&cfg).and_then(|()| fleet.reload(&cfg)) {
                Ok(()) => tracing::info!(streams = fleet.streams().len(), "reload: applied"),
                Err(e) => tracing::error!("reload: {e:#}"),
            }
        }
        Err(e) => tracing::error!(
            "reload: the new configuration is not valid, keeping the running one:\n{e:#}"
        ),
    }
}

fn count(n: usize) -> String {
    format!("{n} stream{}", if n == 1 { "" } else { "s" })
}

/// `2 streams: door running, yard retrying`: each stream's state (see `StreamState`).
fn status_line(fleet: &Fleet) -> String {
    let streams = fleet.streams();
    let each: Vec<String> = streams
        .iter()
        .map(|s| {
            let state = if fleet.ended(&s.spec.name) {
                "ended"
            } else {
                s.state().as_str()
            };
            format!("{} {state}", s.spec.name)
        })
        .collect();
    format!("{}: {}", count(streams.len()), each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn url_flags_reach_the_stream() {
        let cli = Cli::parse_from([
            "t",
            "--url",
            "/a.mp4",
            "--transport",
            "tcp",
            "--clock-synced",
        ]);
        let cfg = effective_config(&cli.run).unwrap();
        let s = &cfg.streams["cam"];
        assert_eq!(s.transport, Transport::Tcp);
        assert!(s.clock_synced);
        let cli = Cli::parse_from(["t", "--url", "/a.mp4"]);
        let s = &effective_config(&cli.run).unwrap().streams["cam"];
        assert_eq!((s.transport, s.clock_synced), (Transport::Auto, false));
        // Per-stream flags belong to --url: a config file says them itself.
        for flags in [&["--clock-synced"][..], &["--transport", "udp"][..]] {
            let mut argv = vec!["t", "--config", "/x.toml"];
            argv.extend(flags);
            let cli = Cli::parse_from(argv);
            let e = effective_config(&cli.run).err().map(|e| format!("{e:#}"));
            assert!(e.as_deref().is_some_and(|e| e.contains(flags[0])), "{e:?}");
        }
    }
}

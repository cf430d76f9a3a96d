//! SIGINT / SIGTERM: the first asks for a graceful stop (outputs flushed), a second quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Watch for termination signals on a small tokio runtime; returns the stop flag they set.
pub fn watch() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    tracing::warn!("cannot install signal handlers");
                    return;
                };
                for n in 0.. {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                    if n == 0 {
                        tracing::info!(
                            "stopping: finishing outputs (signal again to quit at once)"
                        );
                        flag.store(true, Ordering::SeqCst);
                    } else {
                        tracing::warn!("second signal: quitting without finishing outputs");
                        std::process::exit(130);
                    }
                }
            })
        })?;
    Ok(stop)
}

/// Watch for SIGHUP (systemd's `ExecReload`); each one sets the returned flag, which the daemon's
/// main loop takes and clears. Without this handler SIGHUP would end the process.
pub fn watch_reload() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Register before returning, so a SIGHUP right after start-up is not fatal.
    let mut hup = rt.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    })?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            rt.block_on(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    set.store(true, Ordering::SeqCst);
                }
            })
        })?;
    Ok(flag)
}

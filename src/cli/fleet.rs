//! The daemon's set of running streams, which a reload can change one stream at a time: streams
//! that are new are started, removed ones stopped, changed ones restarted, and the others are not
//! touched.

use super::common;
use anyhow::Result;
use avsepd::config::Config;
use avsepd::stream::{Stream, StreamReport};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The streams the control API shows; replaced on reload.
pub type Registry = Arc<RwLock<Vec<Arc<Stream>>>>;

struct Member {
    /// Everything in the config that shapes this stream; a reload restarts it when this changes.
    fingerprint: String,
    stream: Arc<Stream>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<StreamReport>>>,
    ended: bool,
}

pub struct Fleet {
    members: Vec<Member>,
    registry: Registry,
    ended_tx: Sender<String>,
    ended_rx: Receiver<String>,
    /// Reports of streams that a reload removed or restarted.
    retired: Vec<Result<StreamReport>>,
}

/// Sends the stream's name when its supervisor thread ends (also by panic).
struct EndGuard(String, Sender<String>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.1.send(self.0.clone());
    }
}

impl Fleet {
    pub fn new(registry: Registry) -> Self {
        let (ended_tx, ended_rx) = crossbeam_channel::unbounded();
        Fleet {
            members: Vec::new(),
            registry,
            ended_tx,
            ended_rx,
            retired: Vec::new(),
        }
    }

    /// Start every enabled stream of `cfg`.
    pub fn start_all(&mut self, cfg: &Config) -> Result<()> {
        for (name, sc) in cfg.streams.iter().filter(|(_, s)| s.enabled) {
            self.start(cfg, name, fingerprint(cfg, name))?;
            tracing::info!(stream = %name, source = %sc.redacted_url(), "starting");
        }
        self.publish();
        Ok(())
    }

    fn start(&mut self, cfg: &Config, name: &str, fingerprint: String) -> Result<()> {
        let spec = common::live_spec(cfg, name, &cfg.streams[name])?;
        let stream = Arc::new(Stream::new(spec));
        let stop = Arc::new(AtomicBool::new(false));
        let guard = EndGuard(name.to_string(), self.ended_tx.clone());
        let (s, st) = (stream.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("{name}-supervisor"))
            .spawn(move || {
                let _guard = guard;
                s.run(&st)
            })?;
        self.members.push(Member {
            fingerprint,
            stream,
            stop,
            handle: Some(handle),
            ended: false,
        });
        Ok(())
    }

    /// Apply a new config: start, stop or restart only the streams whose settings changed.
    pub fn reload(&mut self, cfg: &Config) -> Result<()> {
        let wanted: Vec<(&String, String)> = cfg
            .streams
            .iter()
            .filter(|(_, s)| s.enabled)
            .map(|(n, _)| (n, fingerprint(cfg, n)))
            .collect();
        let mut keep = Vec::new();
        for mut m in std::mem::take(&mut self.members) {
            let name = m.stream.spec.name.clone();
            let same = wanted
                .iter()
                .any(|(n, f)| **n == name && *f == m.fingerprint);
            if same && !m.ended {
                keep.push(m);
                continue;
            }
            tracing::info!(stream = %name, "reload: stopping");
            m.stop.store(true, Ordering::SeqCst);
            if let Some(h) = m.handle.take() {
                self.retired.push(
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("stream `{name}` panicked"))),
                );
            }
        }
        self.members = keep;
        for (name, fp) in wanted {
            if !self.members.iter().any(|m| m.stream.spec.name == *name) {
                tracing::info!(stream = %name, "reload: starting");
                self.start(cfg, name, fp)?;
            }
        }
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let list = self.members.iter().map(|m| m.stream.clone()).collect();
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = list;
    }

    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.members.iter().map(|m| m.stream.clone()).collect()
    }

    /// Wait up to `timeout` for a stream to end; true when every stream has ended.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        if !self.all_ended()
            && let Ok(name) = self.ended_rx.recv_timeout(timeout)
        {
            self.mark_ended(&name);
            while let Ok(name) = self.ended_rx.try_recv() {
                self.mark_ended(&name);
            }
        }
        self.all_ended()
    }

    fn mark_ended(&mut self, name: &str) {
        for m in self
            .members
            .iter_mut()
            .filter(|m| m.stream.spec.name == name)
        {
            // The guard drops as `Stream::run` returns: the stream has ended even while its
            // thread is still unwinding (waiting for `is_finished` here could miss the moment).
            m.ended = true;
        }
    }

    pub fn all_ended(&self) -> bool {
        self.members.iter().all(|m| m.ended)
    }

    pub fn ended(&self, name: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.stream.spec.name == name && m.ended)
    }

    /// Ask every stream to stop (outputs are finished), without waiting.
    pub fn stop_all(&self) {
        for m in &self.members {
            m.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Wait for every stream and collect the reports, including those retired by reloads.
    pub fn join(mut self) -> Vec<Result<StreamReport>> {
        let mut out = std::mem::take(&mut self.retired);
        for m in &mut self.members {
            let name = m.stream.spec.name.clone();
            if let Some(h) = m.handle.take() {
                out.push(
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("stream `{name}` panicked"))),
                );
            }
        }
        out
    }
}

/// What a stream's behaviour depends on: its own table and the shared sections.
fn fingerprint(cfg: &Config, name: &str) -> String {
    serde_json::json!({
        "stream": cfg.streams.get(name),
        "egress": cfg.egress,
        "separation": cfg.separation,
        "vision": cfg.vision,
        "reconnect": cfg.reconnect,
    })
    .to_string()
}

//! The daemon's set of running streams, which a reload can change one stream at a time: streams
//! that are new are started, removed ones stopped, changed ones restarted, and the others are not
//! touched.

use super::common;
use anyhow::Result;
use avsepd::config::Config;
use avsepd::stream::{Stream, StreamReport, StreamSpec};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The streams the control API shows; replaced on reload.
pub type Registry = Arc<RwLock<Vec<Arc<Stream>>>>;

struct Member {
    /// Unique for the life of the process: a restarted stream keeps its name, and the end of the
    /// thread it replaces must not be taken for its own.
    id: u64,
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
    ended_tx: Sender<u64>,
    ended_rx: Receiver<u64>,
    next_id: u64,
    /// Failed reports of streams that a reload removed or restarted (clean ones are logged when
    /// they retire).
    retired: Vec<Result<StreamReport>>,
}

/// Sends the member's id when its supervisor thread ends (also by panic).
struct EndGuard(u64, Sender<u64>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
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
            next_id: 0,
            retired: Vec::new(),
        }
    }

    /// Start every enabled stream of `cfg`.
    pub fn start_all(&mut self, cfg: &Config) -> Result<()> {
        common::check_rtp_host(&cfg.egress.rtp_host)?;
        for (name, sc) in cfg.streams.iter().filter(|(_, s)| s.enabled) {
            let spec = common::live_spec(cfg, name, sc)?;
            self.start(spec, fingerprint(cfg, name))?;
            tracing::info!(stream = %name, source = %sc.redacted_url(), "starting");
        }
        self.publish();
        Ok(())
    }

    fn start(&mut self, spec: StreamSpec, fingerprint: String) -> Result<()> {
        let name = spec.name.clone();
        let stream = Arc::new(Stream::new(spec));
        let stop = Arc::new(AtomicBool::new(false));
        let id = self.next_id;
        self.next_id += 1;
        let guard = EndGuard(id, self.ended_tx.clone());
        let (s, st) = (stream.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("{name}-supervisor"))
            .spawn(move || {
                let _guard = guard;
                s.run(&st)
            })?;
        self.members.push(Member {
            id,
            fingerprint,
            stream,
            stop,
            handle: Some(handle),
            ended: false,
        });
        Ok(())
    }

    /// Apply a new config: start, stop or restart only the streams whose settings changed.
    /// Every new spec is built before anything stops, so a config that validates but cannot
    /// start (an input file that is gone) changes nothing.
    pub fn reload(&mut self, cfg: &Config) -> Result<()> {
        let wanted: Vec<(&String, String)> = cfg
            .streams
            .iter()
            .filter(|(_, s)| s.enabled)
            .map(|(n, _)| (n, fingerprint(cfg, n)))
            .collect();
        let untouched = |m: &Member| {
            !m.ended
                && wanted
                    .iter()
                    .any(|(n, f)| **n == m.stream.spec.name && *f == m.fingerprint)
        };
        let new: Vec<_> = wanted
            .iter()
            .filter(|(name, _)| {
                !self
                    .members
                    .iter()
                    .any(|m| m.stream.spec.name == **name && untouched(m))
            })
            .collect();
        if !new.is_empty() {
            common::check_rtp_host(&cfg.egress.rtp_host)
                .map_err(|e| e.context("keeping the running config"))?;
        }
        let mut to_start = Vec::new();
        for (name, fp) in new {
            let spec = common::live_spec(cfg, name, &cfg.streams[*name])
                .map_err(|e| e.context(format!("stream `{name}`: keeping the running config")))?;
            to_start.push((spec, fp.clone()));
        }
        let mut keep = Vec::new();
        for mut m in std::mem::take(&mut self.members) {
            let name = m.stream.spec.name.clone();
            if untouched(&m) {
                keep.push(m);
                continue;
            }
            tracing::info!(stream = %name, "reload: stopping");
            m.stop.store(true, Ordering::SeqCst);
            if let Some(h) = m.handle.take() {
                let report = h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("stream `{name}` panicked")));
                // A clean report is logged now; only failures wait for the exit (they decide
                // its status). Keeping every report would grow with every reload of a daemon
                // that runs for months.
                match report {
                    Ok(r) if r.error.is_none() => common::log_report(&r),
                    failed => self.retired.push(failed),
                }
            }
        }
        self.members = keep;
        let mut result = Ok(());
        for (spec, fp) in to_start {
            tracing::info!(stream = %spec.name, "reload: starting");
            if let Err(e) = self.start(spec, fp) {
                // Only a thread that cannot be spawned gets here; start the others anyway.
                result = Err(e);
            }
        }
        self.publish();
        result
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
            && let Ok(id) = self.ended_rx.recv_timeout(timeout)
        {
            self.mark_ended(id);
            while let Ok(id) = self.ended_rx.try_recv() {
                self.mark_ended(id);
            }
        }
        self.all_ended()
    }

    /// Ids of retired members (stopped by a reload) match nothing and are ignored.
    fn mark_ended(&mut self, id: u64) {
        for m in self.members.iter_mut().filter(|m| m.id == id) {
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

//! How a stream's compute threads end.
//!
//! At the end of a stream (the source's EOS, `--duration`) they drain everything queued: nothing
//! received is lost. On a stop request (SIGTERM, a stream removed on reload) they drain for at
//! most [`STOP_DRAIN_BUDGET`] and then count what is still queued as dropped and finish their
//! outputs. A machine that has fallen behind its camera can hold seconds of video in the channel;
//! encoding all of it would break the promise of a graceful stop within 2 s (and systemd's stop
//! timeout would then kill the daemon mid-write, leaving no usable file at all).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a stop request lets the compute threads work through their queues.
pub const STOP_DRAIN_BUDGET: Duration = Duration::from_millis(500);

const RUNNING: u64 = u64::MAX;

#[derive(Debug)]
pub struct Shutdown {
    /// `RUNNING`, or the monotonic time (ns) after which queued input is dropped (`u64::MAX - 1`
    /// at the end of a stream: drain all).
    drain_until_ns: AtomicU64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            drain_until_ns: AtomicU64::new(RUNNING),
        }
    }
}

impl Shutdown {
    /// The sources are done: `stop_requested` gives the threads [`STOP_DRAIN_BUDGET`], otherwise
    /// they drain everything.
    pub fn begin(&self, stop_requested: bool) {
        let until = if stop_requested {
            super::monotonic_ns() + STOP_DRAIN_BUDGET.as_nanos() as u64
        } else {
            RUNNING - 1
        };
        self.drain_until_ns.store(until, Ordering::SeqCst);
    }

    /// The threads are draining (no new input will come).
    pub fn is_set(&self) -> bool {
        self.drain_until_ns.load(Ordering::Relaxed) != RUNNING
    }

    /// A stop was requested (rather than the source ending): the threads are to finish quickly.
    pub fn stop_requested(&self) -> bool {
        self.drain_until_ns.load(Ordering::Relaxed) < RUNNING - 1
    }

    /// A stop request's drain budget is spent: drop (and count) what is still queued.
    pub fn out_of_time(&self) -> bool {
        let until = self.drain_until_ns.load(Ordering::Relaxed);
        until < RUNNING - 1 && super::monotonic_ns() >= until
    }
}

/// A stop's drain budget is spent: count the input in hand and the `queued` rest as dropped (in
/// `counter`, one of the stream's stop-drop counters) and say so.
pub fn drop_backlog(queued: usize, counter: &AtomicU64, what: &str) {
    let dropped = 1 + queued as u64;
    counter.fetch_add(dropped, Ordering::Relaxed);
    tracing::info!(dropped, what, "stopping: queued input dropped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_stream_drains_everything_and_a_stop_only_for_its_budget() {
        let s = Shutdown::default();
        assert!(!s.is_set() && !s.out_of_time() && !s.stop_requested());
        s.begin(false);
        assert!(s.is_set() && !s.stop_requested());
        std::thread::sleep(STOP_DRAIN_BUDGET + Duration::from_millis(50));
        assert!(!s.out_of_time(), "the end of a stream drains all");
        let s = Shutdown::default();
        s.begin(true);
        assert!(s.is_set() && s.stop_requested() && !s.out_of_time());
        std::thread::sleep(STOP_DRAIN_BUDGET + Duration::from_millis(50));
        assert!(s.out_of_time());
    }

    #[test]
    fn a_dropped_backlog_counts_the_input_in_hand_and_the_queued_rest() {
        let counter = AtomicU64::new(2);
        drop_backlog(5, &counter, "video frames");
        assert_eq!(counter.load(Ordering::Relaxed), 8);
    }
}

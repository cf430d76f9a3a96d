//! Latency as DESIGN.md defines it: wall time from an audio buffer's arrival at the ingest appsink
//! to the send of the RTP packet carrying its first sample.
//!
//! The audio thread marks each input buffer (pts, arrival); a probe on the udpsink's sink pad looks
//! up, for every outgoing packet, the input buffer that holds the packet's first sample. Packets
//! keep the pts of the samples they carry, so the lookup needs no extra metadata.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

/// Latencies kept for percentiles: the most recent ones (about 30 min of 20 ms packets).
const KEEP: usize = 100_000;
/// Input marks kept while waiting for their packets (about 40 s of 10 ms buffers).
const MAX_MARKS: usize = 4096;

#[derive(Default)]
struct Inner {
    marks: VecDeque<(u64, Instant)>,
    latencies_us: Vec<u32>,
    next: usize,
    total: u64,
}

#[derive(Default)]
pub struct LatencyTracker {
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyStats {
    pub packets: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// An input buffer whose first sample has running time `pts_ns` arrived at `arrival`.
    pub fn mark_input(&self, pts_ns: u64, arrival: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.marks.len() >= MAX_MARKS {
            inner.marks.pop_front();
        }
        inner.marks.push_back((pts_ns, arrival));
    }

    /// A packet whose first sample has running time `pts_ns` is being sent now.
    pub fn on_send(&self, pts_ns: u64) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while inner.marks.len() >= 2 && inner.marks[1].0 <= pts_ns {
            inner.marks.pop_front();
        }
        let Some(&(mark_pts, arrival)) = inner.marks.front() else {
            return;
        };
        if mark_pts > pts_ns {
            return; // a packet from before the first marked buffer
        }
        let us = now
            .duration_since(arrival)
            .as_micros()
            .min(u32::MAX as u128) as u32;
        if inner.latencies_us.len() < KEEP {
            inner.latencies_us.push(us);
        } else {
            let i = inner.next;
            inner.latencies_us[i] = us;
            inner.next = (i + 1) % KEEP;
        }
        inner.total += 1;
    }

    pub fn stats(&self) -> LatencyStats {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = inner.latencies_us.clone();
        drop(inner);
        percentiles(&mut v)
    }
}

fn percentiles(v: &mut [u32]) -> LatencyStats {
    if v.is_empty() {
        return LatencyStats::default();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    LatencyStats {
        packets: v.len() as u64,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn packet_maps_to_the_buffer_holding_its_first_sample() {
        let t = LatencyTracker::new();
        let t0 = Instant::now();
        t.mark_input(0, t0);
        t.mark_input(20_000_000, t0 + Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(30));
        t.on_send(25_000_000); // in the second buffer: about 10 ms late
        let s = t.stats();
        assert_eq!(s.packets, 1);
        assert!(s.p50_ms >= 9.0 && s.p50_ms < 1000.0, "{s:?}");
    }
}

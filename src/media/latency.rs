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
    /// (pts, arrival); no arrival: padding the audio stage made up, which no packet's latency
    /// is measured from.
    marks: VecDeque<(u64, Option<Instant>)>,
    latencies_us: Vec<u32>,
    next: usize,
    total: u64,
    /// Since start, never reset: per [`HISTOGRAM_BOUNDS_S`] bucket (not cumulative), and the sum.
    bucket_counts: [u64; HISTOGRAM_BOUNDS_S.len()],
    sum_us: u64,
}

/// Upper bounds (seconds) of the latency histogram the metrics endpoint exposes.
pub const HISTOGRAM_BOUNDS_S: [f64; 8] = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.5, 1.0];

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
    /// Marks must rise in pts (packets are looked up by it): one at or below the last mark (a
    /// timeline re-anchored backwards) is left out, and its packets count from the mark before.
    pub fn mark_input(&self, pts_ns: u64, arrival: Instant) {
        self.mark(pts_ns, Some(arrival));
    }

    /// From `pts_ns` on the audio is padding (silence pushed to bring out a session's end while
    /// its source is away): no input arrived for it, so its packets have no latency and are not
    /// counted, until the next [`mark_input`](Self::mark_input).
    pub fn mark_padding(&self, pts_ns: u64) {
        self.mark(pts_ns, None);
    }

    fn mark(&self, pts_ns: u64, arrival: Option<Instant>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.marks.back().is_some_and(|&(last, _)| pts_ns <= last) {
            return;
        }
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
        let Some(arrival) = arrival else {
            return; // padding
        };
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
        inner.sum_us += u64::from(us);
        let seconds = f64::from(us) / 1e6;
        // The first bound the latency fits under; above the last one it counts only in +Inf.
        let i = HISTOGRAM_BOUNDS_S.partition_point(|&b| b < seconds);
        if let Some(n) = inner.bucket_counts.get_mut(i) {
            *n += 1;
        }
    }

    pub fn stats(&self) -> LatencyStats {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = inner.latencies_us.clone();
        drop(inner);
        percentiles(&mut v)
    }

    /// A Prometheus histogram over every packet since start (counts never go down, as Prometheus
    /// requires): cumulative counts per [`HISTOGRAM_BOUNDS_S`] bound, then the number of packets
    /// and the sum of their latencies in seconds.
    pub fn histogram(&self) -> (Vec<u64>, u64, f64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut running = 0;
        let cumulative = inner
            .bucket_counts
            .iter()
            .map(|n| {
                running += n;
                running
            })
            .collect();
        (cumulative, inner.total, inner.sum_us as f64 / 1e6)
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

    #[test]
    fn a_mark_below_the_last_is_left_out() {
        let t = LatencyTracker::new();
        let long_ago = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        t.mark_input(0, now);
        t.mark_input(40_000_000, now);
        // Out of order, and much older: taken, it would be matched to the packet below and
        // report ~50 ms instead of ~0.
        t.mark_input(30_000_000, long_ago);
        t.on_send(45_000_000);
        let s = t.stats();
        assert_eq!(s.packets, 1);
        assert!(s.max_ms < 40.0, "{s:?}");
    }

    #[test]
    fn padding_is_not_measured() {
        let t = LatencyTracker::new();
        let long_ago = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        t.mark_input(0, Instant::now());
        t.mark_padding(40_000_000);
        // A pad packet sent a whole outage later: not a latency.
        t.on_send(50_000_000);
        assert_eq!(t.stats().packets, 0);
        // Real input again (its arrival long ago, so a measured packet shows).
        t.mark_input(100_000_000, long_ago);
        t.on_send(100_000_000);
        let s = t.stats();
        assert_eq!(s.packets, 1);
        assert!(s.max_ms >= 45.0, "{s:?}");
        // Before the pad: still measured from its buffer.
        let t = LatencyTracker::new();
        t.mark_input(0, Instant::now());
        t.mark_padding(40_000_000);
        t.on_send(20_000_000);
        assert_eq!(t.stats().packets, 1);
    }

    #[test]
    fn histogram_is_cumulative_with_count_and_sum() {
        let t = LatencyTracker::new();
        let t0 = Instant::now();
        t.mark_input(0, t0);
        t.on_send(0);
        let (buckets, count, sum) = t.histogram();
        assert_eq!(count, 1);
        assert_eq!(*buckets.last().unwrap(), 1, "a fresh packet is under 1 s");
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
        assert!((0.0..1.0).contains(&sum));
        assert_eq!(LatencyTracker::new().histogram(), (vec![0; 8], 0, 0.0));
    }
}

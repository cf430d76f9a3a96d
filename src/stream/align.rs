//! Placing audio buffers on a continuous sample timeline by their pts.
//!
//! Audio is continuous, so sample counting is the timeline and pts only correct it. Network
//! sources' pts wander by a few ms (RTP jitterbuffer skew correction), so, like GStreamer's audio
//! sinks (alignment threshold, discont wait), a deviation is acted on only when it is larger than
//! [`TOLERANCE_NS`] and comes with a DISCONT flag (lost packets), or when it is larger than
//! [`DRIFT_TOLERANCE_NS`] and persists for [`DISCONT_WAIT_NS`] (clock drift). Then a gap is filled
//! with silence and an overlap is skipped; a jump beyond [`MAX_FILL_NS`] (a camera pause, a
//! reconnect) re-anchors the timeline instead of inventing seconds of silence.
//!
//! Why the larger unflagged threshold: an RTSP jitterbuffer re-estimates its clock skew during the
//! first seconds and moves pts by tens of ms while not a single sample is lost (seen on TCP
//! interleaved streams); acting on that would cut or pad real audio.

use crate::media::NS_PER_SEC;
use crate::media::ingest::AUDIO_RATE;

pub const NS_PER_SAMPLE: u64 = NS_PER_SEC / AUDIO_RATE as u64;
/// Deviations up to this are jitter, even after a DISCONT.
pub const TOLERANCE_NS: u64 = 40_000_000;
/// Unflagged deviations up to this are pts noise; beyond it (and lasting) they are clock drift.
pub const DRIFT_TOLERANCE_NS: u64 = 200_000_000;
/// A deviation must last this long (in input time) before it is corrected, unless flagged.
pub const DISCONT_WAIT_NS: u64 = NS_PER_SEC;
/// Gaps longer than this re-anchor the timeline instead of being filled.
pub const MAX_FILL_NS: u64 = 2 * NS_PER_SEC;

/// What to do with a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Insert this many samples of silence, then the whole buffer.
    FillThenAccept(u64),
    /// Skip this many leading samples (they overlap what was already placed), accept the rest.
    Skip(usize),
    /// The timeline was re-anchored at this buffer; accept it whole.
    Resync,
}

#[derive(Debug, Default, Clone)]
pub struct PtsAligner {
    /// pts of timeline sample 0.
    t0: Option<u64>,
    /// Samples placed so far (including filled silence).
    placed: u64,
    /// Timeline position at which the current deviation was first seen.
    deviating_since: Option<u64>,
}

impl PtsAligner {
    pub fn new() -> Self {
        Self::default()
    }

    /// pts of the first placed sample.
    pub fn t0(&self) -> Option<u64> {
        self.t0
    }

    /// Where a buffer of `len` samples stamped `pts_ns` goes. Call [`Self::advance`] with the
    /// number of samples actually placed afterwards.
    pub fn place(&mut self, pts_ns: u64, len: usize, discont: bool) -> Placement {
        let t0 = *self.t0.get_or_insert(pts_ns);
        let expected = t0 + self.placed * NS_PER_SAMPLE;
        let deviation = pts_ns as i128 - expected as i128;
        let tolerance = if discont {
            TOLERANCE_NS
        } else {
            DRIFT_TOLERANCE_NS
        };
        if deviation.unsigned_abs() <= tolerance as u128 {
            self.deviating_since = None;
            return Placement::Skip(0);
        }
        if !discont {
            let since = *self.deviating_since.get_or_insert(self.placed);
            if (self.placed - since) * NS_PER_SAMPLE < DISCONT_WAIT_NS {
                return Placement::Skip(0);
            }
        }
        self.deviating_since = None;
        if deviation.unsigned_abs() > MAX_FILL_NS as u128 {
            self.t0 = Some(pts_ns.saturating_sub(self.placed * NS_PER_SAMPLE));
            return Placement::Resync;
        }
        let samples = (deviation.unsigned_abs() / NS_PER_SAMPLE as u128) as u64;
        if deviation > 0 {
            Placement::FillThenAccept(samples)
        } else {
            Placement::Skip((samples as usize).min(len))
        }
    }

    /// Where the first buffer of a new source session goes (a reconnect). The time the source
    /// was away is not filled: silence made now for a stretch that is already past would reach a
    /// live receiver a whole gap late (its jitter buffer discards it) and burst through the
    /// outputs' 1 s queues, whose drops would then read as an encoder falling behind. The
    /// timeline is re-anchored at the new pts instead, so output timestamps jump by the gap, as
    /// after a camera pause. Within jitter, or overlapping, it is placed like any flagged buffer.
    pub fn place_session_start(&mut self, pts_ns: u64, len: usize) -> Placement {
        if let Some(t0) = self.t0 {
            let expected = t0 + self.placed * NS_PER_SAMPLE;
            if pts_ns > expected + TOLERANCE_NS {
                self.deviating_since = None;
                self.t0 = Some(pts_ns.saturating_sub(self.placed * NS_PER_SAMPLE));
                return Placement::Resync;
            }
        }
        self.place(pts_ns, len, true)
    }

    pub fn advance(&mut self, samples: u64) {
        self.placed += samples;
    }

    /// pts of the next sample to be placed.
    pub fn next_pts(&self) -> u64 {
        self.pts_of(self.placed)
    }

    /// pts of timeline sample `index`.
    pub fn pts_of(&self, index: u64) -> u64 {
        self.t0.unwrap_or(0) + index * NS_PER_SAMPLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Feed 20 ms buffers; `pts` gives each buffer's stamp. Returns the placements.
    fn feed(
        aligner: &mut PtsAligner,
        n: usize,
        pts: impl Fn(usize) -> u64,
        discont: bool,
    ) -> Vec<Placement> {
        (0..n)
            .map(|i| {
                let p = aligner.place(pts(i), 320, discont);
                let placed = match p {
                    Placement::FillThenAccept(f) => f + 320,
                    Placement::Skip(s) => 320 - s as u64,
                    Placement::Resync => 320,
                };
                aligner.advance(placed);
                p
            })
            .collect()
    }

    #[test]
    fn jitter_is_absorbed_by_counting() {
        let mut a = PtsAligner::new();
        let jitter = [0i64, 15, -20, 35, -39, 5, 150, -190];
        let out = feed(
            &mut a,
            300,
            |i| (1000 * MS as i64 + i as i64 * 20 * MS as i64 + jitter[i % 8] * MS as i64) as u64,
            false,
        );
        assert!(out.iter().all(|p| *p == Placement::Skip(0)));
    }

    #[test]
    fn flagged_gap_is_filled_at_once() {
        let mut a = PtsAligner::new();
        feed(&mut a, 10, |i| i as u64 * 20 * MS, false);
        assert_eq!(
            a.place(300 * MS, 320, true),
            Placement::FillThenAccept(1600)
        );
    }

    #[test]
    fn unflagged_offset_is_corrected_after_the_wait() {
        let mut a = PtsAligner::new();
        feed(&mut a, 10, |i| i as u64 * 20 * MS, false);
        // From now on every buffer is 300 ms late.
        let out = feed(&mut a, 60, |i| (10 + i as u64) * 20 * MS + 300 * MS, false);
        let fills: Vec<_> = out.iter().filter(|p| **p != Placement::Skip(0)).collect();
        assert_eq!(fills, vec![&Placement::FillThenAccept(4800)]);
        let corrected_at = out.iter().position(|p| *p != Placement::Skip(0)).unwrap();
        assert_eq!(corrected_at, 50, "after 1 s of 20 ms buffers");
    }

    #[test]
    fn overlap_is_skipped_and_long_jump_resyncs() {
        let mut a = PtsAligner::new();
        feed(&mut a, 10, |i| i as u64 * 20 * MS, false);
        assert_eq!(a.place(150 * MS, 320, true), Placement::Skip(320));
        assert_eq!(a.place(60_000 * MS, 320, true), Placement::Resync);
    }

    #[test]
    fn a_new_session_after_a_short_outage_is_re_anchored_not_filled() {
        let mut a = PtsAligner::new();
        feed(&mut a, 10, |i| i as u64 * 20 * MS, false);
        // The source was away 1.2 s: a lost-packet gap this long would be filled (below
        // MAX_FILL_NS), a reconnect's is not.
        assert_eq!(
            a.clone().place(1400 * MS, 320, true),
            Placement::FillThenAccept(19200)
        );
        assert_eq!(a.place_session_start(1400 * MS, 320), Placement::Resync);
        a.advance(320);
        assert_eq!(
            a.next_pts(),
            1420 * MS,
            "the timeline continues at the new pts"
        );
        assert_eq!(a.place(1420 * MS, 320, false), Placement::Skip(0));
    }

    #[test]
    fn a_new_session_within_jitter_or_overlapping_is_placed_as_flagged() {
        let mut a = PtsAligner::new();
        assert_eq!(a.place_session_start(5 * MS, 320), Placement::Skip(0));
        a.advance(320);
        feed(&mut a, 9, |i| (i as u64 + 1) * 20 * MS + 5 * MS, false);
        assert_eq!(a.place_session_start(230 * MS, 320), Placement::Skip(0));
        assert_eq!(a.place_session_start(150 * MS, 320), Placement::Skip(320));
    }
}

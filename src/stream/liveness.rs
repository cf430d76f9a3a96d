//! When a source session counts as dead: no data at all, or one track gone quiet while the other
//! flows (a camera whose audio encoder died keeps sending video; the speaker outputs would stay
//! silent for good while the stream reads "running").

use std::time::{Duration, Instant};

/// The shortest wait for a session's first data, whatever the stall timeout: a source is given
/// this long to connect, answer the RTSP handshake and preroll its decoders.
pub const FIRST_DATA_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a session waited without data, if that is a stall: more than `stall_timeout` once
/// data has flowed, more than `max(stall_timeout, FIRST_DATA_TIMEOUT)` before.
pub fn stalled(flowing: bool, waited: Duration, stall_timeout: Duration) -> Option<Duration> {
    let limit = if flowing {
        stall_timeout
    } else {
        stall_timeout.max(FIRST_DATA_TIMEOUT)
    };
    (waited > limit).then_some(limit)
}

/// How close to its known duration a quiet source must be to count as ended.
const END_TOLERANCE_NS: u64 = 500_000_000;

/// Whether this session's source (position and duration of its own pipeline) has reached the end
/// of a known duration; live sources have none.
pub fn reached_end(position_ns: Option<u64>, duration_ns: Option<u64>) -> bool {
    match (position_ns, duration_ns) {
        (Some(p), Some(d)) if d > 0 => p.saturating_add(END_TOLERANCE_NS) >= d,
        _ => false,
    }
}

/// One track's deliveries (audio buffers or video frames) as the supervisor samples them.
#[derive(Debug, Clone, Copy)]
pub struct TrackWatch {
    count: u64,
    since: Instant,
    flowed: bool,
}

impl TrackWatch {
    pub fn new(count: u64, now: Instant) -> Self {
        TrackWatch {
            count,
            since: now,
            flowed: false,
        }
    }

    /// Take a new sample of the track's counter; true when it moved.
    pub fn observe(&mut self, count: u64, now: Instant) -> bool {
        if count == self.count {
            return false;
        }
        *self = TrackWatch {
            count,
            since: now,
            flowed: true,
        };
        true
    }

    /// Whether the track has delivered anything this session.
    pub fn flowed(&self) -> bool {
        self.flowed
    }

    /// The session's first data arrived (on either track): a track that has not delivered yet
    /// is timed from now, since a camera's tracks start within moments of each other, and the
    /// connection itself is up.
    pub fn session_flowing(&mut self, now: Instant) {
        if !self.flowed {
            self.since = now;
        }
    }

    /// If this track is dead while the session delivers: expected (see
    /// `Stream::expected_tracks`) and quiet for longer than the stall timeout. The limit it
    /// exceeded.
    pub fn dead(&self, expected: bool, now: Instant, stall_timeout: Duration) -> Option<Duration> {
        let quiet = now.saturating_duration_since(self.since);
        (expected && quiet > stall_timeout).then_some(stall_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_source_stalls_after_the_stall_timeout() {
        let t = Duration::from_millis(1500);
        assert_eq!(stalled(true, Duration::from_millis(1400), t), None);
        assert_eq!(stalled(true, Duration::from_millis(1600), t), Some(t));
    }

    #[test]
    fn a_quiet_source_at_its_known_end_has_ended() {
        let d = 10_021_200_000;
        assert!(reached_end(Some(d), Some(d)));
        assert!(reached_end(Some(d - 400_000_000), Some(d)));
        assert!(!reached_end(Some(d / 2), Some(d))); // a clip that stalls midway
        assert!(!reached_end(Some(d), None)); // a live camera has no duration
        assert!(!reached_end(None, Some(d)));
        assert!(!reached_end(Some(0), Some(0)));
    }

    #[test]
    fn a_starting_source_gets_at_least_the_first_data_timeout() {
        let t = Duration::from_millis(1500);
        assert_eq!(stalled(false, Duration::from_secs(10), t), None);
        assert_eq!(
            stalled(false, FIRST_DATA_TIMEOUT + Duration::from_millis(1), t),
            Some(FIRST_DATA_TIMEOUT)
        );
        let long = FIRST_DATA_TIMEOUT * 2;
        assert_eq!(stalled(false, FIRST_DATA_TIMEOUT * 3 / 2, long), None);
        assert_eq!(stalled(false, long * 2, long), Some(long));
    }

    #[test]
    fn a_track_that_went_quiet_is_dead_when_expected() {
        let t0 = Instant::now();
        let t = Duration::from_millis(1500);
        let mut audio = TrackWatch::new(0, t0);
        assert!(audio.observe(5, t0 + Duration::from_millis(100)));
        assert!(!audio.observe(5, t0 + Duration::from_millis(200)));
        let later = t0 + Duration::from_millis(1700);
        assert_eq!(audio.dead(true, later, t), Some(t));
        assert_eq!(
            audio.dead(false, later, t),
            None,
            "ended, or not in the source"
        );
        assert_eq!(audio.dead(true, t0 + Duration::from_millis(1500), t), None);
    }

    #[test]
    fn a_track_that_never_delivered_is_timed_from_the_session_s_first_data() {
        let t0 = Instant::now();
        let t = Duration::from_millis(1500);
        let mut audio = TrackWatch::new(0, t0);
        // Connecting took 10 s; then the video came, the audio did not.
        let first_data = t0 + Duration::from_secs(10);
        audio.session_flowing(first_data);
        assert_eq!(
            audio.dead(true, first_data + Duration::from_secs(1), t),
            None
        );
        assert_eq!(
            audio.dead(true, first_data + Duration::from_secs(2), t),
            Some(t)
        );
        // A track that has delivered keeps its own clock.
        let mut video = TrackWatch::new(0, t0);
        video.observe(1, t0 + Duration::from_secs(9));
        video.session_flowing(first_data);
        assert_eq!(
            video.dead(true, t0 + Duration::from_millis(10_600), t),
            Some(t)
        );
    }
}

//! A stream's status as operators see it (API, metrics, systemd STATUS, SSE events), and the
//! reconnect policy that moves it between states.

use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a stream is in its life, after fallbacksrc's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Connecting: the source was (re)started and has not delivered data yet.
    Buffering,
    /// Data is flowing.
    Running,
    /// The source failed, ended or stalled; waiting to reconnect.
    Retrying,
    /// Finished (end of a file, stop requested, or no reconnect policy).
    Stopped,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Buffering => "buffering",
            StreamState::Running => "running",
            StreamState::Retrying => "retrying",
            StreamState::Stopped => "stopped",
        }
    }
}

/// The current status of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub state: StreamState,
    /// Unix time (ms) of the last state change.
    pub since_unix_ms: u64,
    pub last_error: Option<String>,
    /// Reconnect attempts so far.
    pub reconnects: u64,
}

impl Default for StreamStatus {
    fn default() -> Self {
        StreamStatus {
            state: StreamState::Buffering,
            since_unix_ms: unix_ms(),
            last_error: None,
            reconnects: 0,
        }
    }
}

/// One change of state, for the server-sent event stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    pub stream: String,
    /// `up` (data flows), `down` (a running stream stopped delivering), `retrying` (a reconnect
    /// wait began), `stopped`, or `speech_start` / `speech_end` (a speaker slot's voice started
    /// or stopped speaking; `detail` names the slot, its face's track and the pts).
    pub kind: &'static str,
    pub unix_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Speech events: which speaker slot, the track of the face holding it, and the pts (ns) of
    /// the audio where the speech starts or ends.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub speech: Option<SpeechEventInfo>,
}

/// What a `speech_start` / `speech_end` event says besides its kind.
#[derive(Debug, Clone, Serialize)]
pub struct SpeechEventInfo {
    pub slot: usize,
    pub track_id: Option<u64>,
    pub pts: u64,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Exponential backoff between reconnect attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Each wait is scaled by a random factor in [1 - jitter, 1 + jitter], so that many cameras
    /// that dropped together do not all reconnect in the same instant.
    pub jitter: f64,
}

impl ReconnectPolicy {
    /// The wait before attempt `n` (0-based since the source last delivered data).
    pub fn delay(&self, attempt: u32, random_unit: f64) -> Duration {
        let base = self.initial.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let factor = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * random_unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

/// A small, seedless random number in [0, 1) for jitter (no crate needed for this).
pub fn jitter_unit() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // xorshift of the clock's nanoseconds: enough to spread reconnects, not for cryptography.
    let mut x = nanos as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1_000_000) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_fields_appear_only_on_speech_events() {
        let mut e = StreamEvent {
            stream: "door".into(),
            kind: "up",
            unix_ms: 5,
            detail: None,
            speech: None,
        };
        let up = serde_json::to_value(&e).unwrap();
        assert_eq!(
            up,
            serde_json::json!({"stream": "door", "kind": "up", "unix_ms": 5})
        );
        e.kind = "speech_start";
        e.speech = Some(SpeechEventInfo {
            slot: 1,
            track_id: Some(7),
            pts: 40,
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            (&v["slot"], &v["track_id"], &v["pts"]),
            (&1.into(), &7.into(), &40.into())
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let p = ReconnectPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
            jitter: 0.2,
        };
        let mid: Vec<u128> = (0..6).map(|n| p.delay(n, 0.5).as_millis()).collect();
        assert_eq!(mid, vec![500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(p.delay(0, 0.0).as_millis(), 400);
        assert_eq!(p.delay(3, 1.0).as_millis(), 4800);
    }
}

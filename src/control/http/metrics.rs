//! `GET /metrics`: Prometheus text exposition (format 0.0.4), every family labelled by stream.

use crate::media::ingest::AUDIO_RATE;
use crate::stream::{Stream, StreamState};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the `avsepd_latency_seconds` histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 8] = crate::media::latency::HISTOGRAM_BOUNDS_S;

const STATES: [StreamState; 4] = [
    StreamState::Buffering,
    StreamState::Running,
    StreamState::Retrying,
    StreamState::Stopped,
];

type Getter = fn(&Stream) -> f64;

fn count(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// Families with one sample per stream: name, type, help, value.
const SIMPLE: [(&str, &str, &str, Getter); 24] = [
    (
        "avsepd_stream_up",
        "gauge",
        "1 while the stream's source is delivering",
        |s| s.counters.up.load(Ordering::Relaxed) as u8 as f64,
    ),
    (
        "avsepd_reconnects_total",
        "counter",
        "reconnect attempts of the stream's source",
        |s| count(&s.counters.reconnects),
    ),
    (
        "avsepd_recoveries_total",
        "counter",
        "times the stream's source came back after a reconnect",
        |s| count(&s.counters.recoveries),
    ),
    (
        "avsepd_audio_in_samples_total",
        "counter",
        "audio samples placed on the timeline",
        |s| count(&s.counters.audio_in_samples),
    ),
    (
        "avsepd_audio_out_samples_total",
        "counter",
        "audio samples sent per slot 0",
        |s| count(&s.counters.audio_out_samples),
    ),
    (
        "avsepd_audio_dropped_buffers_total",
        "counter",
        "audio buffers dropped at ingest (channel full)",
        |s| count(&s.counters.audio_dropped_buffers),
    ),
    (
        "avsepd_audio_gap_samples_total",
        "counter",
        "silence inserted for timestamp gaps",
        |s| count(&s.counters.audio_gap_samples),
    ),
    (
        "avsepd_video_in_frames_total",
        "counter",
        "video frames decoded",
        |s| count(&s.counters.video_in_frames),
    ),
    (
        "avsepd_video_out_frames_total",
        "counter",
        "overlay frames sent",
        |s| count(&s.counters.video_out_frames),
    ),
    (
        "avsepd_video_dropped_frames_total",
        "counter",
        "video frames dropped at ingest (channel full)",
        |s| count(&s.counters.video_dropped_frames),
    ),
    (
        "avsepd_latency_p99_seconds",
        "gauge",
        "ingest-to-RTP-send latency, 99th percentile of the recent packets",
        |s| s.latency.stats().p99_ms / 1000.0,
    ),
    (
        "avsepd_dsp_busy_seconds_total",
        "counter",
        "time the DSP stage spent working",
        |s| count(&s.counters.dsp_busy_ns) / 1e9,
    ),
    (
        "avsepd_dsp_real_time_factor",
        "gauge",
        "DSP busy seconds per second of audio processed (below 1 keeps up with real time)",
        real_time_factor,
    ),
    (
        "avsepd_faces_observed_total",
        "counter",
        "face observations (one per visible track per frame)",
        |s| count(&s.counters.faces_observed),
    ),
    (
        "avsepd_tracks_started_total",
        "counter",
        "face tracks started",
        |s| count(&s.counters.tracks_started),
    ),
    (
        "avsepd_audio_out_dropped_buffers_total",
        "counter",
        "speaker audio buffers the RTP outputs dropped (encoder more than 1 s behind)",
        |s| count(&s.counters.audio_out_dropped_buffers),
    ),
    (
        "avsepd_video_out_dropped_frames_total",
        "counter",
        "overlay frames the RTP output dropped (encoder more than 1 s behind)",
        |s| count(&s.counters.video_out_dropped_frames),
    ),
    (
        "avsepd_face_frames_dropped_total",
        "counter",
        "frames of faces the separation stage could not take in time",
        |s| count(&s.counters.face_frames_dropped),
    ),
    (
        "avsepd_face_chunks_stale_total",
        "counter",
        "audio chunks separated with faces seen more than 200 ms before them (vision behind)",
        |s| count(&s.counters.face_chunks_stale),
    ),
    (
        "avsepd_speaking_slots",
        "gauge",
        "speaker slots whose voice is speaking now",
        |s| {
            s.counters
                .speaking_slots
                .load(Ordering::Relaxed)
                .count_ones() as f64
        },
    ),
    (
        "avsepd_speech_segments_total",
        "counter",
        "stretches of speech started, all speaker slots together",
        |s| count(&s.counters.speech_segments),
    ),
    (
        "avsepd_vision_busy_seconds_total",
        "counter",
        "time the vision stage spent detecting, tracking and cropping",
        |s| count(&s.counters.vision_busy_ns) / 1e9,
    ),
    (
        "avsepd_vision_skipped_frames_total",
        "counter",
        "frames the vision stage skipped while a stop drained the queue",
        |s| count(&s.counters.vision_skipped_frames),
    ),
    (
        "avsepd_vision_track_only_frames_total",
        "counter",
        "frames the vision stage tracked without the detector to keep up with the camera",
        |s| count(&s.counters.vision_track_only_frames),
    ),
];

fn real_time_factor(s: &Stream) -> f64 {
    let audio_s = count(&s.counters.audio_in_samples) / AUDIO_RATE as f64;
    if audio_s > 0.0 {
        count(&s.counters.dsp_busy_ns) / 1e9 / audio_s
    } else {
        0.0
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as Prometheus reads it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The exposition text for these streams.
pub fn metrics(streams: &[Arc<Stream>]) -> String {
    let mut out = String::new();
    let header = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    for (name, kind, help, get) in SIMPLE {
        header(&mut out, name, kind, help);
        for s in streams {
            let stream = label(&s.spec.name);
            let _ = writeln!(out, "{name}{{stream=\"{stream}\"}} {}", value(get(s)));
        }
    }

    let name = "avsepd_build_info";
    header(
        &mut out,
        name,
        "gauge",
        "1, labelled with the version and where the models run (cuda, cpu, or none yet)",
    );
    let _ = writeln!(
        out,
        "{name}{{version=\"{}\",execution_provider=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        label(crate::model::runtime::active_provider())
    );

    let name = "avsepd_stream_state";
    header(
        &mut out,
        name,
        "gauge",
        "1 for the state the stream is in (buffering, running, retrying, stopped), else 0",
    );
    for s in streams {
        let stream = label(&s.spec.name);
        let now = s.state();
        for state in STATES {
            let on = u8::from(state == now);
            let state = state.as_str();
            let _ = writeln!(out, "{name}{{stream=\"{stream}\",state=\"{state}\"}} {on}");
        }
    }

    let name = "avsepd_latency_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "ingest-to-RTP-send latency of the recent packets",
    );
    for s in streams {
        let stream = label(&s.spec.name);
        let (buckets, total, sum) = s.latency.histogram();
        for (le, n) in LATENCY_BUCKETS.iter().zip(&buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{stream=\"{stream}\",le=\"{}\"}} {n}",
                value(*le)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{stream=\"{stream}\",le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(out, "{name}_sum{{stream=\"{stream}\"}} {}", value(sum));
        let _ = writeln!(out, "{name}_count{{stream=\"{stream}\"}} {total}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn values_print_as_prometheus_floats() {
        assert_eq!(value(1.0), "1");
        assert_eq!(value(0.05), "0.05");
        assert_eq!(value(f64::INFINITY), "+Inf");
    }
}

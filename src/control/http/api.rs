//! The JSON endpoints, readiness, and the SDP of each output (generated from the stream's spec,
//! never read from disk: a request can only name a file this module would generate).

use super::Response;
use crate::media::sdp::SdpPayload;
use crate::stream::{Stream, StreamState};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) fn find<'a>(streams: &'a [Arc<Stream>], name: &str) -> Option<&'a Arc<Stream>> {
    streams.iter().find(|s| s.spec.name == name)
}

pub(super) fn no_such_stream(name: &str) -> Response {
    // The name is echoed as JSON, never as markup.
    Response::json(
        404,
        &json!({ "error": format!("no stream named `{name}`") }),
    )
}

/// 200 while every stream is running; else 503 naming each one that is not, with its state and
/// last error.
pub(super) fn readyz(streams: &[Arc<Stream>]) -> Response {
    let not_ready: Vec<Value> = streams
        .iter()
        .filter_map(|s| {
            let status = s.status();
            (status.state != StreamState::Running).then(|| {
                json!({
                    "name": s.spec.name,
                    "state": status.state,
                    "since_unix_ms": status.since_unix_ms,
                    "last_error": status.last_error,
                })
            })
        })
        .collect();
    let ready = not_ready.is_empty();
    let body = json!({ "ready": ready, "not_ready": not_ready });
    Response::json(if ready { 200 } else { 503 }, &body)
}

pub(super) fn streams_json(streams: &[Arc<Stream>]) -> Value {
    Value::Array(streams.iter().map(|s| stream_json(s)).collect())
}

/// A stream as the API shows it: name, redacted source, status, live counters.
pub(super) fn stream_json(s: &Stream) -> Value {
    let c = &s.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "name": s.spec.name,
        "source": crate::media::uri::redact(&s.spec.ingest.uri),
        "status": s.status(),
        "up": c.up.load(Ordering::Relaxed),
        "reconnects": load(&c.reconnects),
        "audio_in_samples": load(&c.audio_in_samples),
        "audio_out_samples": load(&c.audio_out_samples),
        "audio_dropped_buffers": load(&c.audio_dropped_buffers),
        "video_in_frames": load(&c.video_in_frames),
        "video_out_frames": load(&c.video_out_frames),
        "video_dropped_frames": load(&c.video_dropped_frames),
        "speaking_slots": speaking_slots(load(&c.speaking_slots)),
        "source_slot": load(&c.source_slot).checked_sub(1),
        "speech_segments": load(&c.speech_segments),
        "outputs": format!("/api/streams/{}/outputs", s.spec.name),
    })
}

/// The speaker slots whose bit is set in `mask` (src/stream/speech.rs), in order.
fn speaking_slots(mask: u64) -> Vec<u32> {
    (0..64).filter(|k| mask & (1 << k) != 0).collect()
}

fn codec_name(payload: SdpPayload) -> &'static str {
    match payload {
        SdpPayload::Opus => "opus",
        SdpPayload::L16 => "l16",
        SdpPayload::H264 => "h264",
    }
}

pub(super) fn outputs_json(s: &Stream) -> Value {
    let list: Vec<Value> = s
        .spec
        .rtp_outputs()
        .into_iter()
        .map(|o| {
            json!({
                "kind": o.kind,
                "slot": o.slot,
                "host": o.host,
                "port": o.port,
                "codec": codec_name(o.payload),
                "sdp": format!("/sdp/{}", o.file),
            })
        })
        .collect();
    json!({ "stream": s.spec.name, "outputs": list })
}

/// The SDP text of the output whose file name is `file`, if any stream has one.
pub(super) fn sdp_for(streams: &[Arc<Stream>], file: &str) -> Option<String> {
    streams
        .iter()
        .flat_map(|s| s.spec.rtp_outputs())
        .find(|o| o.file == file)
        .map(|o| o.sdp())
}

#[cfg(test)]
mod tests {
    #[test]
    fn speaking_slots_lists_the_set_bits() {
        assert_eq!(super::speaking_slots(0), Vec::<u32>::new());
        assert_eq!(super::speaking_slots(0b1010), [1, 3]);
        assert_eq!(super::speaking_slots(1 << 63), [63]);
    }
}

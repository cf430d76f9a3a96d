//! GStreamer side of avsepd: ingest (decode to appsinks), egress (RTP + SDP), recordings, and an
//! embedded RTSP server for the demo and the tests.
//!
//! GStreamer owns decoding, encoding and the network; compute stages are plain threads fed by the
//! bounded channels created here.

pub mod egress;
pub mod ingest;
pub mod latency;
pub mod record;
pub mod rtsp_server;
pub mod sdp;
pub mod templates;
pub mod uri;

use std::sync::Once;

/// Initialise GStreamer once per process. Safe to call from every entry point.
pub fn init() -> anyhow::Result<()> {
    static INIT: Once = Once::new();
    let mut result = Ok(());
    INIT.call_once(|| result = gstreamer::init());
    result.map_err(|e| anyhow::anyhow!("GStreamer failed to initialise: {e}"))
}

/// One second in GStreamer's nanosecond time base.
pub const NS_PER_SEC: u64 = 1_000_000_000;

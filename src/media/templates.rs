//! Pipeline templates from `pipelines/`, compiled in.
//!
//! A template holds structure only; configured values are set on named elements by the caller, so
//! nothing from a config file or a URL is ever parsed as pipeline syntax.

use anyhow::{Context, Result, anyhow};
use gstreamer as gst;
use gstreamer::prelude::*;

pub const INGEST_AUDIO: &str = include_str!("../../pipelines/ingest-audio.gst");
pub const INGEST_VIDEO: &str = include_str!("../../pipelines/ingest-video.gst");
pub const EGRESS_AUDIO_OPUS: &str = include_str!("../../pipelines/egress-audio-opus.gst");
pub const EGRESS_AUDIO_L16: &str = include_str!("../../pipelines/egress-audio-l16.gst");
pub const EGRESS_OVERLAY_RTP: &str = include_str!("../../pipelines/egress-overlay-rtp.gst");
pub const RECORD_OVERLAY_MP4: &str = include_str!("../../pipelines/record-overlay-mp4.gst");
pub const RTSP_SERVE_MP4_L16: &str = include_str!("../../pipelines/rtsp-serve-mp4-l16.gst");
pub const RTSP_SERVE_MP4_AAC: &str = include_str!("../../pipelines/rtsp-serve-mp4-aac.gst");

/// Build a bin from a template. Unlinked pads are NOT ghosted: an optional pad such as
/// textoverlay's `text_sink` would then count as linked and the element would wait for text
/// forever. Use [`ghost_sink`] for the one pad a branch needs.
pub fn bin(template: &str, name: &str) -> Result<gst::Bin> {
    let bin = gst::parse::bin_from_description(template.trim(), false)
        .with_context(|| format!("building the `{name}` pipeline from its template"))?;
    bin.set_property("name", name);
    Ok(bin)
}

/// Expose the `sink` pad of the named element as the bin's `sink` pad.
pub fn ghost_sink(bin: &gst::Bin, element_name: &str) -> Result<()> {
    let target = element(bin, element_name)?
        .static_pad("sink")
        .ok_or_else(|| anyhow!("`{element_name}` has no sink pad"))?;
    let ghost = gst::GhostPad::builder_with_target(&target)?
        .name("sink")
        .build();
    bin.add_pad(&ghost)?;
    Ok(())
}

/// A named element inside a bin built from a template (a missing name is a bug in the template).
pub fn element(bin: &gst::Bin, name: &str) -> Result<gst::Element> {
    bin.by_name(name)
        .ok_or_else(|| anyhow!("pipeline template has no element named `{name}`"))
}

//! The RTP outputs a stream opens, in one place: `Stream::run` writes their SDP files from this
//! list and the control API lists and serves the same entries.

use super::{SeparationSpec, StreamSpec};
use crate::media::egress::RtpAudioCodec;
use crate::media::sdp::{self, SdpPayload};
use crate::model::Separator;

/// One RTP output of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpOutput {
    /// `speaker` or `overlay`.
    pub kind: &'static str,
    pub slot: Option<usize>,
    pub host: String,
    pub port: u16,
    pub payload: SdpPayload,
    /// SDP file name (`NAME-speaker-k.sdp`, `NAME-overlay.sdp`).
    pub file: String,
    /// SDP session name.
    pub session: String,
}

impl RtpOutput {
    /// The SDP text announcing this output.
    pub fn sdp(&self) -> String {
        sdp::describe(&self.session, &self.host, self.port, self.payload)
    }
}

impl StreamSpec {
    /// The separator this stream runs, loaded and checked (the error names the model file).
    pub fn separator(&self) -> anyhow::Result<Separator> {
        Ok(match &self.separation {
            SeparationSpec::Bypass => Separator::Bypass,
            SeparationSpec::Model { path, slots } => Separator::Faces(Box::new(
                crate::model::FaceSeparator::load(path, *slots, 1)?,
            )),
        })
    }

    /// Speaker slots that carry audio (one place decides: outputs, SDP files, the separator).
    pub fn speaker_slots(&self) -> usize {
        match &self.separation {
            SeparationSpec::Bypass => 1,
            SeparationSpec::Model { slots, .. } => *slots,
        }
    }

    /// True when the source waits for the compute stages (a file processed offline): nothing is
    /// live, so the stages may wait for each other and skip nothing to keep up.
    pub fn source_waits(&self) -> bool {
        self.ingest.backpressure == crate::media::ingest::Backpressure::Wait
    }

    /// The RTP outputs of this stream (none without RTP egress).
    pub fn rtp_outputs(&self) -> Vec<RtpOutput> {
        let Some(rtp) = &self.rtp else {
            return Vec::new();
        };
        let payload = match rtp.codec {
            RtpAudioCodec::Opus => SdpPayload::Opus,
            RtpAudioCodec::L16 => SdpPayload::L16,
        };
        let mut list: Vec<RtpOutput> = (0..self.speaker_slots())
            .map(|k| RtpOutput {
                kind: "speaker",
                slot: Some(k),
                host: rtp.host.clone(),
                port: rtp.base_port + 2 * k as u16,
                payload,
                file: format!("{}-speaker-{k}.sdp", self.name),
                session: format!("avsepd {} speaker {k}", self.name),
            })
            .collect();
        if rtp.overlay {
            list.push(RtpOutput {
                kind: "overlay",
                slot: None,
                host: rtp.host.clone(),
                port: rtp.overlay_port,
                payload: SdpPayload::H264,
                file: format!("{}-overlay.sdp", self.name),
                session: format!("avsepd {} overlay", self.name),
            });
        }
        list
    }
}

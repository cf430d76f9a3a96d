//! SDP files announcing each RTP output, so a player (gst-launch's sdpdemux, ffplay, VLC) can
//! open it directly.

use anyhow::{Context, Result};
use std::path::Path;

/// The payload an RTP output carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpPayload {
    /// Opus, always announced as 48 kHz stereo as RFC 7587 requires; the stream itself is mono.
    Opus,
    /// 16-bit big-endian PCM, 16 kHz mono.
    L16,
    /// H.264, packetization-mode 1, parameter sets in band.
    H264,
}

/// The SDP text for one RTP output sent to `host:port` with payload type 96.
pub fn describe(session: &str, host: &str, port: u16, payload: SdpPayload) -> String {
    let family = if host.contains(':') { "IP6" } else { "IP4" };
    let (media, rtpmap, fmtp) = match payload {
        SdpPayload::Opus => ("audio", "OPUS/48000/2", Some("sprop-stereo=0")),
        SdpPayload::L16 => ("audio", "L16/16000/1", None),
        SdpPayload::H264 => ("video", "H264/90000", Some("packetization-mode=1")),
    };
    let mut sdp = format!(
        "v=0\r\no=- 0 0 IN {family} {host}\r\ns={session}\r\nc=IN {family} {host}\r\nt=0 0\r\n\
         m={media} {port} RTP/AVP 96\r\na=rtpmap:96 {rtpmap}\r\n"
    );
    if let Some(f) = fmtp {
        sdp.push_str(&format!("a=fmtp:96 {f}\r\n"));
    }
    sdp.push_str("a=recvonly\r\n");
    sdp
}

/// Write a file atomically (temp file + rename) so a player never reads half an SDP.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating SDP directory `{}`", dir.display()))?;
    }
    let tmp = path.with_extension("sdp.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing `{}`", tmp.display()))?;
    // Readable by everyone whatever the umask (the unit's is 0077): players run as other users,
    // and an SDP holds no secret (host and ports only).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("writing `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l16_sdp_parses_with_gstreamer() {
        crate::media::init().expect("GStreamer");
        let text = describe("door speaker 0", "127.0.0.1", 5000, SdpPayload::L16);
        let msg = gstreamer_sdp::SDPMessage::parse_buffer(text.as_bytes()).expect("valid SDP");
        let media = msg.media(0).expect("one media");
        assert_eq!(media.port(), 5000);
        assert_eq!(media.attribute_val("rtpmap"), Some("96 L16/16000/1"));
    }
}

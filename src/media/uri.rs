//! Turning what a user typed (a URI or a plain path) into a URI GStreamer can open.

use anyhow::{Result, bail};
use std::path::Path;

/// `rtsp://...`, `file://...`, `http(s)://...` pass through; a plain path becomes a `file://` URI.
/// A path that does not exist is an error naming it (GStreamer's own message is much vaguer).
pub fn to_uri(input: &str) -> Result<String> {
    if input.contains("://") {
        return Ok(input.to_string());
    }
    let path = Path::new(input);
    if !path.exists() {
        bail!("input file `{input}` does not exist");
    }
    let abs = std::fs::canonicalize(path)?;
    Ok(gstreamer::glib::filename_to_uri(&abs, None)
        .map_err(|e| anyhow::anyhow!("`{input}` cannot be turned into a file URI: {e}"))?
        .to_string())
}

/// True for sources that deliver in real time (a camera); files are processed as fast as possible.
pub fn is_live(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    [
        "rtsp://", "rtsps://", "rtspt://", "rtspu://", "udp://", "srt://",
    ]
    .iter()
    .any(|s| lower.starts_with(s))
}

/// The URI with any credentials hidden, for logs, errors and the API (one rule for the whole
/// program: the config module's, which also covers `@` inside passwords and token parameters).
pub fn redact(uri: &str) -> String {
    crate::config::redact_url(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("rtsp://u:p@h/x"), "rtsp://***@h/x");
        assert_eq!(redact("rtsp://h/x"), "rtsp://h/x");
    }

    #[test]
    fn liveness_by_scheme() {
        assert!(is_live("rtsp://127.0.0.1/x"));
        assert!(!is_live("file:///tmp/a.mp4"));
    }
}

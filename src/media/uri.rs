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

/// GStreamer's own text about a source (an error's debug string) with the source's URI and
/// every other URL in it (a redirect target) redacted by [`redact`]: element messages quote
/// locations verbatim, and this text reaches the journal, `/readyz` and the event stream. A URL
/// runs to the next whitespace, quote or angle bracket (a password may hold `;`, `,` or `)`).
pub fn scrub(text: &str, uri: &str) -> String {
    let text = if uri.is_empty() {
        text.to_owned()
    } else {
        text.replace(uri, &redact(uri))
    };
    let is_scheme = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("://") {
        let start = rest[..i].rfind(|c: char| !is_scheme(c)).map_or(0, |j| {
            j + rest[j..].chars().next().map_or(1, char::len_utf8)
        });
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || "\"'<>`".contains(c))
            .map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..start]);
        out.push_str(&redact(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_credentials_from_element_text() {
        let uri = "https://admin:pw@cam.local/mjpg?token=s3cret";
        let text =
            format!("Unauthorized (401), URL: {uri}, Redirect to: http://u:p@other/x (secondary)");
        let s = scrub(&text, uri);
        assert!(
            !s.contains("pw") && !s.contains("s3cret") && !s.contains("u:p"),
            "{s}"
        );
        assert!(s.contains("https://***@cam.local/mjpg"), "{s}");
        assert!(s.contains("http://***@other/x (secondary)"), "{s}");
        assert_eq!(scrub("no url here", uri), "no url here");
        assert_eq!(scrub("see rtsp://h/x", ""), "see rtsp://h/x");
        assert_eq!(scrub("a@b: rtsp://h/x.", ""), "a@b: rtsp://h/x.");
        // Sub-delimiters in a password, a token in another URL's query.
        let s = scrub(
            "Redirect to: http://u:p;w,)x@other/x, then 'https://h/y?token=t0k'",
            "",
        );
        assert!(!s.contains("p;w") && !s.contains("t0k"), "{s}");
        assert!(s.contains("http://***@other/x,"), "{s}");
        // Non-ASCII before a URL does not split a character.
        assert_eq!(scrub("é:rtsp://h/x", ""), "é:rtsp://h/x");
    }

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

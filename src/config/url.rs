//! Stream URL checks and credential redaction.
//!
//! Camera URLs routinely embed `user:password@`. Anything that may reach a log, an error message
//! or the control API goes through [`redact_url`]; the checks here build their messages from the
//! redacted form only.

/// URL schemes the ingest pipeline can open.
pub const URL_SCHEMES: &[&str] = &["rtsp", "rtsps", "rtspt", "file", "http", "https"];

/// Query parameter names (substrings, case-insensitive) whose values are treated as secrets;
/// some cameras take credentials as `?user=..&pwd=..` instead of userinfo.
const SECRET_QUERY_KEYS: &[&str] = &["pass", "pwd", "token", "secret", "key", "auth"];

/// Returns `url` with credentials replaced by `***`: `rtsp://user:pass@cam/x` becomes
/// `rtsp://***@cam/x`, and values of password-like query parameters become `***`.
///
/// Errs on the side of hiding: everything between `://` and the *last* `@` is replaced, so an
/// unescaped `/` or `@` inside a password cannot leak its tail. Never panics.
pub fn redact_url(url: &str) -> String {
    let (prefix, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        // A schemeless `user:pass@host` is not a valid source, but it still must not leak
        // through the error that rejects it. Absolute paths are left alone.
        None if !url.starts_with('/') => ("", url),
        None => return url.to_owned(),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(prefix);
    match rest.rfind('@') {
        Some(at) => {
            out.push_str("***");
            out.push_str(&rest[at..]);
        }
        None => out.push_str(rest),
    }
    redact_query(&out)
}

/// Replaces values of password-like query parameters with `***`.
fn redact_query(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_owned();
    };
    let (head, query) = url.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{head}{}{fragment}", params.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_QUERY_KEYS.iter().any(|s| key.contains(s))
}

/// Checks a stream URL; returns one message per problem (empty when valid).
pub(crate) fn url_problems(url: &str) -> Vec<String> {
    if url.is_empty() {
        return vec!["must not be empty".to_owned()];
    }
    let shown = redact_url(url);
    let mut problems = Vec::new();
    if let Some(bad) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        problems.push(format!(
            "must not contain whitespace or control characters (found {:?}): {shown:?}",
            bad
        ));
    }
    if url.starts_with('/') {
        return problems;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        problems.push(format!(
            "expected a URL with scheme {} or an absolute path, got {shown:?}",
            schemes_list()
        ));
        return problems;
    };
    let scheme = scheme.to_ascii_lowercase();
    if !URL_SCHEMES.contains(&scheme.as_str()) {
        // The scheme itself cannot hold credentials, but it can hold garbage: show it escaped.
        problems.push(format!(
            "unsupported scheme {scheme:?}; expected one of {}, or an absolute path",
            URL_SCHEMES.join(", ")
        ));
    } else if scheme == "file" {
        if !rest.starts_with('/') {
            problems.push(format!(
                "file URLs need an absolute path (file:///path), got {shown:?}"
            ));
        }
    } else {
        let after_userinfo = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
        let host_end = after_userinfo
            .find(['/', '?', '#'])
            .unwrap_or(after_userinfo.len());
        if after_userinfo[..host_end].is_empty() {
            problems.push(format!("missing host in {shown:?}"));
        }
    }
    problems
}

fn schemes_list() -> String {
    URL_SCHEMES
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact_url("rtsp://admin:hunter2@192.0.2.10:554/s1"),
            "rtsp://***@192.0.2.10:554/s1"
        );
        assert_eq!(redact_url("rtsp://admin@cam/s1"), "rtsp://***@cam/s1");
        assert_eq!(redact_url("rtsp://a:p/w@d@cam/s"), "rtsp://***@cam/s");
        assert_eq!(redact_url("rtsp://cam/s1"), "rtsp://cam/s1");
        assert_eq!(redact_url("/srv/a@b.mp4"), "/srv/a@b.mp4");
        assert_eq!(redact_url("u:hunter2@cam/x"), "***@cam/x");
        assert_eq!(redact_url(""), "");
    }

    #[test]
    fn redacts_query_secrets() {
        assert_eq!(
            redact_url("http://cam/v?user=a&pwd=hunter2&res=hd#x"),
            "http://cam/v?user=a&pwd=***&res=hd#x"
        );
        assert_eq!(
            redact_url("https://cam/v?Password=hunter2"),
            "https://cam/v?Password=***"
        );
    }

    #[test]
    fn url_checks() {
        assert!(url_problems("rtsp://192.0.2.10:554/stream1").is_empty());
        assert!(url_problems("RTSPS://cam/x").is_empty());
        assert!(url_problems("file:///srv/a.mp4").is_empty());
        assert!(url_problems("/srv/a.mp4").is_empty());
        assert_eq!(url_problems("").len(), 1);
        assert_eq!(url_problems("ftp://cam/x").len(), 1);
        assert_eq!(url_problems("file://relative.mp4").len(), 1);
        assert_eq!(url_problems("rtsp://u:p@/x").len(), 1);
        assert_eq!(url_problems("cams/x.mp4").len(), 1);
        assert_eq!(url_problems("ftp://cam/a b").len(), 2);
    }

    #[test]
    fn messages_never_show_password() {
        for url in [
            "ftp://admin:hunter2@cam/x",
            "rtsp://admin:hun ter2@cam/x",
            "rtsp://admin:hunter2@/x",
            "admin:hunter2@cam/x",
            "file://admin:hunter2@x",
            "http://cam/x?password=hunter2 ",
        ] {
            let problems = url_problems(url);
            assert!(!problems.is_empty(), "{url}");
            for p in problems {
                assert!(!p.contains("hunter2"), "{p}");
            }
        }
    }
}

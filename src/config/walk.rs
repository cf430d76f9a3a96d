//! Pre-serde walk over the parsed TOML table.
//!
//! serde stops at the first problem and words it in terms of Rust types ("invalid type: string
//! \"x\", expected u32"). The walk instead checks every key of every section against a small
//! schema, records *all* unknown keys and wrongly typed values under their dotted paths, and drops
//! them (or substitutes a placeholder for a missing required key) so that deserialization of the
//! remainder cannot fail and semantic validation can still run on everything else. Paths whose
//! value was dropped are returned as "tainted", so validation does not report a second, confusing
//! error about the default that replaced them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use toml::{Table, Value};

use super::error::ConfigError;
use super::key_segment;
use super::schema::{AudioCodec, LogFormat, SeparationMode, Transport, limits, out_of_range};

/// What a key must hold.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Any string.
    Str,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A string that parses as `ip:port`.
    SocketAddr,
    /// An integer within the range (also the semantic range, see [`limits`]).
    Int(RangeInclusive<i64>),
    /// `true` or `false`.
    Bool,
}

/// One known key of a section.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn field(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: false,
    }
}

/// Top-level sections, in documentation order.
pub(crate) const SECTIONS: &[&str] = &[
    "daemon",
    "egress",
    "separation",
    "vision",
    "reconnect",
    "streams",
];

pub(crate) const DAEMON: &[Field] = &[
    field("listen", Kind::SocketAddr),
    field("api_token_env", Kind::Str),
    field("log_format", Kind::Enum(LogFormat::NAMES)),
    field("onnxruntime_library", Kind::Str),
    field(
        "execution_provider",
        Kind::Enum(crate::model::runtime::ExecutionProvider::NAMES),
    ),
];

pub(crate) const EGRESS: &[Field] = &[
    field("rtp_host", Kind::Str),
    field("sdp_dir", Kind::Str),
    field("audio_codec", Kind::Enum(AudioCodec::NAMES)),
    field("opus_bitrate", Kind::Int(limits::OPUS_BITRATE)),
    field("rtp_mtu", Kind::Int(limits::RTP_MTU)),
    field("overlay", Kind::Bool),
    field(
        "overlay_bitrate_kbps",
        Kind::Int(limits::OVERLAY_BITRATE_KBPS),
    ),
];

pub(crate) const SEPARATION: &[Field] = &[
    field("mode", Kind::Enum(SeparationMode::NAMES)),
    field("max_speakers", Kind::Int(limits::MAX_SPEAKERS)),
    field("model", Kind::Str),
];

pub(crate) const VISION: &[Field] = &[
    field("enabled", Kind::Bool),
    field("detect_every", Kind::Int(limits::DETECT_EVERY)),
    field("min_face_px", Kind::Int(limits::MIN_FACE_PX)),
];

pub(crate) const RECONNECT: &[Field] = &[
    field("enabled", Kind::Bool),
    field("stall_timeout_ms", Kind::Int(limits::STALL_TIMEOUT_MS)),
    field("initial_backoff_ms", Kind::Int(limits::BACKOFF_MS)),
    field("max_backoff_ms", Kind::Int(limits::BACKOFF_MS)),
    field("jitter_percent", Kind::Int(limits::JITTER_PERCENT)),
];

pub(crate) const STREAM: &[Field] = &[
    Field {
        key: "url",
        kind: Kind::Str,
        required: true,
    },
    field("transport", Kind::Enum(Transport::NAMES)),
    field("latency_ms", Kind::Int(limits::LATENCY_MS)),
    field("clock_synced", Kind::Bool),
    field("base_port", Kind::Int(limits::PORT)),
    field("overlay_port", Kind::Int(limits::PORT)),
    field("video_width", Kind::Int(limits::VIDEO_WIDTH)),
    field("video_height", Kind::Int(limits::VIDEO_HEIGHT)),
    field("enabled", Kind::Bool),
];

/// Result of the walk: a table serde can deserialize, the errors found, and the dropped paths.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub table: Table,
    pub errors: Vec<ConfigError>,
    pub tainted: BTreeSet<String>,
}

impl Walked {
    fn reject(&mut self, path: String, message: String) {
        self.errors.push(ConfigError::new(path.clone(), message));
        self.tainted.insert(path);
    }
}

/// Walks the whole document.
pub(crate) fn walk(document: Table) -> Walked {
    let mut out = Walked::default();
    for (key, value) in document {
        let spec = match key.as_str() {
            "daemon" => DAEMON,
            "egress" => EGRESS,
            "separation" => SEPARATION,
            "vision" => VISION,
            "reconnect" => RECONNECT,
            "streams" => {
                walk_streams(value, &mut out);
                continue;
            }
            _ => {
                let message = unknown_message("section", &key, SECTIONS);
                out.errors
                    .push(ConfigError::new(key_segment(&key), message));
                continue;
            }
        };
        match value {
            Value::Table(section) => {
                let clean = walk_section(&key, section, spec, &mut out);
                out.table.insert(key, Value::Table(clean));
            }
            other => out.reject(
                key.clone(),
                format!("expected a table ([{key}]), got {}", type_name(&other)),
            ),
        }
    }
    out
}

fn walk_streams(value: Value, out: &mut Walked) {
    let Value::Table(streams) = value else {
        // `[[streams]]` is the likely mistake; say what the file should look like.
        out.reject(
            "streams".to_owned(),
            format!(
                "expected a table of streams ([streams.NAME] with a url), got {}",
                type_name(&value)
            ),
        );
        return;
    };
    let mut clean_streams = Table::new();
    for (name, stream) in streams {
        let path = format!("streams.{}", key_segment(&name));
        match stream {
            Value::Table(stream) => {
                let clean = walk_section(&path, stream, STREAM, out);
                clean_streams.insert(name, Value::Table(clean));
            }
            other => {
                out.reject(
                    path.clone(),
                    format!(
                        "expected a table ([{path}] with a url), got {}",
                        type_name(&other)
                    ),
                );
                // The stream is gone; "at least one stream" would be a misleading follow-up.
                out.tainted.insert("streams".to_owned());
            }
        }
    }
    out.table
        .insert("streams".to_owned(), Value::Table(clean_streams));
}

/// Checks one section's keys; returns the keys that passed, plus placeholders for missing
/// required keys.
fn walk_section(path: &str, section: Table, spec: &[Field], out: &mut Walked) -> Table {
    let mut clean = Table::new();
    let mut seen = BTreeSet::new();
    for (key, value) in section {
        let field_path = format!("{path}.{}", key_segment(&key));
        let Some(field) = spec.iter().find(|f| f.key == key) else {
            let names: Vec<&str> = spec.iter().map(|f| f.key).collect();
            let message = unknown_message("field", &key, &names);
            out.errors.push(ConfigError::new(field_path, message));
            continue;
        };
        seen.insert(field.key);
        match check(&field.kind, &value) {
            Ok(()) => {
                clean.insert(key, value);
            }
            Err(message) => out.reject(field_path, message),
        }
    }
    for field in spec.iter().filter(|f| f.required) {
        if clean.contains_key(field.key) {
            continue;
        }
        let field_path = format!("{path}.{}", field.key);
        if !seen.contains(field.key) {
            out.reject(field_path.clone(), "missing required field".to_owned());
        }
        out.tainted.insert(field_path);
        clean.insert(field.key.to_owned(), placeholder(&field.kind));
    }
    clean
}

/// A value that deserializes for `kind`; only used for tainted required keys.
fn placeholder(kind: &Kind) -> Value {
    match kind {
        Kind::Str | Kind::Enum(_) => Value::String(String::new()),
        Kind::SocketAddr => Value::String("127.0.0.1:0".to_owned()),
        Kind::Int(range) => Value::Integer(*range.start()),
        Kind::Bool => Value::Boolean(false),
    }
}

fn check(kind: &Kind, value: &Value) -> Result<(), String> {
    match (kind, value) {
        (Kind::Str, Value::String(_)) | (Kind::Bool, Value::Boolean(_)) => Ok(()),
        (Kind::Enum(names), Value::String(s)) => {
            if names.contains(&s.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "expected one of {}, got {}",
                    names.join(", "),
                    show_str(s)
                ))
            }
        }
        (Kind::Enum(names), other) => Err(format!(
            "expected a string (one of {}), got {}",
            names.join(", "),
            type_name(other)
        )),
        (Kind::SocketAddr, Value::String(s)) => match s.parse::<SocketAddr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "expected a socket address such as 127.0.0.1:8790 or [::1]:8790 \
                 (IP address and port; host names are not resolved), got {}",
                show_str(s)
            )),
        },
        (Kind::Int(range), Value::Integer(n)) => match out_of_range(range, *n) {
            None => Ok(()),
            Some(message) => Err(message),
        },
        (Kind::Str | Kind::SocketAddr, other) => {
            Err(format!("expected a string, got {}", type_name(other)))
        }
        (Kind::Int(_), other) => Err(format!("expected an integer, got {}", type_name(other))),
        (Kind::Bool, other) => Err(format!(
            "expected a boolean (true or false), got {}",
            type_name(other)
        )),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Quotes and escapes a user string for a message, cutting very long values short.
pub(crate) fn show_str(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    if s.chars().count() <= MAX_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    }
}

fn unknown_message(what: &str, key: &str, known: &[&str]) -> String {
    let hint = known
        .iter()
        .filter(|k| edit_distance(k, key) <= 2)
        .min_by_key(|k| edit_distance(k, key))
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    format!("unknown {what}{hint}; expected one of {}", known.join(", "))
}

/// Levenshtein distance, for "did you mean" hints. Inputs are short keys; a long garbage key
/// is cut off first so a hostile file cannot make this quadratic in its size.
fn edit_distance(a: &str, b: &str) -> usize {
    const MAX_CHARS: usize = 64;
    let a: Vec<char> = a.chars().take(MAX_CHARS).collect();
    let b: Vec<char> = b.chars().take(MAX_CHARS).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("url", "urll"), 1);
        assert_eq!(edit_distance("base_port", "baseport"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn long_strings_are_cut() {
        let long = "x".repeat(500);
        assert!(show_str(&long).len() < 100);
    }
}

//! Semantic validation: ranges, parity, names, URLs and UDP port claims.
//!
//! Runs on configs from files and on configs built in code (the `run --url` shortcut), so it
//! re-checks the ranges the TOML walk already enforced. It collects every problem instead of
//! stopping at the first.

use std::collections::BTreeSet;

use super::error::ConfigError;
use super::schema::{Config, SeparationMode, StreamConfig, limits, out_of_range};
use super::url::url_problems;
use super::walk::show_str;
use super::{ValidationMode, key_segment};

/// Collects errors, dropping those about paths the walk already reported and replaced.
struct Collector<'a> {
    errors: Vec<ConfigError>,
    tainted: &'a BTreeSet<String>,
}

impl Collector<'_> {
    fn tainted(&self, field: &str) -> bool {
        self.tainted.contains(field)
    }

    fn push(&mut self, field: &str, message: String) {
        if !self.tainted(field) {
            self.errors.push(ConfigError::new(field, message));
        }
    }

    fn range(&mut self, field: &str, range: &std::ops::RangeInclusive<i64>, value: i64) {
        if let Some(message) = out_of_range(range, value) {
            self.push(field, message);
        }
    }

    /// Range plus parity; parity only matters once the value is in range.
    fn even_in_range(&mut self, field: &str, range: &std::ops::RangeInclusive<i64>, value: i64) {
        if let Some(message) = out_of_range(range, value) {
            self.push(field, message);
        } else if value % 2 != 0 {
            self.push(field, format!("must be even, got {value}"));
        }
    }
}

/// A half-open UDP port range some field makes the daemon bind or send to.
struct Claim {
    field: String,
    start: u32,
    end: u32,
}

/// True for names usable as file names on every platform we care about:
/// `[A-Za-z0-9_-]{1,64}`.
pub(crate) fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= limits::STREAM_NAME_MAX_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn validate(
    config: &Config,
    mode: ValidationMode,
    tainted: &BTreeSet<String>,
) -> Vec<ConfigError> {
    let mut c = Collector {
        errors: Vec::new(),
        tainted,
    };
    check_daemon(config, &mut c);
    check_egress(config, &mut c);
    check_separation(config, &mut c);
    if config.reconnect.initial_backoff_ms > config.reconnect.max_backoff_ms {
        c.push(
            "reconnect.initial_backoff_ms",
            format!(
                "must not exceed reconnect.max_backoff_ms ({}), got {}",
                config.reconnect.max_backoff_ms, config.reconnect.initial_backoff_ms
            ),
        );
    }

    if config.streams.is_empty() && mode == ValidationMode::Complete {
        c.push("streams", "at least one stream must be declared".to_owned());
    } else if mode == ValidationMode::Complete && !config.streams.values().any(|s| s.enabled) {
        // The daemon ends when its last stream ends: with none to run it would exit at once.
        c.push(
            "streams",
            "every stream has enabled = false: at least one must be enabled".to_owned(),
        );
    }
    // Port claims are computed with a sane slot count even when max_speakers itself is wrong,
    // so its error does not hide (or multiply) overlap errors.
    let slots = u32::from(config.separation.max_speakers).clamp(
        *limits::MAX_SPEAKERS.start() as u32,
        *limits::MAX_SPEAKERS.end() as u32,
    );
    let mut claims = Vec::new();
    for (name, stream) in &config.streams {
        let prefix = format!("streams.{}", key_segment(name));
        check_stream(name, &prefix, stream, &mut c);
        claim_ports(
            &prefix,
            stream,
            slots,
            config.egress.overlay,
            &mut c,
            &mut claims,
        );
    }
    check_overlaps(&claims, &mut c);
    c.errors
}

fn check_daemon(config: &Config, c: &mut Collector<'_>) {
    // A misspelt variable name would silently leave the control API without its token.
    let name = &config.daemon.api_token_env;
    let valid = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        c.push(
            "daemon.api_token_env",
            format!(
                "must be an environment variable name (A-Z a-z 0-9 _, not starting with a digit), \
                 got {}",
                show_str(name)
            ),
        );
    }
}

fn check_egress(config: &Config, c: &mut Collector<'_>) {
    let egress = &config.egress;
    let host = &egress.rtp_host;
    if host.is_empty() {
        c.push("egress.rtp_host", "must not be empty".to_owned());
    } else if host.chars().count() > limits::RTP_HOST_MAX_LEN {
        c.push(
            "egress.rtp_host",
            format!(
                "must be at most {} characters, got {}",
                limits::RTP_HOST_MAX_LEN,
                host.chars().count()
            ),
        );
    } else if let Some(bad) = host
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':')))
    {
        c.push(
            "egress.rtp_host",
            format!(
                "contains {bad:?}; expected an IP address or DNS name \
                 (characters A-Z a-z 0-9 . - :), got {}",
                show_str(host)
            ),
        );
    }
    if egress.sdp_dir.as_os_str().is_empty() {
        c.push("egress.sdp_dir", "must not be empty".to_owned());
    }
    c.range(
        "egress.opus_bitrate",
        &limits::OPUS_BITRATE,
        i64::from(egress.opus_bitrate),
    );
    c.range(
        "egress.rtp_mtu",
        &limits::RTP_MTU,
        i64::from(egress.rtp_mtu),
    );
    c.range(
        "egress.overlay_bitrate_kbps",
        &limits::OVERLAY_BITRATE_KBPS,
        i64::from(egress.overlay_bitrate_kbps),
    );
}

fn check_separation(config: &Config, c: &mut Collector<'_>) {
    let separation = &config.separation;
    if separation.mode == SeparationMode::Model && !config.vision.enabled {
        c.push(
            "separation.mode",
            "`model` separates the voice of each face: it needs `vision.enabled = true`".to_owned(),
        );
    }
    // Its contents are checked when a stream loads it; a path that is not even a file is a
    // configuration error worth reporting with the others.
    if let Some(path) = &separation.model
        && !path.is_file()
    {
        c.push(
            "separation.model",
            format!("`{}` is not a file", path.display()),
        );
    }
    c.range(
        "separation.max_speakers",
        &limits::MAX_SPEAKERS,
        i64::from(separation.max_speakers),
    );
}

fn check_stream(name: &str, prefix: &str, stream: &StreamConfig, c: &mut Collector<'_>) {
    if !is_valid_stream_name(name) {
        c.push(
            prefix,
            format!(
                "invalid stream name {}: use 1 to {} characters from A-Z a-z 0-9 _ - \
                 (the name becomes part of file names)",
                show_str(name),
                limits::STREAM_NAME_MAX_LEN
            ),
        );
    }
    let url_field = format!("{prefix}.url");
    for problem in url_problems(&stream.url) {
        c.push(&url_field, problem);
    }
    c.range(
        &format!("{prefix}.latency_ms"),
        &limits::LATENCY_MS,
        i64::from(stream.latency_ms),
    );
    c.even_in_range(
        &format!("{prefix}.base_port"),
        &limits::PORT,
        i64::from(stream.base_port),
    );
    if let Some(port) = stream.overlay_port {
        c.even_in_range(
            &format!("{prefix}.overlay_port"),
            &limits::PORT,
            i64::from(port),
        );
    }
    c.even_in_range(
        &format!("{prefix}.video_width"),
        &limits::VIDEO_WIDTH,
        i64::from(stream.video_width),
    );
    c.even_in_range(
        &format!("{prefix}.video_height"),
        &limits::VIDEO_HEIGHT,
        i64::from(stream.video_height),
    );
}

/// Records the port ranges one stream uses: two ports (RTP, RTCP) per speaker slot, and two for
/// the overlay when it is published. Ranges past 65535 are errors; ports already reported as out
/// of range or tainted are left out so they do not cause follow-up overlap errors.
fn claim_ports(
    prefix: &str,
    stream: &StreamConfig,
    slots: u32,
    overlay: bool,
    c: &mut Collector<'_>,
    claims: &mut Vec<Claim>,
) {
    const PORT_END: u32 = 65_536;
    let base_field = format!("{prefix}.base_port");
    let base = u32::from(stream.base_port);
    let base_ok = !c.tainted(&base_field) && limits::PORT.contains(&i64::from(base));
    if base_ok {
        let end = base + 2 * slots;
        if end > PORT_END {
            c.push(
                &base_field,
                format!(
                    "speaker ports {base}..{end} run past 65535 \
                     ({slots} speaker slots need {} ports from base_port)",
                    2 * slots
                ),
            );
        } else {
            claims.push(Claim {
                field: base_field.clone(),
                start: base,
                end,
            });
        }
    }
    if !overlay {
        return;
    }
    let overlay_field = format!("{prefix}.overlay_port");
    let (port, usable) = match stream.overlay_port {
        Some(port) => (
            u32::from(port),
            !c.tainted(&overlay_field) && limits::PORT.contains(&i64::from(port)),
        ),
        None => (base + u32::from(limits::OVERLAY_PORT_OFFSET), base_ok),
    };
    if !usable {
        return;
    }
    let end = port + 2;
    if end > PORT_END {
        let origin = if stream.overlay_port.is_none() {
            " (default base_port + 100); set overlay_port explicitly"
        } else {
            ""
        };
        c.push(
            &overlay_field,
            format!("overlay ports {port}..{end} run past 65535{origin}"),
        );
        return;
    }
    claims.push(Claim {
        field: overlay_field,
        start: port,
        end,
    });
}

/// Every pair of overlapping claims is an error on the later one, naming the earlier.
fn check_overlaps(claims: &[Claim], c: &mut Collector<'_>) {
    for (j, later) in claims.iter().enumerate() {
        for earlier in &claims[..j] {
            if later.start < earlier.end && earlier.start < later.end {
                c.push(
                    &later.field,
                    format!(
                        "ports {}..{} overlap {} ({}..{})",
                        later.start, later.end, earlier.field, earlier.start, earlier.end
                    ),
                );
            }
        }
    }
}

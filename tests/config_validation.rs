//! Table-driven checks that malformed configs are rejected with errors naming the right fields,
//! all at once, and nothing else.

use avsepd::config::{Config, ConfigErrors};

/// A stream that is valid on its own; cases append to or replace it.
const DOOR: &str = "[streams.door]\nurl = \"rtsp://192.0.2.10:554/stream1\"\n";

struct Case {
    name: &'static str,
    toml: String,
    /// Exactly the fields the errors must name (order-insensitive, duplicates count).
    fields: &'static [&'static str],
    /// A fragment the rendered errors must contain.
    contains: &'static str,
}

fn case(
    name: &'static str,
    toml: impl Into<String>,
    fields: &'static [&'static str],
    contains: &'static str,
) -> Case {
    Case {
        name,
        toml: toml.into(),
        fields,
        contains,
    }
}

/// `DOOR` followed by extra stream keys.
fn door(extra: &str) -> String {
    format!("{DOOR}{extra}\n")
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "syntax error",
            "[daemon]\nlisten = \n",
            &["line 2, column 10"],
            "TOML syntax error",
        ),
        case(
            "unknown top-level section",
            format!("[frobnicate]\nx = 1\n{DOOR}"),
            &["frobnicate"],
            "unknown section; expected one of daemon, egress, separation, vision, reconnect, streams",
        ),
        case(
            "unknown key in a stream (and so url missing)",
            "[streams.door]\nurll = \"rtsp://cam/x\"\n",
            &["streams.door.urll", "streams.door.url"],
            "streams.door.urll: unknown field (did you mean url?); expected one of url, transport,",
        ),
        case(
            "unknown key in daemon",
            format!("[daemon]\nlog_fromat = \"json\"\n{DOOR}"),
            &["daemon.log_fromat"],
            "did you mean log_format?",
        ),
        case(
            "wrong type: string for integer",
            format!("[egress]\nopus_bitrate = \"32000\"\n{DOOR}"),
            &["egress.opus_bitrate"],
            "egress.opus_bitrate: expected an integer, got a string",
        ),
        case(
            "wrong type: float for integer",
            door("latency_ms = 200.5"),
            &["streams.door.latency_ms"],
            "expected an integer, got a float",
        ),
        case(
            "wrong type: string for boolean",
            door("enabled = \"yes\""),
            &["streams.door.enabled"],
            "expected a boolean (true or false), got a string",
        ),
        case(
            "bad enum: audio codec",
            format!("[egress]\naudio_codec = \"mp3\"\n{DOOR}"),
            &["egress.audio_codec"],
            "expected one of opus, l16, got \"mp3\"",
        ),
        case(
            "bad enum: transport",
            door("transport = \"sctp\""),
            &["streams.door.transport"],
            "expected one of auto, tcp, udp",
        ),
        case(
            "bad enum: log format not a string",
            format!("[daemon]\nlog_format = 1\n{DOOR}"),
            &["daemon.log_format"],
            "expected a string (one of auto, human, json), got an integer",
        ),
        case(
            "port below 1024",
            door("base_port = 80"),
            &["streams.door.base_port"],
            "must be in 1024..=65535, got 80",
        ),
        case(
            "port above 65535",
            door("base_port = 70000"),
            &["streams.door.base_port"],
            "must be in 1024..=65535, got 70000",
        ),
        case(
            "odd base port",
            door("base_port = 5001"),
            &["streams.door.base_port"],
            "streams.door.base_port: must be even, got 5001",
        ),
        case(
            "odd overlay port",
            door("overlay_port = 6001"),
            &["streams.door.overlay_port"],
            "must be even, got 6001",
        ),
        case(
            "speaker ports run past 65535",
            door("base_port = 65530"),
            &["streams.door.base_port", "streams.door.overlay_port"],
            "speaker ports 65530..65538 run past 65535",
        ),
        case(
            "overlapping streams (speakers and default overlays)",
            format!("{DOOR}[streams.yard]\nurl = \"rtsp://cam/yard\"\n"),
            &["streams.yard.base_port", "streams.yard.overlay_port"],
            "streams.yard.base_port: ports 5000..5008 overlap streams.door.base_port (5000..5008)",
        ),
        case(
            "max_speakers widens the claimed range into the next stream",
            format!(
                "[separation]\nmax_speakers = 8\n{DOOR}\
                 [streams.yard]\nurl = \"/srv/yard.mp4\"\nbase_port = 5010\noverlay_port = 6000\n"
            ),
            &["streams.yard.base_port"],
            "ports 5010..5026 overlap streams.door.base_port (5000..5016)",
        ),
        case(
            "overlay port colliding with own speaker port",
            door("overlay_port = 5002"),
            &["streams.door.overlay_port"],
            "ports 5002..5004 overlap streams.door.base_port (5000..5008)",
        ),
        case(
            "speaker ports colliding with another stream's default overlay",
            format!("{DOOR}[streams.yard]\nurl = \"/srv/yard.mp4\"\nbase_port = 5100\n"),
            &["streams.yard.base_port"],
            "overlap streams.door.overlay_port (5100..5102)",
        ),
        case(
            "bad stream name",
            "[streams.\"front door\"]\nurl = \"rtsp://cam/x\"\n",
            &["streams.\"front door\""],
            "invalid stream name \"front door\"",
        ),
        case(
            "stream name too long",
            format!("[streams.{}]\nurl = \"rtsp://cam/x\"\n", "n".repeat(65)),
            &["streams.nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"],
            "use 1 to 64 characters",
        ),
        case(
            "missing url",
            "[streams.door]\nbase_port = 6000\n",
            &["streams.door.url"],
            "streams.door.url: missing required field",
        ),
        case(
            "bad scheme",
            "[streams.door]\nurl = \"ftp://cam/x\"\n",
            &["streams.door.url"],
            "unsupported scheme \"ftp\"",
        ),
        case(
            "relative path",
            "[streams.door]\nurl = \"clips/door.mp4\"\n",
            &["streams.door.url"],
            "or an absolute path",
        ),
        case(
            "file url without absolute path",
            "[streams.door]\nurl = \"file://door.mp4\"\n",
            &["streams.door.url"],
            "file URLs need an absolute path",
        ),
        case(
            "url with whitespace",
            "[streams.door]\nurl = \"rtsp://cam/front door\"\n",
            &["streams.door.url"],
            "must not contain whitespace or control characters",
        ),
        case(
            "listen not an address",
            format!("[daemon]\nlisten = \"localhost:8790\"\n{DOOR}"),
            &["daemon.listen"],
            "expected a socket address",
        ),
        case(
            "listen not a string",
            format!("[daemon]\nlisten = 8790\n{DOOR}"),
            &["daemon.listen"],
            "expected a string, got an integer",
        ),
        case(
            "empty rtp_host",
            format!("[egress]\nrtp_host = \"\"\n{DOOR}"),
            &["egress.rtp_host"],
            "egress.rtp_host: must not be empty",
        ),
        case(
            "rtp_host with whitespace",
            format!("[egress]\nrtp_host = \"10.0.0.1 \"\n{DOOR}"),
            &["egress.rtp_host"],
            "contains ' '",
        ),
        case(
            "rtp_host too long",
            format!("[egress]\nrtp_host = \"{}\"\n{DOOR}", "a".repeat(254)),
            &["egress.rtp_host"],
            "must be at most 253 characters, got 254",
        ),
        case(
            "separation model file missing",
            format!("[separation]\nmode = \"model\"\nmodel = \"/nonexistent/sep.onnx\"\n{DOOR}"),
            &["separation.model"],
            "separation.model: `/nonexistent/sep.onnx` is not a file",
        ),
        case(
            "separation model without vision",
            format!("[separation]\nmode = \"model\"\n[vision]\nenabled = false\n{DOOR}"),
            &["separation.mode"],
            "separation.mode: `model` separates the voice of each face: it needs `vision.enabled = true`",
        ),
        case(
            "detect_every 0",
            format!("[vision]\ndetect_every = 0\n{DOOR}"),
            &["vision.detect_every"],
            "must be in 1..=25, got 0",
        ),
        case(
            "vision typo",
            format!("[vision]\nenable = false\n{DOOR}"),
            &["vision.enable"],
            "unknown field",
        ),
        case(
            "backoff initial above max",
            format!("[reconnect]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 1000\n{DOOR}"),
            &["reconnect.initial_backoff_ms"],
            "must not exceed reconnect.max_backoff_ms (1000), got 5000",
        ),
        case(
            "stall timeout too short",
            format!("[reconnect]\nstall_timeout_ms = 10\n{DOOR}"),
            &["reconnect.stall_timeout_ms"],
            "must be in 500..=600000, got 10",
        ),
        case(
            "max_speakers 0",
            format!("[separation]\nmax_speakers = 0\n{DOOR}"),
            &["separation.max_speakers"],
            "must be in 1..=8, got 0",
        ),
        case(
            "max_speakers 9",
            format!("[separation]\nmax_speakers = 9\n{DOOR}"),
            &["separation.max_speakers"],
            "must be in 1..=8, got 9",
        ),
        case(
            "odd width",
            door("video_width = 641"),
            &["streams.door.video_width"],
            "must be even, got 641",
        ),
        case(
            "height too big",
            door("video_height = 4000"),
            &["streams.door.video_height"],
            "must be in 64..=2160, got 4000",
        ),
        case(
            "latency too big",
            door("latency_ms = 10001"),
            &["streams.door.latency_ms"],
            "must be in 0..=10000, got 10001",
        ),
        case(
            "zero streams",
            "[egress]\noverlay = false\n",
            &["streams"],
            "streams: at least one stream must be declared",
        ),
        case(
            "every stream disabled",
            door("enabled = false"),
            &["streams"],
            "streams: every stream has enabled = false: at least one must be enabled",
        ),
        case(
            "streams as an array of tables",
            "[[streams]]\nurl = \"rtsp://cam/x\"\n",
            &["streams"],
            "expected a table of streams ([streams.NAME] with a url), got an array",
        ),
        case(
            "section that is not a table",
            format!("egress = \"udp\"\n{DOOR}"),
            &["egress"],
            "expected a table ([egress]), got a string",
        ),
        case(
            "three distinct problems, all reported",
            format!("[egress]\nopus_bitrate = 1\nrtp_mtu = 100000\n{DOOR}video_width = 641\n"),
            &[
                "egress.opus_bitrate",
                "egress.rtp_mtu",
                "streams.door.video_width",
            ],
            "egress.opus_bitrate: must be in 6000..=510000, got 1",
        ),
        case(
            "problems from every stage at once",
            format!(
                "[daemon]\nverbose = true\n[egress]\noverlay = \"no\"\nsdp_dir = \"\"\n\
                 [separation]\nmode = \"model\"\n[vision]\nenabled = false\n{DOOR}base_port = 5001\n\
                 [streams.\"bad name\"]\nurl = \"ftp://x/y\"\nbase_port = 6000\n"
            ),
            &[
                "daemon.verbose",
                "egress.overlay",
                "egress.sdp_dir",
                "separation.mode",
                "streams.door.base_port",
                "streams.\"bad name\"",
                "streams.\"bad name\".url",
            ],
            "egress.overlay: expected a boolean",
        ),
    ]
}

fn check(case: &Case) -> Result<(), String> {
    let errors: ConfigErrors = match Config::from_toml_str(&case.toml) {
        Ok(config) => return Err(format!("accepted: {config:?}")),
        Err(errors) => errors,
    };
    let mut got: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    let mut want = case.fields.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        return Err(format!("fields {got:?}, want {want:?}\n{errors}"));
    }
    let text = errors.to_string();
    if !text.contains(case.contains) {
        return Err(format!(
            "errors do not contain {:?}:\n{text}",
            case.contains
        ));
    }
    if text.lines().count() != errors.len() {
        return Err(format!("expected one line per error:\n{text}"));
    }
    Ok(())
}

#[test]
fn malformed_configs_name_their_fields() {
    let cases = cases();
    assert!(cases.len() >= 24);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case).err().map(|why| format!("{}: {why}", case.name)))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn the_baseline_stream_is_valid() {
    Config::from_toml_str(DOOR).unwrap();
    Config::from_toml_str(&door("base_port = 6000\noverlay_port = 6100")).unwrap();
}

#[test]
fn the_shipped_example_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/avsepd.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    config.validate().unwrap();
}

#[test]
fn file_context_prefixes_every_line() {
    let errors = Config::from_toml_str(&door("base_port = 5001\nvideo_width = 1"))
        .unwrap_err()
        .file("config/x.toml");
    assert_eq!(
        errors.to_string(),
        "config/x.toml: streams.door.base_port: must be even, got 5001\n\
         config/x.toml: streams.door.video_width: must be in 64..=3840, got 1"
    );
}

#[test]
fn credentials_never_appear_in_errors() {
    for url in [
        "ftp://admin:hunter2@cam/x",
        "rtsp://admin:hunter2@cam/a b",
        "rtsp://admin:hunter2@",
        "admin:hunter2@cam/x",
    ] {
        let text = format!("[streams.door]\nurl = {url:?}\n");
        let errors = Config::from_toml_str(&text).unwrap_err();
        assert!(errors.has_field("streams.door.url"), "{errors}");
        assert!(!errors.to_string().contains("hunter2"), "{errors}");
        assert!(!format!("{errors:?}").contains("hunter2"), "{errors:?}");
    }
}

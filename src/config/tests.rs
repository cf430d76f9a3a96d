//! Unit tests for loading: the shipped example, defaults, round trips and robustness.

use super::walk::{DAEMON, EGRESS, Field, RECONNECT, SECTIONS, SEPARATION, STREAM, VISION};
use super::*;

const EXAMPLE: &str = include_str!("../../config/avsepd.toml");
const EXAMPLE_URL: &str = "rtsp://192.0.2.10:554/stream1";

fn fields(errors: &ConfigErrors) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn example_parses_and_validates() {
    let config = Config::from_toml_str(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    config.validate().unwrap();
    assert_eq!(config.streams.len(), 1);
    assert_eq!(config.streams["door"].url, EXAMPLE_URL);
}

/// The example sets every key to its documented default, except the stream's url (required) and
/// the keys it leaves commented out (optional without a literal default). So it must equal a
/// file with only that stream and url: the documented defaults are the real defaults.
#[test]
fn example_documents_the_real_defaults() {
    let example = Config::from_toml_str(EXAMPLE).unwrap();
    let minimal =
        Config::from_toml_str(&format!("[streams.door]\nurl = {EXAMPLE_URL:?}\n")).unwrap();
    assert_eq!(example, minimal);
    assert_eq!(minimal, Config::single_stream("door", EXAMPLE_URL));
    // The commented-out default for overlay_port matches the computed one.
    assert!(EXAMPLE.contains("# overlay_port = 5100\n"));
    assert_eq!(minimal.streams["door"].overlay_port(), 5100);
}

/// Every key the loader accepts appears in the example, set or commented out, in its section.
#[test]
fn example_documents_every_key() {
    let sections: [(&str, &[Field]); 6] = [
        ("[daemon]", DAEMON),
        ("[egress]", EGRESS),
        ("[separation]", SEPARATION),
        ("[vision]", VISION),
        ("[reconnect]", RECONNECT),
        ("[streams.door]", STREAM),
    ];
    assert_eq!(SECTIONS.len(), sections.len());
    for (header, spec) in sections {
        let start = EXAMPLE
            .find(&format!("\n{header}\n"))
            .unwrap_or_else(|| panic!("{header} missing"));
        let body = &EXAMPLE[start + header.len() + 2..];
        let body = body.find("\n[").map_or(body, |end| &body[..end]);
        for field in spec {
            let documented = body.lines().any(|line| {
                let line = line.strip_prefix("# ").unwrap_or(line);
                line.starts_with(&format!("{} = ", field.key))
            });
            assert!(documented, "{header} does not document {}", field.key);
        }
    }
}

#[test]
fn effective_config_round_trips() {
    let mut config = Config::from_toml_str(EXAMPLE).unwrap();
    config.daemon.onnxruntime_library = Some("/opt/ort/libonnxruntime.so".into());
    config.daemon.execution_provider = crate::model::runtime::ExecutionProvider::Cpu;
    config.streams.insert(
        "b".into(),
        StreamConfig {
            base_port: 6000,
            overlay_port: Some(7000),
            clock_synced: true,
            ..StreamConfig::new("/srv/clip.mp4")
        },
    );
    let text = toml::to_string(&config).unwrap();
    assert_eq!(Config::from_toml_str(&text).unwrap(), config);
    let defaults = toml::to_string(&Config::single_stream("x", "/a.mp4")).unwrap();
    assert_eq!(
        Config::from_toml_str(&defaults).unwrap(),
        Config::single_stream("x", "/a.mp4")
    );
}

#[test]
fn single_stream_and_streams_from_caller() {
    Config::single_stream("cli", "rtsp://cam/x")
        .validate()
        .unwrap();
    let errors = Config::default().validate().unwrap_err();
    assert_eq!(fields(&errors), ["streams"]);
    assert_eq!(
        errors.to_string(),
        "streams: at least one stream must be declared"
    );
    Config::default()
        .validate_with(ValidationMode::StreamsFromCaller)
        .unwrap();
    let config = Config::from_toml_str_with(
        "[egress]\noverlay = false\n",
        ValidationMode::StreamsFromCaller,
    )
    .unwrap();
    assert!(!config.egress.overlay);
    // Streams-from-caller still checks everything else.
    let errors =
        Config::from_toml_str_with("[egress]\nrtp_mtu = 1\n", ValidationMode::StreamsFromCaller)
            .unwrap_err();
    assert_eq!(fields(&errors), ["egress.rtp_mtu"]);
}

#[test]
fn code_built_configs_are_range_checked() {
    let mut config = Config::single_stream("a", "rtsp://cam/x");
    config.egress.opus_bitrate = 1;
    config.separation.max_speakers = 0;
    let stream = config.streams.get_mut("a").unwrap();
    stream.base_port = 80;
    stream.video_height = 361;
    let errors = config.validate().unwrap_err();
    assert_eq!(
        fields(&errors),
        [
            "egress.opus_bitrate",
            "separation.max_speakers",
            "streams.a.base_port",
            "streams.a.video_height"
        ]
    );
}

#[test]
fn port_helpers() {
    let stream = StreamConfig::new("rtsp://cam/x");
    assert_eq!(stream.speaker_port(0), 5000);
    assert_eq!(stream.speaker_port(3), 5006);
    assert_eq!(stream.overlay_port(), 5100);
    let explicit = StreamConfig {
        overlay_port: Some(6000),
        ..stream.clone()
    };
    assert_eq!(explicit.overlay_port(), 6000);
    let high = StreamConfig {
        base_port: 65_500,
        ..stream
    };
    assert_eq!(high.overlay_port(), u16::MAX);
    assert_eq!(high.speaker_port(usize::MAX), u16::MAX);
}

#[test]
fn default_overlay_port_past_65535_is_reported() {
    let errors =
        Config::from_toml_str("[streams.a]\nurl = \"/a.mp4\"\nbase_port = 65480\n").unwrap_err();
    assert_eq!(fields(&errors), ["streams.a.overlay_port"]);
    assert!(errors.to_string().contains("set overlay_port"), "{errors}");
    // Without the overlay the same base port is fine.
    Config::from_toml_str(
        "[egress]\noverlay = false\n[streams.a]\nurl = \"/a.mp4\"\nbase_port = 65480\n",
    )
    .unwrap();
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let config = Config::single_stream("a", "ftp://admin:hunter2@cam/x");
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!format!("{:?}", config.redacted()).contains("hunter2"));
    assert!(
        !toml::to_string(&config.redacted())
            .unwrap()
            .contains("hunter2")
    );
    let errors = config.validate().unwrap_err();
    assert!(!errors.to_string().contains("hunter2"), "{errors}");
    assert!(!format!("{errors:?}").contains("hunter2"));
    let text = "[streams.a]\nurl = \"rtsp://admin:hunter2@cam/x y\"\n";
    let errors = Config::from_toml_str(text).unwrap_err();
    assert_eq!(fields(&errors), ["streams.a.url"]);
    assert!(!errors.to_string().contains("hunter2"), "{errors}");
}

#[test]
fn load_attaches_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let errors = Config::load(&missing).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors.to_string().contains("missing.toml"), "{errors}");

    let path = dir.path().join("x.toml");
    std::fs::write(
        &path,
        "[streams.door]\nurl = \"/a.mp4\"\nbase_port = 5001\n",
    )
    .unwrap();
    let errors = Config::load(&path).unwrap_err();
    assert_eq!(errors.file_path(), Some(path.as_path()));
    assert_eq!(
        errors.to_string(),
        format!(
            "{}: streams.door.base_port: must be even, got 5001",
            path.display()
        )
    );
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(
        Config::load(&path).unwrap(),
        Config::from_toml_str(EXAMPLE).unwrap()
    );
}

#[test]
fn syntax_errors_are_located() {
    let errors = Config::from_toml_str("[daemon]\nlisten = \"127.0.0.1:1\nx").unwrap_err();
    assert_eq!(errors.len(), 1);
    let error = &errors.errors()[0];
    assert!(error.field.starts_with("line 2, column "), "{error}");
    assert!(error.message.starts_with("TOML syntax error: "), "{error}");
    assert!(!error.to_string().contains('\n'));
    assert_eq!(line_column("ab\ncé\nd", 6), (2, 3));
    assert_eq!(line_column("é", 1), (1, 1));
    assert_eq!(line_column("", 99), (1, 1));
}

/// A value the walk rejected is replaced by its default; that default must not cause follow-up
/// errors (here: an overlap with stream a, which the real value would not have caused).
#[test]
fn rejected_values_do_not_cause_follow_up_errors() {
    let text =
        "[streams.a]\nurl = \"/a.mp4\"\n[streams.b]\nurl = \"/b.mp4\"\nbase_port = \"6000\"\n";
    let errors = Config::from_toml_str(text).unwrap_err();
    assert_eq!(fields(&errors), ["streams.b.base_port"]);
    let errors = Config::from_toml_str("[streams.a]\nlatency_ms = 1\n").unwrap_err();
    assert_eq!(fields(&errors), ["streams.a.url"]);
    let errors = Config::from_toml_str("streams = 3\n").unwrap_err();
    assert_eq!(fields(&errors), ["streams"]);
    let errors = Config::from_toml_str("[streams]\na = 3\n").unwrap_err();
    assert_eq!(fields(&errors), ["streams.a"]);
}

#[test]
fn hostile_keys_are_quoted_in_paths() {
    let text = "[streams.\"a.b\\n\"]\nurl = \"/a.mp4\"\n\"x\\u0007\" = 1\n";
    let errors = Config::from_toml_str(text).unwrap_err();
    assert_eq!(
        fields(&errors),
        [r#"streams."a.b\n""#, r#"streams."a.b\n"."x\u{7}""#]
    );
    for error in &errors {
        assert!(!error.to_string().contains('\n'));
    }
}

/// Cheap deterministic pseudo-random numbers for the robustness test (no extra crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Feeds truncated, line-dropped and byte-mutated variants of the example (and some garbage)
/// to the loader. Any panic fails the test; errors are expected and must be one line each.
#[test]
fn never_panics_on_garbage() {
    let mut inputs: Vec<String> = Vec::new();
    for end in (0..=EXAMPLE.len()).filter(|&i| EXAMPLE.is_char_boundary(i)) {
        inputs.push(EXAMPLE[..end].to_owned());
    }
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for skip in 0..lines.len() {
        let mut text = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i != skip {
                text.push_str(line);
                text.push('\n');
            }
        }
        inputs.push(text);
    }
    let alphabet = b"[]=\"'.#\n 0123456789-+:aez_{}\\\x00\x7f";
    let mut rng = Lcg(0x5eed);
    for _ in 0..2_000 {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % bytes.len();
            bytes[at] = alphabet[(rng.next() as usize) % alphabet.len()];
        }
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    for _ in 0..500 {
        let len = (rng.next() % 200) as usize;
        let text: String = (0..len)
            .map(|_| char::from(alphabet[(rng.next() as usize) % alphabet.len()]))
            .collect();
        inputs.push(text);
    }
    inputs.extend(
        [
            "streams = []",
            "[[streams]]\nurl = 1",
            "[streams.a]\nurl = \"rtsp://\"\nbase_port = 65534\noverlay_port = 65535",
            "[streams.a]\nurl = \"\"\nbase_port = -1\nvideo_width = 9223372036854775807",
            "[separation]\nmax_speakers = 255\n[streams.a]\nurl = \"/x\"\nbase_port = 65534",
            "[daemon]\nlisten = 1979-05-27T07:32:00Z",
            "[egress]\nrtp_host = \"\\u0000\"",
        ]
        .map(str::to_owned),
    );
    let mut rejected = 0;
    for text in &inputs {
        if let Err(errors) = Config::from_toml_str(text) {
            rejected += 1;
            assert!(!errors.is_empty());
            for error in &errors {
                assert!(!error.to_string().contains('\n'), "{error:?}");
            }
        }
    }
    assert!(rejected > inputs.len() / 2);
}

#[test]
fn api_token_env_must_be_a_variable_name() {
    let ok = Config::from_toml_str(&format!(
        "[daemon]\napi_token_env = \"_MY_TOKEN2\"\n[streams.door]\nurl = {EXAMPLE_URL:?}\n"
    ))
    .unwrap();
    assert_eq!(ok.daemon.api_token_env, "_MY_TOKEN2");
    ok.validate().unwrap();
    for bad in ["", "2X", "MY-TOKEN", "A=B"] {
        let errors = Config::from_toml_str(&format!(
            "[daemon]\napi_token_env = {bad:?}\n[streams.door]\nurl = {EXAMPLE_URL:?}\n"
        ))
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            ["daemon.api_token_env"],
            "{bad:?}: {errors}"
        );
    }
}

#[test]
fn execution_provider_is_one_of_three_names() {
    use crate::model::runtime::ExecutionProvider;
    let stream = "[streams.a]\nurl = \"/a.mp4\"\n";
    let with = |v: &str| format!("[daemon]\nexecution_provider = \"{v}\"\n{stream}");
    let c = Config::from_toml_str(&with("cuda")).unwrap();
    assert_eq!(c.daemon.execution_provider, ExecutionProvider::Cuda);
    let c = Config::from_toml_str(stream).unwrap();
    assert_eq!(c.daemon.execution_provider, ExecutionProvider::Auto);
    let errors = Config::from_toml_str(&with("gpu")).unwrap_err();
    assert_eq!(fields(&errors), ["daemon.execution_provider"]);
    assert!(errors.to_string().contains("cuda"), "{errors}");
}

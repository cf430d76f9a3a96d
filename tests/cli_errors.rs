//! The real `avsepd` binary on bad and unusual input: a clear error naming the culprit (file,
//! field, URL) and a non-zero exit, never a panic or a hang; inputs lacking audio or video run
//! degraded with one warning. Every child is killed and the test failed after `LIMIT`, far beyond
//! what any case needs (each takes well under a second on an idle machine).

mod common;

use common::*;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall-clock limit of any child process.
const LIMIT: Duration = Duration::from_secs(60);
/// sysexits.h EX_CONFIG, the exit status of configuration errors.
const EX_CONFIG: i32 = 78;

/// What a finished child did.
struct Outcome {
    what: String,
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Outcome {
    /// For assertion messages.
    fn dump(&self) -> String {
        format!(
            "`{}` exited {} after {:.2} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }

    /// Stderr must name every one of `names` (a file, a field, a flag).
    fn assert_names(&self, names: &[&str]) {
        for name in names {
            assert!(
                self.stderr.contains(name),
                "`{name}` not named:\n{}",
                self.dump()
            );
        }
    }

    /// The final `avsepd: error: ...` lines (what a user reads), not the log records.
    fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("avsepd: error") || l.starts_with("avsepd: stream"))
            .collect()
    }

    /// Lines of stderr containing `needle` (case-insensitive).
    fn count_lines(&self, needle: &str) -> usize {
        let needle = needle.to_lowercase();
        self.stderr
            .lines()
            .filter(|l| l.to_lowercase().contains(&needle))
            .count()
    }
}

/// Run `program` with `args`, stdin closed, both outputs captured; kill it and fail the test when
/// it runs past `LIMIT` or dies of a signal.
fn run_bounded<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> Outcome {
    run_bounded_env(program, args, &[])
}

/// [`run_bounded`] with extra environment variables.
fn run_bounded_env<S: AsRef<OsStr>>(program: &Path, args: &[S], env: &[(&str, &Path)]) -> Outcome {
    let what = std::iter::once(program.as_os_str())
        .chain(args.iter().map(AsRef::as_ref))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let Some(status) = status else {
        panic!(
            "`{what}` still running after {} s (a hang): killed\n--- stdout ---\n{stdout}\n\
             --- stderr ---\n{stderr}",
            LIMIT.as_secs()
        );
    };
    let Some(code) = status.code() else {
        panic!(
            "`{what}` killed by signal {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            status.signal()
        );
    };
    Outcome {
        what,
        code,
        stdout,
        stderr,
        elapsed,
    }
}

/// Run the binary; whatever it does, it must not panic.
fn avsepd_run<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    let o = run_bounded(&avsepd(), args);
    assert!(
        !o.stdout.contains("panicked") && !o.stderr.contains("panicked") && o.code != 101,
        "a panic:\n{}",
        o.dump()
    );
    eprintln!(
        "`{}`: exit {} in {:.2} s",
        o.what,
        o.code,
        o.elapsed.as_secs_f64()
    );
    o
}

/// Write `text` to `dir/<name>` and run `avsepd run --config` on it.
fn run_config(dir: &Path, name: &str, text: &str) -> Outcome {
    let config = dir.join(name);
    std::fs::write(&config, text).unwrap();
    avsepd_run(&[
        OsStr::new("run"),
        OsStr::new("--config"),
        config.as_os_str(),
    ])
}

/// Make a fixture with `gst-launch-1.0 -q <pipeline...>`, bounded like everything else.
fn gst_launch(pipeline: &[String]) {
    let mut args = vec!["-q".to_string()];
    args.extend(pipeline.iter().cloned());
    let o = run_bounded(Path::new("gst-launch-1.0"), &args);
    assert_eq!(o.code, 0, "making a fixture failed:\n{}", o.dump());
}

fn split(pipeline: &str, location: &Path) -> Vec<String> {
    pipeline
        .split_whitespace()
        .map(String::from)
        .chain([format!("location={}", location.display())])
        .collect()
}

/// The ways a path may be named in a message: as given, canonical, or as the file:// URI.
fn names_of(path: &Path) -> Vec<String> {
    let mut names = vec![path.display().to_string()];
    if let Ok(canon) = std::fs::canonicalize(path) {
        names.push(canon.display().to_string());
        if let Ok(uri) = gstreamer::glib::filename_to_uri(&canon, None) {
            names.push(uri.to_string());
        }
    }
    names
}

/// The error lines must name one of `names`.
fn assert_error_names(o: &Outcome, names: &[String]) {
    let lines = o.error_lines();
    assert!(
        lines
            .iter()
            .any(|l| names.iter().any(|n| l.contains(n.as_str()))),
        "no error line names any of {names:?}:\n{}",
        o.dump()
    );
}

fn out_dir(tmp: &Path) -> PathBuf {
    tmp.join("out")
}

fn separate(input: &OsStr, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&OsStr> = vec![OsStr::new("separate"), input];
    args.extend([OsStr::new("--out"), out.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    avsepd_run(&args)
}

fn wav_seconds(path: &Path) -> (hound::WavSpec, f64, f32) {
    let (spec, samples) = read_wav(path);
    let frames = samples.len() / spec.channels.max(1) as usize;
    let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt();
    (spec, frames as f64 / spec.sample_rate as f64, rms)
}

fn timeline_frames(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("timeline.json is JSON");
    v["frames"].as_array().expect("timeline has frames").len()
}

// 1. check-config and run --config

/// Three distinct errors in three sections.
const BAD_TOML: &str = "[egress]\nrtp_mtu = 10\naudio_codec = \"mp3\"\n\n\
                        [streams.door]\nurl = \"rtsp://192.0.2.10/x\"\nbase_port = 5001\n";
const BAD_FIELDS: [&str; 3] = [
    "egress.rtp_mtu",
    "egress.audio_codec",
    "streams.door.base_port",
];

#[test]
fn check_config_accepts_the_example() {
    let example = repo().join("config/avsepd.toml");
    let o = avsepd_run(&[OsStr::new("check-config"), example.as_os_str()]);
    assert_eq!(o.code, 0, "{}", o.dump());
}

#[test]
fn check_config_lists_every_error_with_its_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, BAD_TOML).unwrap();
    let o = avsepd_run(&[OsStr::new("check-config"), bad.as_os_str()]);
    assert_eq!(o.code, EX_CONFIG, "{}", o.dump());
    for field in BAD_FIELDS {
        assert_eq!(
            o.count_lines(field),
            1,
            "`{field}` not listed once:\n{}",
            o.dump()
        );
    }
}

#[test]
fn check_config_names_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.toml");
    let o = avsepd_run(&[OsStr::new("check-config"), missing.as_os_str()]);
    assert_eq!(o.code, EX_CONFIG, "{}", o.dump());
    o.assert_names(&[&missing.display().to_string()]);
}

#[test]
fn run_with_a_bad_config_exits_78_naming_the_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_config(tmp.path(), "bad.toml", BAD_TOML);
    assert_eq!(o.code, EX_CONFIG, "{}", o.dump());
    o.assert_names(&BAD_FIELDS);
}

// 2.-4. inputs that cannot be read

#[test]
fn separate_names_a_missing_input_file() {
    let tmp = tempfile::tempdir().unwrap();
    let o = separate(
        OsStr::new("/nonexistent.mp4"),
        &out_dir(tmp.path()),
        &["--bypass"],
    );
    assert_ne!(o.code, 0, "{}", o.dump());
    assert_error_names(&o, &["/nonexistent.mp4".to_string()]);
    assert!(o.elapsed < Duration::from_secs(30), "{}", o.dump());
}

#[test]
fn separate_names_an_unreachable_rtsp_url() {
    // A port nothing listens on: bound, read, released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("rtsp://127.0.0.1:{port}/x");
    let tmp = tempfile::tempdir().unwrap();
    let o = separate(OsStr::new(&url), &out_dir(tmp.path()), &["--bypass"]);
    assert_ne!(o.code, 0, "{}", o.dump());
    assert_error_names(&o, &[url.clone(), format!("127.0.0.1:{port}")]);
    assert!(o.elapsed < Duration::from_secs(30), "{}", o.dump());
}

#[test]
fn separate_names_a_corrupt_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("x.mp4");
    // 100 KB of deterministic noise (xorshift), no container at all.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&input, noise).unwrap();
    let o = separate(input.as_os_str(), &out_dir(tmp.path()), &["--bypass"]);
    assert_ne!(o.code, 0, "{}", o.dump());
    assert_error_names(&o, &names_of(&input));
}

// 5.-8. inputs that work, some degraded

#[test]
fn separate_video_only_runs_degraded() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("video-only.mp4");
    gst_launch(&split(
        "videotestsrc num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc ! mp4mux ! filesink",
        &input,
    ));
    let out = out_dir(tmp.path());
    let o = separate(input.as_os_str(), &out, &["--bypass"]);
    assert_eq!(o.code, 0, "{}", o.dump());
    assert_eq!(o.count_lines("no audio"), 1, "{}", o.dump());
    assert_eq!(o.count_lines("no video"), 0, "{}", o.dump());
    let frames = count_video_frames(&out.join("overlay.mp4"));
    let entries = timeline_frames(&out.join("timeline.json"));
    eprintln!("video-only: overlay.mp4 {frames} frames, timeline {entries} entries");
    assert!(frames.abs_diff(50) <= 3, "overlay.mp4 has {frames} frames");
    assert!(
        entries.abs_diff(50) <= 3,
        "timeline.json has {entries} frames"
    );
}

#[test]
fn separate_audio_only_runs_degraded() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("audio-only.wav");
    gst_launch(&split(
        "audiotestsrc num-buffers=100 samplesperbuffer=320 ! audio/x-raw,rate=16000,channels=1 \
         ! wavenc ! filesink",
        &input,
    ));
    let (_, original) = read_wav(&input);
    // Bypass, and the face-conditioned model, which has no faces to separate by without video:
    // both give the input on slot 0 (the model says so once) rather than silence.
    for (extra, fallback_warnings) in [(&["--bypass"][..], 0), (&[][..], 1)] {
        let out = out_dir(tmp.path()).join(if extra.is_empty() { "model" } else { "bypass" });
        let o = separate(input.as_os_str(), &out, extra);
        assert_eq!(o.code, 0, "{}", o.dump());
        assert_eq!(
            o.count_lines("no video"),
            1 + fallback_warnings,
            "{}",
            o.dump()
        );
        assert_eq!(o.count_lines("no audio"), 0, "{}", o.dump());
        assert_eq!(
            o.count_lines("slot 0 carries the mixture"),
            fallback_warnings,
            "{}",
            o.dump()
        );
        let (spec, samples) = read_wav(&out.join("speaker-0.wav"));
        eprintln!(
            "audio-only {extra:?}: speaker-0.wav {} samples at {} Hz x {}",
            samples.len(),
            spec.sample_rate,
            spec.channels
        );
        assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
        assert!(
            samples.len().abs_diff(32_000) <= 400,
            "{} samples",
            samples.len()
        );
        let n = samples.len().min(original.len());
        let err: f64 = (0..n)
            .map(|i| (samples[i] - original[i]) as f64)
            .map(|d| d * d)
            .sum();
        let sig: f64 = original[..n].iter().map(|&x| (x as f64) * (x as f64)).sum();
        let snr = 10.0 * (sig / err.max(1e-12)).log10();
        assert!(snr >= 40.0, "{extra:?}: speaker-0 vs input {snr:.1} dB");
        assert!(
            !out.join("overlay.mp4").exists(),
            "an overlay.mp4 was left behind for an input without video"
        );
    }
}

#[test]
fn separate_resamples_a_44k1_stereo_wav() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("stereo-44k1.wav");
    // 100 x 882 frames at 44.1 kHz = 2.000 s.
    gst_launch(&split(
        "audiotestsrc num-buffers=100 samplesperbuffer=882 ! audio/x-raw,rate=44100,channels=2 \
         ! wavenc ! filesink",
        &input,
    ));
    let (in_spec, in_s, _) = wav_seconds(&input);
    assert_eq!((in_spec.sample_rate, in_spec.channels), (44_100, 2));
    let out = out_dir(tmp.path());
    let o = separate(input.as_os_str(), &out, &["--bypass"]);
    assert_eq!(o.code, 0, "{}", o.dump());
    let (spec, secs, rms) = wav_seconds(&out.join("speaker-0.wav"));
    eprintln!(
        "44.1 kHz stereo: in {in_s:.4} s, out {secs:.4} s at {} Hz x {}, rms {rms:.3}",
        spec.sample_rate, spec.channels
    );
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
    assert!(
        (secs - in_s).abs() <= 0.01 * in_s,
        "{secs} s out of {in_s} s"
    );
    // audiotestsrc's default: a 440 Hz sine at 0.8, RMS about 0.57; not silence.
    assert!(rms > 0.1, "output RMS {rms}");
}

#[test]
fn separate_stops_after_duration() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = repo().join("demo/demo.mp4");
    let out = out_dir(tmp.path());
    let o = separate(clip.as_os_str(), &out, &["--bypass", "--duration", "2"]);
    assert_eq!(o.code, 0, "{}", o.dump());
    let (spec, secs, _) = wav_seconds(&out.join("speaker-0.wav"));
    let entries = timeline_frames(&out.join("timeline.json"));
    eprintln!(
        "--duration 2: speaker-0.wav {secs:.4} s at {} Hz, timeline {entries} frames",
        spec.sample_rate
    );
    assert!((secs - 2.0).abs() <= 0.1, "{secs} s of audio");
    assert!(
        entries.abs_diff(50) <= 3,
        "timeline.json has {entries} frames"
    );
}

// 9.-10. refused before any media is touched

/// `avsepd --execution-provider PROVIDER separate demo.mp4 --out OUT [EXTRA]`, with `env`.
fn separate_on(provider: &str, out: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Outcome {
    let clip = repo().join("demo/demo.mp4");
    let mut args = vec![
        OsStr::new("--execution-provider"),
        OsStr::new(provider),
        OsStr::new("separate"),
        clip.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let o = run_bounded_env(&avsepd(), &args, env);
    assert!(
        !o.stderr.contains("panicked") && o.code != 101,
        "{}",
        o.dump()
    );
    o
}

/// The CPU library from the PyPI `onnxruntime` wheel has no CUDA execution provider: `auto` runs
/// on the CPU with exactly one warning for the process (two sessions here: detector and
/// separator), `cpu` without it, and `cuda` refuses to start, naming the library.
#[test]
fn execution_provider_falls_back_to_the_cpu_or_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let warning = "no CUDA execution provider";
    for (provider, warnings) in [("auto", 1), ("cpu", 0)] {
        let out = tmp.path().join(provider);
        let o = separate_on(provider, &out, &["--duration", "1"], &[]);
        assert_eq!(o.code, 0, "{}", o.dump());
        assert_eq!(o.count_lines(warning), warnings, "{provider}: {}", o.dump());
        assert!(out.join("speaker-0.wav").exists(), "{}", o.dump());
    }
    let out = tmp.path().join("cuda");
    let o = separate_on("cuda", &out, &[], &[]);
    assert_eq!(o.code, 1, "{}", o.dump());
    let error = o.error_lines().join("\n");
    assert!(
        error.contains("cuda") && error.contains("libonnxruntime.so"),
        "{}",
        o.dump()
    );
    assert!(!out.join("speaker-0.wav").exists(), "{}", o.dump());
}

/// ONNX Runtime's CUDA build (`make setup-gpu`, the PyPI onnxruntime-gpu library) on a machine
/// without CUDA's libraries: the provider is in the library but cannot start. `auto` falls back
/// to the CPU with one warning (and tries CUDA only once for the process), `cuda` refuses.
#[test]
fn cuda_build_without_cuda_falls_back_or_refuses() {
    let lib = repo().join(".cache/onnxruntime-gpu/lib/libonnxruntime.so.1.31.1");
    if !lib.is_file() {
        eprintln!("skipped: {} is missing (`make setup-gpu`)", lib.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let env = [("ORT_DYLIB_PATH", lib.as_path())];
    let out = tmp.path().join("auto");
    let o = separate_on("auto", &out, &["--duration", "1"], &env);
    // A machine with a working GPU runs on CUDA instead: nothing to check then.
    if o.code == 0 && o.count_lines("did not start") == 0 {
        eprintln!("CUDA started here: the fallback is not exercised");
        return;
    }
    assert_eq!(o.code, 0, "{}", o.dump());
    assert_eq!(
        o.count_lines("CUDA execution provider did not start"),
        1,
        "{}",
        o.dump()
    );
    assert!(out.join("speaker-0.wav").exists(), "{}", o.dump());
    let out = tmp.path().join("cuda");
    let o = separate_on("cuda", &out, &["--duration", "1"], &env);
    assert_eq!(o.code, 1, "{}", o.dump());
    assert!(
        o.error_lines().join("\n").contains("CUDA did not start"),
        "{}",
        o.dump()
    );
    assert!(!out.join("speaker-0.wav").exists(), "{}", o.dump());
}

#[test]
fn separate_refuses_a_bad_model_naming_the_file_and_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = repo().join("demo/demo.mp4");
    let corrupt = tmp.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"not an onnx model at all").unwrap();
    let missing = tmp.path().join("missing.onnx");
    let cases: [(&Path, &str); 4] = [
        (&missing, "cannot be read"),
        (&corrupt, "separator model"),
        // The audio-only baseline cannot say whose voice is whose.
        (&repo().join("models/separator-audio.onnx"), "model_kind"),
        // An ONNX file, but not an exported separator (no signal-contract metadata).
        (&repo().join("models/centerface.onnx"), "sample_rate"),
    ];
    for (model, what) in cases {
        let out = out_dir(tmp.path());
        let o = separate(
            clip.as_os_str(),
            &out,
            &["--model", model.to_str().unwrap()],
        );
        assert_ne!(o.code, 0, "{}", o.dump());
        assert_error_names(&o, &names_of(model));
        assert!(
            o.error_lines().join("\n").contains(what),
            "{what}: {}",
            o.dump()
        );
        // Refused before any media is touched: no speaker file was started.
        assert!(!out.join("speaker-0.wav").exists(), "{}", o.dump());
    }
}

#[test]
fn run_url_with_a_bad_scheme_exits_78_naming_the_field() {
    let o = avsepd_run(&["run", "--url", "ftp://x"]);
    assert_eq!(o.code, EX_CONFIG, "{}", o.dump());
    o.assert_names(&["streams.cam.url", "ftp"]);
}

#[test]
fn bad_durations_and_ports_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = repo().join("demo/demo.mp4");
    for d in ["inf", "1e20", "-1", "0", "soon"] {
        let out = out_dir(tmp.path());
        let flag = format!("--duration={d}");
        let o = separate(clip.as_os_str(), &out, &["--bypass", &flag]);
        assert_eq!(o.code, 2, "{flag}: {}", o.dump());
        o.assert_names(&["--duration"]);
        let o = avsepd_run(&["bench", &flag]);
        assert_eq!(o.code, 2, "bench --duration {d}: {}", o.dump());
        o.assert_names(&["--duration"]);
    }
    // The overlay goes to the port + 100: a port that leaves no room for it is refused.
    let o = avsepd_run(&["bench", "--rtp-port", "65500"]);
    assert_eq!(o.code, 2, "{}", o.dump());
    o.assert_names(&["--rtp-port"]);
}

#[test]
fn run_names_a_configured_onnxruntime_library_that_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-libonnxruntime.so");
    let o = run_config(
        tmp.path(),
        "ort.toml",
        &format!(
            "[daemon]\nonnxruntime_library = \"{}\"\n\n[streams.door]\nurl = \"rtsp://127.0.0.1:9/x\"\n",
            missing.display()
        ),
    );
    assert_ne!(o.code, 0, "{}", o.dump());
    o.assert_names(&["daemon.onnxruntime_library", &missing.display().to_string()]);
}

#[test]
fn separate_fails_cleanly_when_the_recording_cannot_be_written() {
    // The overlay's file is /dev/full: every write fails with ENOSPC, as on a full disk. The run
    // must end with that error, not wait forever for the recording to make room.
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink("/dev/full", out.join("overlay.mp4")).unwrap();
    let clip = repo().join("demo/demo.mp4");
    let o = separate(clip.as_os_str(), &out, &["--bypass"]);
    assert_ne!(o.code, 0, "{}", o.dump());
    o.assert_names(&["overlay", "No space left"]);
}

#[test]
fn run_names_an_rtp_host_that_does_not_resolve() {
    // udpsink would drop every packet for it without a word: the daemon must refuse to start.
    let tmp = tempfile::tempdir().unwrap();
    let o = run_config(
        tmp.path(),
        "dns.toml",
        &format!(
            "[egress]\nrtp_host = \"no-such-host.invalid\"\nsdp_dir = \"{}\"\n\n[streams.door]\nurl = \"{}\"\n",
            tmp.path().display(),
            repo().join("demo/demo.mp4").display()
        ),
    );
    assert_ne!(o.code, 0, "{}", o.dump());
    o.assert_names(&["egress.rtp_host", "no-such-host.invalid"]);
}

//! The service units: `systemd-analyze verify` passes when they point at the built binary, their
//! `systemd-analyze security` exposure stays at or below 2.5, `make install` lays out a working
//! tree, and `avsepd run` speaks the sd_notify protocol (READY, STATUS, WATCHDOG, STOPPING) and
//! stops within 2 s of SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Highest accepted `Overall exposure level` (0 = locked down, 10 = unprotected).
const MAX_EXPOSURE: f64 = 2.5;

fn have_systemd_analyze() -> bool {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        eprintln!("SKIP: systemd-analyze is not installed (Debian package `systemd`)");
    }
    ok
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `systemd-analyze verify` of the unit file at `path` (named as systemd will see it); any line
/// naming the unit is a finding (lines about the host's own units are not ours).
fn verify(path: &Path) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(path)
        .output()
        .unwrap();
    let text = output_text(&out);
    let name = path.file_name().unwrap().to_str().unwrap();
    let ours: Vec<&str> = text.lines().filter(|l| l.contains(name)).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify {name}: {}\n{text}",
        out.status
    );
}

/// The `Overall exposure level for X: 1.2 OK` number of `systemd-analyze security --offline`.
fn exposure(path: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(path)
        .output()
        .unwrap();
    let text = output_text(&out);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    let after = line.rsplit_once(": ").expect("`: ` before the number").1;
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the number in `{line}`"))
}

/// Both shipped units, rewritten to the built binary and `config_dir`, written into `dir`
/// (the template as its instance `avsepd@door.service`, with `config_dir/door.toml`).
fn units_for_test(dir: &Path, config_dir: &Path) -> Vec<std::path::PathBuf> {
    let bin = common::avsepd();
    let config = common::repo().join("config/avsepd.toml");
    std::fs::copy(&config, config_dir.join("door.toml")).unwrap();
    std::fs::copy(&config, config_dir.join("avsepd.toml")).unwrap();
    [
        ("avsepd.service", "avsepd.service"),
        ("avsepd@.service", "avsepd@door.service"),
    ]
    .into_iter()
    .map(|(file, name)| {
        let unit = std::fs::read_to_string(common::repo().join("systemd").join(file)).unwrap();
        let unit = unit
            .replace("/usr/local/bin/avsepd", bin.to_str().unwrap())
            .replace("/etc/avsepd", config_dir.to_str().unwrap());
        assert!(
            unit.contains(&format!("ExecStart={}", bin.display())),
            "ExecStart of {file} was not rewritten"
        );
        let path = dir.join(name);
        std::fs::write(&path, unit).unwrap();
        path
    })
    .collect()
}

#[test]
fn units_verify_against_the_built_binary() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in units_for_test(dir.path(), dir.path()) {
        verify(&unit);
    }
    // And the config the unit points at passes the unit's ExecStartPre check.
    let check = Command::new(common::avsepd())
        .arg("check-config")
        .arg(common::repo().join("config/avsepd.toml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn units_are_hardened() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in units_for_test(dir.path(), dir.path()) {
        let level = exposure(&unit);
        eprintln!(
            "{}: overall exposure level {level}",
            unit.file_name().unwrap().to_string_lossy()
        );
        assert!(
            level <= MAX_EXPOSURE,
            "{} exposure {level} > {MAX_EXPOSURE}",
            unit.display()
        );
    }
}

/// The datagrams received on `socket` until `until` returns true for one of them or `limit`.
fn receive_until(
    socket: &UnixDatagram,
    got: &mut Vec<String>,
    limit: Duration,
    until: impl Fn(&str) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = until(&msg);
            got.push(msg);
            if done {
                return true;
            }
        }
    }
    false
}

#[test]
fn run_notifies_systemd_and_stops_on_sigterm_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let clip = common::repo().join("demo/demo.mp4");
    let log = dir.path().join("stderr.log");
    let mut daemon = Command::new(common::avsepd())
        .args([
            "--log-format",
            "json",
            "run",
            "--name",
            "door",
            "--codec",
            "l16",
        ])
        .arg("--url")
        .arg(format!("file://{}", clip.display()))
        .arg("--rtp-port")
        .arg(common::free_udp_ports(12).to_string())
        .arg("--sdp-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(api.to_string())
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut got = Vec::new();

    // READY=1 with a status line, then keep-alives (every 0.5 s for WATCHDOG_USEC=1 s), and the
    // status turns to running once the clip's data flows (it plays in real time for 10 s).
    let ready = receive_until(&socket, &mut got, Duration::from_secs(30), |m| {
        m.starts_with("READY=1\n")
    });
    assert!(ready, "no READY=1: {got:?}\n{}", log_text());
    assert!(
        got.last().unwrap().contains("\nSTATUS=1 stream: door "),
        "{got:?}"
    );
    let pinged = receive_until(&socket, &mut got, Duration::from_secs(5), |m| {
        m == "WATCHDOG=1"
    });
    assert!(pinged, "no WATCHDOG=1 within 5 s: {got:?}");
    let running = receive_until(&socket, &mut got, Duration::from_secs(20), |m| {
        m == "STATUS=1 stream: door running"
    });
    assert!(
        running,
        "the status never said running: {got:?}\n{}",
        log_text()
    );
    let pings = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 1, "{got:?}");

    // SIGTERM mid-stream: outputs are finished and the daemon exits 0, within 2 s.
    let sent = Instant::now();
    assert_eq!(
        unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = daemon.kill();
            panic!("no exit 10 s after SIGTERM\n{}", log_text());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stop_time = sent.elapsed();
    eprintln!(
        "SIGTERM -> exit {status} in {:.0} ms",
        stop_time.as_secs_f64() * 1e3
    );
    assert!(status.success(), "exit {status}\n{}", log_text());
    assert!(
        stop_time < Duration::from_secs(2),
        "graceful stop took {stop_time:?}"
    );
    receive_until(&socket, &mut got, Duration::from_millis(300), |_| false);
    assert!(
        got.iter()
            .any(|m| m.starts_with("STOPPING=1\nSTATUS=stopping")),
        "no STOPPING=1: {got:?}"
    );
    assert!(
        log_text().contains("stream finished"),
        "no final report\n{}",
        log_text()
    );
}

/// `make install-files` into a temporary DESTDIR with the test binary: the layout, an existing
/// config kept on reinstall, the units rewritten for PREFIX and verifying.
#[test]
fn make_install_lays_out_a_service() {
    let ort = std::env::var_os("ORT_DYLIB_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::repo().join(".cache/onnxruntime/lib/libonnxruntime.so.1.32.0"));
    if !ort.is_file() {
        eprintln!(
            "SKIP: no ONNX Runtime library at {} (make setup)",
            ort.display()
        );
        return;
    }
    if Command::new("make").arg("--version").output().is_err() {
        eprintln!("SKIP: make is not installed");
        return;
    }
    let dest = tempfile::tempdir().unwrap();
    let prefix = "/opt/avsepd";
    let install = || {
        let out = Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(common::repo())
            .arg("install-files")
            .arg(format!("DESTDIR={}", dest.path().display()))
            .arg(format!("PREFIX={prefix}"))
            .arg(format!("BIN={}", common::avsepd().display()))
            .arg(format!("ORT_DYLIB_PATH={}", ort.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make install-files\n{}",
            output_text(&out)
        );
    };
    install();
    let root = dest.path();
    let p = |rel: &str| root.join(rel.trim_start_matches('/'));
    for f in [
        "/opt/avsepd/bin/avsepd",
        "/opt/avsepd/lib/avsepd/libonnxruntime.so.1.32.0",
        "/opt/avsepd/share/avsepd/centerface.onnx",
        "/opt/avsepd/share/avsepd/separator.onnx",
        "/opt/avsepd/share/avsepd/demo/demo.mp4",
        "/opt/avsepd/share/doc/avsepd/README.md",
        "/etc/avsepd/avsepd.toml",
        "/etc/systemd/system/avsepd.service",
        "/etc/systemd/system/avsepd@.service",
    ] {
        assert!(p(f).is_file(), "{f} not installed");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p("/opt/avsepd/bin/avsepd"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let unit = std::fs::read_to_string(p("/etc/systemd/system/avsepd.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/avsepd/bin/avsepd "), "{unit}");
    assert!(!unit.contains("/usr/local"), "{unit}");

    // A reinstall keeps the administrator's config.
    std::fs::write(p("/etc/avsepd/avsepd.toml"), "# edited\n").unwrap();
    install();
    assert_eq!(
        std::fs::read_to_string(p("/etc/avsepd/avsepd.toml")).unwrap(),
        "# edited\n"
    );

    // The installed unit, with DESTDIR put in front of its paths, verifies.
    if !have_systemd_analyze() {
        return;
    }
    std::fs::copy(
        common::repo().join("config/avsepd.toml"),
        p("/etc/avsepd/avsepd.toml"),
    )
    .unwrap();
    let staged = unit
        .replace("/opt/avsepd", p("/opt/avsepd").to_str().unwrap())
        .replace("/etc/avsepd", p("/etc/avsepd").to_str().unwrap());
    let check = tempfile::tempdir().unwrap();
    let path = check.path().join("avsepd.service");
    std::fs::write(&path, staged).unwrap();
    verify(&path);
    let out = Command::new(p("/opt/avsepd/bin/avsepd"))
        .arg("check-config")
        .arg(p("/etc/avsepd/avsepd.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
}

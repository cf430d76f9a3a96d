//! Several streams in one process, reloaded with SIGHUP: a removed stream stops, a new one
//! starts, a changed one restarts, and an untouched one keeps running without a restart (its
//! counters keep growing from where they were). A camera that dies affects only its own stream.

mod common;

use avsepd::media::rtsp_server::{RtspFileServer, ServedAudio};
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The JSON body of a GET, or null while the daemon is not listening yet.
fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    http_get(addr, path)
        .and_then(|(_, out)| serde_json::from_str(out.split("\r\n\r\n").nth(1)?).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Stream name -> (state, audio samples in) from /api/streams.
fn streams(api: SocketAddr) -> Vec<(String, String, u64)> {
    let v = get_json(api, "/api/streams");
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["streams"].as_array().cloned())
        .unwrap_or_default();
    list.iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["status"]["state"].as_str().unwrap_or("").to_string(),
                s["audio_in_samples"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn config(api: SocketAddr, sdp: &std::path::Path, streams: &[(&str, &str, u16)]) -> String {
    let mut text = format!(
        "[daemon]\nlisten = \"{api}\"\n\n[egress]\nsdp_dir = \"{}\"\naudio_codec = \"l16\"\noverlay = false\n\n\
         [vision]\nenabled = false\n\n[reconnect]\nstall_timeout_ms = 1500\ninitial_backoff_ms = 200\nmax_backoff_ms = 800\n\n",
        sdp.display()
    );
    for (name, url, port) in streams {
        text.push_str(&format!(
            "[streams.{name}]\nurl = \"{url}\"\ntransport = \"tcp\"\nbase_port = {port}\n\n"
        ));
    }
    text
}

/// Replace the config file with `text` and send SIGHUP.
fn reload(daemon: &Daemon, path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    unsafe { libc::kill(daemon.id() as i32, libc::SIGHUP) };
}

/// How many times the daemon's log holds `what` so far.
fn logged(log: &std::sync::Mutex<String>, what: &str) -> usize {
    log.lock().unwrap().matches(what).count()
}

/// The daemon is still running `after` the event (`what`) that must not end it.
fn assert_alive(daemon: &mut Daemon, after: Duration, what: &str) {
    std::thread::sleep(after);
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "{what} ended the daemon"
    );
}

#[test]
fn sighup_changes_only_what_changed() {
    init();
    let clip = repo().join("demo/demo.mp4");
    let cam_a = RtspFileServer::start(&clip, "a", ServedAudio::L16, 0).unwrap();
    let cam_b = RtspFileServer::start(&clip, "b", ServedAudio::L16, 0).unwrap();
    let api = free_tcp_addr();
    let dir = tempfile::tempdir().unwrap();
    let base = free_udp_ports(400);
    let path = dir.path().join("avsepd.toml");
    std::fs::write(
        &path,
        config(
            api,
            dir.path(),
            &[("a", &cam_a.url(), base), ("b", &cam_b.url(), base + 200)],
        ),
    )
    .unwrap();
    let (mut daemon, log) = spawn_daemon(&path);
    let running = |want: &[&str]| {
        let s = streams(api);
        want.iter()
            .all(|w| s.iter().any(|(n, st, _)| n == w && st == "running"))
            && s.len() == want.len()
    };
    assert!(
        wait_until(Duration::from_secs(30), || running(&["a", "b"])),
        "{:?}",
        streams(api)
    );

    // Camera b dies: a is unaffected.
    drop(cam_b);
    assert!(
        wait_until(Duration::from_secs(15), || streams(api)
            .iter()
            .any(|(n, st, _)| n == "b" && st != "running")),
        "b still running without its camera"
    );
    let a_before = streams(api).into_iter().find(|s| s.0 == "a").unwrap();
    assert_eq!(a_before.1, "running", "a was affected by b's camera");

    // Reload: b removed, c added (on b's old camera URL's replacement), a untouched.
    let cam_c = RtspFileServer::start(&clip, "c", ServedAudio::L16, 0).unwrap();
    let a_and = |c_url: &str| {
        config(
            api,
            dir.path(),
            &[("a", &cam_a.url(), base), ("c", c_url, base + 200)],
        )
    };
    reload(&daemon, &path, &a_and(&cam_c.url()));
    assert!(
        wait_until(Duration::from_secs(30), || running(&["a", "c"])),
        "after reload: {:?}",
        streams(api)
    );
    let a_after = streams(api).into_iter().find(|s| s.0 == "a").unwrap();
    assert!(
        a_after.2 > a_before.2,
        "a restarted: its counters went from {} to {}",
        a_before.2,
        a_after.2
    );

    // An invalid config is ignored: the daemon keeps running with the old one.
    reload(&daemon, &path, "[streams.a]\nurl = 7\n");
    assert_alive(&mut daemon, Duration::from_secs(1), "an invalid reload");
    assert!(running(&["a", "c"]), "{:?}", streams(api));

    // A shared section changes: every stream restarts. The ends of the threads they replace
    // must not be taken for the new streams' ends (the daemon ends when all its streams have).
    let slower_stall = |text: String| {
        let changed = text.replace("stall_timeout_ms = 1500", "stall_timeout_ms = 2000");
        assert_ne!(changed, text);
        changed
    };
    reload(&daemon, &path, &slower_stall(a_and(&cam_c.url())));
    assert!(
        wait_until(Duration::from_secs(30), || logged(&log, "reload: applied")
            >= 2),
        "second reload not applied"
    );
    assert_alive(
        &mut daemon,
        Duration::from_secs(3),
        "restarting every stream",
    );
    // The reports of the streams a reload retires are logged then, not kept until the exit (a
    // daemon reloaded for months would hold them all).
    assert!(
        logged(&log, "stream finished") >= 2,
        "retired streams' reports not logged at the reload"
    );
    assert!(
        wait_until(Duration::from_secs(30), || running(&["a", "c"])),
        "after restarting both: {:?}",
        streams(api)
    );

    // A config that validates but cannot start (c's input file is gone) changes nothing: no
    // stream is stopped for it.
    let stops_before = logged(&log, "reload: stopping");
    let gone = dir.path().join("gone.mp4");
    reload(&daemon, &path, &slower_stall(a_and(gone.to_str().unwrap())));
    assert!(
        wait_until(Duration::from_secs(15), || logged(
            &log,
            "keeping the running config"
        ) > 0),
        "the unstartable reload was not refused"
    );
    assert_alive(&mut daemon, Duration::from_secs(2), "an unstartable reload");
    assert_eq!(
        logged(&log, "reload: stopping"),
        stops_before,
        "an unstartable reload stopped streams"
    );
    // (The served clip may end and reconnect meanwhile: wait, do not sample once.)
    assert!(
        wait_until(Duration::from_secs(30), || running(&["a", "c"])),
        "{:?}",
        streams(api)
    );

    let (status, _, _) = sigterm_and_wait(&mut daemon, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200)); // the drain thread reads the last lines
    let stderr = log.lock().unwrap().clone();
    assert!(status.success(), "{status}\n{stderr}");
    assert!(
        stderr.contains("not valid, keeping the running one"),
        "{stderr}"
    );
    drop(cam_a);
    drop(cam_c);
}

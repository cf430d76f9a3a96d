//! The shipped unit passes `systemd-analyze verify` when pointed at the built binary.

mod common;

use std::process::Command;

#[test]
fn unit_verifies_against_the_built_binary() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: systemd-analyze is not installed (Debian package `systemd`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(common::repo().join("systemd/avsepd.service")).unwrap();
    let config = common::repo().join("config/avsepd.toml");
    let bin = common::avsepd();
    let unit = unit
        .replace("/usr/local/bin/avsepd", bin.to_str().unwrap())
        .replace("/etc/avsepd/avsepd.toml", config.to_str().unwrap());
    assert!(
        unit.contains(bin.to_str().unwrap()),
        "ExecStart was not rewritten"
    );
    let path = dir.path().join("avsepd.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about the host's own units are not ours; anything naming our unit is a finding.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("avsepd.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{text}",
        out.status
    );

    // And the config the unit points at passes the unit's ExecStartPre check.
    let check = Command::new(&bin)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

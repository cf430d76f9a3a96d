//! `avsepd faces IMAGE --json` prints one face for the astronaut, in input pixels.

mod common;

use std::process::Command;

#[test]
fn faces_json_on_astronaut() {
    let Some(p) = common::shared_data("faces/astronaut.png") else {
        return;
    };
    let out = Command::new(common::avsepd())
        .arg("faces")
        .arg(&p)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let b: Vec<f64> = faces[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        b[0] >= 0.0 && b[2] <= 512.0 && b[0] < b[2] && b[1] < b[3],
        "{b:?}"
    );
    assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
}

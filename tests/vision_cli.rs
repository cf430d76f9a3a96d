//! `avsepd faces IMAGE --json` prints one face for the astronaut, in input pixels; on a video it
//! prints every tracked face per frame, with the landmarks the mouth crop is cut at.

mod common;

use std::path::Path;
use std::process::Command;

/// `avsepd faces INPUT --json`, which must succeed, parsed.
fn faces_json(input: &Path) -> serde_json::Value {
    let out = Command::new(common::avsepd())
        .arg("faces")
        .arg(input)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn faces_json_on_astronaut() {
    let Some(p) = common::shared_data("faces/astronaut.png") else {
        return;
    };
    let v = faces_json(&p);
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let b = floats(&faces[0]["box"]);
    assert!(
        b[0] >= 0.0 && b[2] <= 512.0 && b[0] < b[2] && b[1] < b[3],
        "{b:?}"
    );
    assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
}

#[test]
fn faces_json_on_the_demo_clip_has_landmarks_in_the_box() {
    let v = faces_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/demo.mp4"));
    let frames = v["frames"].as_array().unwrap();
    assert!(frames.len() > 100, "{} frames", frames.len());
    let mut faces = 0;
    for f in frames.iter().flat_map(|fr| fr["faces"].as_array().unwrap()) {
        let b = floats(&f["box"]);
        let lm = f["landmarks"].as_array().unwrap();
        assert_eq!(lm.len(), 5);
        for p in lm.iter().map(floats) {
            let (x, y) = (p[0], p[1]);
            // eyes, nose and mouth corners lie inside the face box (a pixel of slack for rounding)
            assert!(
                x >= b[0] - 1.0 && x <= b[2] + 1.0 && y >= b[1] - 1.0 && y <= b[3] + 1.0,
                "{p:?} outside {b:?}"
            );
        }
        faces += 1;
    }
    // the demo clip shows two faces throughout
    assert!(faces >= 2 * 100, "{faces} faces");
}

//! `avsepd faces IMAGE --json` prints one face for the astronaut, in input pixels; on a video it
//! prints every tracked face per frame, with the landmarks the mouth crop is cut at.

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

#[test]
fn faces_json_on_the_demo_clip_has_landmarks_in_the_box() {
    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/demo.mp4");
    let out = Command::new(common::avsepd())
        .arg("faces")
        .arg(&clip)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = v["frames"].as_array().unwrap();
    assert!(frames.len() > 100, "{} frames", frames.len());
    let mut faces = 0;
    for f in frames.iter().flat_map(|fr| fr["faces"].as_array().unwrap()) {
        let b: Vec<f64> = f["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let lm = f["landmarks"].as_array().unwrap();
        assert_eq!(lm.len(), 5);
        for p in lm {
            let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
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

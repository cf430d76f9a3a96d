//! The Rust mouth crop equals training/mouth_crop.py's within one grey level, on the committed
//! frame and landmarks (tests/fixtures/vision, written by `python -m training.make_mouth_fixture`).

mod common;

use avsepd::vision::crop::{MouthCrop, ROI_SIZE};
use avsepd::vision::still::load_rgb;

#[test]
fn rust_crop_matches_numpy_reference() {
    common::init();
    let dir = common::repo().join("tests/fixtures/vision");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("mouth_crop.json")).unwrap())
            .unwrap();
    assert_eq!(fixture["roi_size"].as_u64().unwrap() as usize, ROI_SIZE);
    let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    let bbox: Vec<f32> = fixture["bbox"].as_array().unwrap().iter().map(f).collect();
    let mut landmarks = [[0.0f32; 2]; 5];
    for (k, p) in fixture["landmarks"].as_array().unwrap().iter().enumerate() {
        landmarks[k] = [f(&p[0]), f(&p[1])];
    }
    let expected: Vec<f32> = fixture["crop"].as_array().unwrap().iter().map(f).collect();

    let img = load_rgb(&dir.join("mouth_frame.png")).unwrap();
    let mut crop = vec![0.0; ROI_SIZE * ROI_SIZE];
    MouthCrop::from_face(&[bbox[0], bbox[1], bbox[2], bbox[3]], &landmarks)
        .sample(&img.view(), &mut crop);
    let worst = crop
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs() * 255.0)
        .fold(0.0f32, f32::max);
    eprintln!("mouth crop: largest difference {worst:.4} grey levels");
    assert!(
        worst <= 1.0,
        "Rust and numpy crops differ by {worst} grey levels"
    );
}

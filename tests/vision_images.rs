//! CenterFace on still images: the Solvay photo (29 faces), the astronaut (1), and two images
//! with no face at all (blank, noise). Skips when the shared data is absent.

mod common;

use avsepd::vision::detector::{CenterFace, DetectorConfig};
use avsepd::vision::still::load_rgb;
use avsepd::vision::{Detection, RgbView};

fn detector() -> CenterFace {
    avsepd::model::runtime::init(None).expect("ONNX Runtime");
    CenterFace::load(None, DetectorConfig::default()).expect("detector")
}

/// Stills are detected at full resolution, as `avsepd faces` does.
fn detect(det: &mut CenterFace, img: &RgbView) -> Vec<Detection> {
    let mut out = Vec::new();
    det.detect(img, img.width.max(img.height), &mut out)
        .unwrap();
    out
}

#[test]
fn solvay_finds_at_least_26_of_29() {
    let Some(p) = common::shared_data("faces/solvay_1927_29faces.png") else {
        return;
    };
    let img = load_rgb(&p).unwrap();
    let faces = detect(&mut detector(), &img.view());
    eprintln!("solvay: {} faces", faces.len());
    assert!(
        faces.len() >= 26 && faces.len() <= 29,
        "found {}",
        faces.len()
    );
}

#[test]
fn astronaut_is_exactly_one_face_with_sane_landmarks() {
    let Some(p) = common::shared_data("faces/astronaut.png") else {
        return;
    };
    let img = load_rgb(&p).unwrap();
    let faces = detect(&mut detector(), &img.view());
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = faces[0];
    let [x0, y0, x1, y1] = f.bbox;
    for [x, y] in f.landmarks {
        assert!(
            x > x0 && x < x1 && y > y0 && y < y1,
            "landmark outside its box: {f:?}"
        );
    }
    // Eyes above the nose above the mouth.
    assert!(f.landmarks[0][1] < f.landmarks[2][1] && f.landmarks[2][1] < f.landmarks[3][1]);
}

#[test]
fn blank_and_noise_have_no_face() {
    let mut det = detector();
    let (w, h) = (640, 480);
    let blank = vec![200u8; w * h * 3];
    assert!(detect(&mut det, &RgbView::packed(&blank, w, h)).is_empty());
    let mut s = 1u32;
    let noise: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as u8
        })
        .collect();
    let found = detect(&mut det, &RgbView::packed(&noise, w, h));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn detection_buffers_do_not_grow() {
    // Same-size frames: the second and later calls must not need new capacity.
    let mut det = detector();
    let (w, h) = (1280, 720);
    let frame = vec![90u8; w * h * 3];
    let mut out = Vec::with_capacity(64);
    for _ in 0..3 {
        det.detect(&RgbView::packed(&frame, w, h), 480, &mut out)
            .unwrap();
    }
    assert_eq!(out.capacity(), 64);
}

#[test]
fn a_face_the_latest_detection_missed_is_not_offered() {
    // Detector every 2nd frame: the astronaut at 0 and 40 ms, then a blank frame at 80 ms (the
    // run misses the face) and 120 ms. The track coasts (still reported) but its crop, taken at
    // an extrapolated place, must not be offered to the separator until the face is seen again.
    let Some(p) = common::shared_data("faces/astronaut.png") else {
        return;
    };
    avsepd::model::runtime::init(None).expect("ONNX Runtime");
    let img = load_rgb(&p).unwrap();
    let blank = vec![0u8; img.data.len()];
    let cfg = avsepd::vision::VisionConfig {
        every: 2,
        ..Default::default()
    };
    let mut pipeline = avsepd::vision::FacePipeline::new(cfg).unwrap();
    let mut out = Vec::new();
    let mut offered = Vec::new();
    for (k, face) in [true, true, false, false, true].into_iter().enumerate() {
        let view = if face {
            img.view()
        } else {
            RgbView::packed(&blank, img.width, img.height)
        };
        pipeline
            .process(k as u64 * 40_000_000, &view, true, &mut out)
            .unwrap();
        assert_eq!(out.len(), 1, "frame {k}: the track is reported: {out:?}");
        offered.push(out[0].offered);
    }
    assert_eq!(offered, [true, true, false, false, true]);
}

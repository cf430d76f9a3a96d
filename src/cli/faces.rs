//! `avsepd faces INPUT [--json] [--min-size PX] [--every K]`: faces in a still image (boxes,
//! scores, landmarks) or tracked through a video (ids, boxes and landmarks per frame), in input
//! pixels.

use anyhow::Result;
use avsepd::vision::detector::{CenterFace, DetectorConfig};
use avsepd::vision::offline::track_uri;
use avsepd::vision::still::load_rgb;
use avsepd::vision::{BBox, VisionConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct FacesArgs {
    /// An image (png, jpg, ...) or a video file / URL.
    input: String,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// Faces narrower than this (input pixels) are tracked but not offered to separation.
    #[arg(long, default_value_t = 40.0)]
    min_size: f32,
    /// Video: run the detector every K frames, track in between.
    #[arg(long, default_value_t = 5)]
    every: u32,
    /// Video: decode at WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    size: String,
}

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "gif"];

pub fn main(args: FacesArgs) -> Result<ExitCode> {
    let path = Path::new(&args.input);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if IMAGE_EXTS.contains(&ext.as_str()) {
        image(&args, path)
    } else {
        video(&args)
    }
}

/// One decimal in input pixels is plenty, and keeps the JSON short.
fn r1(v: f32) -> f64 {
    (v as f64 * 10.0).round() / 10.0
}

fn round_box(b: &BBox) -> [f64; 4] {
    b.map(r1)
}

fn r3(v: f32) -> f64 {
    (v as f64 * 1000.0).round() / 1000.0
}

fn image(args: &FacesArgs, path: &Path) -> Result<ExitCode> {
    avsepd::model::runtime::init(None)?;
    let img = load_rgb(path)?;
    let mut det = CenterFace::load(None, DetectorConfig::default())?;
    let mut faces = Vec::new();
    // A still is detected at its own resolution: nothing has to keep up with a frame rate.
    det.detect(&img.view(), img.width.max(img.height), &mut faces)?;
    if args.json {
        let list: Vec<_> = faces
            .iter()
            .map(|f| {
                json!({"box": round_box(&f.bbox), "score": r3(f.score),
                       "landmarks": f.landmarks.map(|p| p.map(r1))})
            })
            .collect();
        println!("{}", json!({ "faces": list }));
    } else {
        println!(
            "{}: {}x{}, {} face(s)",
            args.input,
            img.width,
            img.height,
            faces.len()
        );
        for (i, f) in faces.iter().enumerate() {
            let b = f.bbox;
            println!(
                "  {i:>3}: box ({:.0}, {:.0})-({:.0}, {:.0}) {:.0}x{:.0} px, score {:.2}{}",
                b[0],
                b[1],
                b[2],
                b[3],
                b[2] - b[0],
                b[3] - b[1],
                f.score,
                if b[2] - b[0] < args.min_size {
                    " (below --min-size)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct TrackSummary {
    first_ns: u64,
    last_ns: u64,
    frames: u64,
    offered: u64,
}

fn video(args: &FacesArgs) -> Result<ExitCode> {
    let (w, h) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("--size must be WIDTHxHEIGHT, got `{}`", args.size))?;
    let mut cfg = VisionConfig {
        every: args.every.max(1),
        ..VisionConfig::default()
    };
    cfg.tracker.min_face_px = args.min_size;
    let uri = avsepd::media::uri::to_uri(&args.input)?;
    let mut frames_json = Vec::new();
    let mut tracks: BTreeMap<u64, TrackSummary> = BTreeMap::new();
    let mut per_frame: BTreeMap<usize, u64> = BTreeMap::new();
    let n = track_uri(&uri, w, h, cfg, false, |pts, faces| {
        *per_frame.entry(faces.len()).or_default() += 1;
        for f in faces {
            let t = tracks.entry(f.track_id).or_insert(TrackSummary {
                first_ns: pts,
                last_ns: pts,
                frames: 0,
                offered: 0,
            });
            t.last_ns = pts;
            t.frames += 1;
            t.offered += f.offered as u64;
        }
        if args.json {
            let list: Vec<_> = faces
                .iter()
                .map(|f| {
                    json!({"track_id": f.track_id, "box": round_box(&f.bbox), "score": r3(f.score),
                           "landmarks": f.landmarks.map(|p| p.map(r1)), "offered": f.offered})
                })
                .collect();
            frames_json.push(json!({"pts": pts, "faces": list}));
        }
    })?;
    if args.json {
        println!(
            "{}",
            json!({ "width": w, "height": h, "frames": frames_json })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: {n} frames at {w}x{h}", args.input);
    for (count, frames) in &per_frame {
        println!("  {frames:>6} frames with {count} face(s)");
    }
    for (id, t) in &tracks {
        println!(
            "  track {id:>3}: {:.2}-{:.2} s, in {} frames, offered in {}",
            t.first_ns as f64 / 1e9,
            t.last_ns as f64 / 1e9,
            t.frames,
            t.offered
        );
    }
    Ok(ExitCode::SUCCESS)
}

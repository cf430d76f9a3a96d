//! CenterFace through ONNX Runtime: the committed `models/centerface.onnx` (see models/MODELS.md),
//! checked against its sha256 before it is loaded, run at a reduced resolution into reused buffers.

pub use super::decode::Detection;
use super::decode::{self, Heads};
use super::image::{RgbView, resize_to_planar};
use anyhow::{Context, Result, bail};
use ort::session::Session;
use ort::value::TensorRef;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// sha256 of `models/centerface.onnx` as `scripts/convert_centerface.py` writes it.
pub const CENTERFACE_SHA256: &str =
    "e50c58b64599f94a343ac1dc58fa4902635c2e1939b316afb39142c39c99b22e";
/// Network input sides must be multiples of this.
pub const SIDE_MULTIPLE: usize = 32;

const INPUT: &str = "input.1";
const OUT_HEATMAP: &str = "537";
const OUT_SCALE: &str = "538";
const OUT_OFFSET: &str = "539";
const OUT_LANDMARKS: &str = "540";

/// Detector settings.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Heatmap peak threshold.
    pub threshold: f32,
    /// Boxes overlapping a better one by this IoU or more are dropped.
    pub nms_iou: f32,
    /// ONNX Runtime intra-op threads (1 = one core).
    pub intra_threads: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: 0.5,
            nms_iou: 0.3,
            intra_threads: 1,
        }
    }
}

/// Where the model is looked for: next to the sources (a checkout), else `<prefix>/share/avsepd/`
/// next to an installed binary.
pub fn default_model_path() -> PathBuf {
    crate::model::shipped_model_path("centerface.onnx")
}

/// Read `path` and check it is exactly the model we converted; the error names the path.
pub fn read_verified(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "face detector model `{}` cannot be read (see models/MODELS.md)",
            path.display()
        )
    })?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if hex != CENTERFACE_SHA256 {
        bail!(
            "face detector model `{}` is corrupt or not the expected file: sha256 {hex}, expected \
             {CENTERFACE_SHA256} (regenerate with scripts/convert_centerface.py)",
            path.display()
        );
    }
    Ok(bytes)
}

/// An ONNX Runtime session shared by every stream of the process that uses the same model file
/// and thread setting: one copy of the weights and of ORT's arena, however many cameras. Runs are
/// serialised by the mutex; a detection every k-th frame leaves plenty of room for several
/// streams.
type SharedSession = Arc<Mutex<Session>>;

/// One cache entry: model path, intra-op threads, and the session while any user holds it.
type CachedSession = (PathBuf, usize, std::sync::Weak<Mutex<Session>>);

static SESSIONS: Mutex<Vec<CachedSession>> = Mutex::new(Vec::new());

/// The live session for (`path`, `threads`), or a new one made by `make`.
fn shared_session(
    path: &Path,
    threads: usize,
    make: impl FnOnce() -> Result<Session>,
) -> Result<SharedSession> {
    let mut cache = SESSIONS.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(_, _, weak)| weak.strong_count() > 0);
    if let Some(s) = cache
        .iter()
        .find(|(p, t, _)| p == path && *t == threads)
        .and_then(|(_, _, weak)| weak.upgrade())
    {
        return Ok(s);
    }
    let session = Arc::new(Mutex::new(make()?));
    cache.push((path.to_path_buf(), threads, Arc::downgrade(&session)));
    Ok(session)
}

/// How many distinct detector sessions are alive in the process (for tests and metrics).
pub fn live_sessions() -> usize {
    let cache = SESSIONS.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .iter()
        .filter(|(_, _, w)| w.strong_count() > 0)
        .count()
}

/// A CenterFace detector: the (shared) session and the buffers this user reuses frame to frame.
pub struct CenterFace {
    session: SharedSession,
    cfg: DetectorConfig,
    input: Vec<f32>,
    candidates: Vec<Detection>,
}

/// The network input size for an image of `w x h` whose longer side is brought to `long_side`:
/// (scale, net_w, net_h), sides rounded up to a multiple of 32.
pub fn net_geometry(w: usize, h: usize, long_side: usize) -> (f32, usize, usize) {
    let scale = long_side as f32 / w.max(h) as f32;
    let up = |v: usize| v.div_ceil(SIDE_MULTIPLE).max(1) * SIDE_MULTIPLE;
    let nw = up((w as f32 * scale).round() as usize);
    let nh = up((h as f32 * scale).round() as usize);
    (scale, nw, nh)
}

impl CenterFace {
    /// Load and verify the model at `path` (None: [`default_model_path`]).
    pub fn load(path: Option<&Path>, cfg: DetectorConfig) -> Result<Self> {
        let path = path
            .map(Path::to_path_buf)
            .unwrap_or_else(default_model_path);
        let session = shared_session(&path, cfg.intra_threads, || {
            let bytes = read_verified(&path)?;
            crate::model::runtime::session_from_bytes(
                "face detector",
                &path,
                &bytes,
                cfg.intra_threads,
            )
        })?;
        Ok(CenterFace {
            session,
            cfg,
            input: Vec::new(),
            candidates: Vec::new(),
        })
    }

    /// Detect faces in `img`, run with its longer side brought to `long_side` pixels; `out` is
    /// cleared and filled with boxes and landmarks in `img` pixels, best score first.
    pub fn detect(
        &mut self,
        img: &RgbView,
        long_side: usize,
        out: &mut Vec<Detection>,
    ) -> Result<()> {
        out.clear();
        if img.width == 0 || img.height == 0 {
            return Ok(());
        }
        let (scale, nw, nh) = net_geometry(img.width, img.height, long_side);
        // resize() keeps the capacity: after the first frame of a stream nothing is allocated here.
        self.input.resize(3 * nw * nh, 0.0);
        resize_to_planar(img, scale, &mut self.input, nw, nh);
        let tensor = TensorRef::from_array_view(([1usize, 3, nh, nw], &self.input[..]))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs![INPUT => tensor])?;
        let plane = |name: &str| -> Result<&[f32]> {
            let (_, data) = outputs[name].try_extract_tensor::<f32>()?;
            Ok(data)
        };
        let heads = Heads {
            heatmap: plane(OUT_HEATMAP)?,
            scale: plane(OUT_SCALE)?,
            offset: plane(OUT_OFFSET)?,
            landmarks: plane(OUT_LANDMARKS)?,
            w: nw / 4,
            h: nh / 4,
        };
        self.candidates.clear();
        decode::decode(&heads, self.cfg.threshold, &mut self.candidates);
        decode::nms(&mut self.candidates, self.cfg.nms_iou);
        let inv = 1.0 / scale;
        let (fw, fh) = (img.width as f32, img.height as f32);
        for d in &self.candidates {
            let b = d.bbox;
            let mut det = *d;
            det.bbox = [
                (b[0] * inv).clamp(0.0, fw),
                (b[1] * inv).clamp(0.0, fh),
                (b[2] * inv).clamp(0.0, fw),
                (b[3] * inv).clamp(0.0, fh),
            ];
            for lm in &mut det.landmarks {
                *lm = [lm[0] * inv, lm[1] * inv];
            }
            // A box that lies wholly in the letterbox padding is no face of this image.
            if det.bbox[2] - det.bbox[0] >= 1.0 && det.bbox[3] - det.bbox[1] >= 1.0 {
                out.push(det);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_share_one_session_per_model() {
        if crate::model::runtime::environment(None).is_err() {
            eprintln!("SKIP: ONNX Runtime library not set up (make setup)");
            return;
        }
        let a = CenterFace::load(None, DetectorConfig::default()).expect("model loads");
        let b = CenterFace::load(None, DetectorConfig::default()).expect("model loads");
        assert!(
            Arc::ptr_eq(&a.session, &b.session),
            "a second stream loaded its own copy"
        );
        let other = DetectorConfig {
            intra_threads: 2,
            ..DetectorConfig::default()
        };
        let c = CenterFace::load(None, other).expect("model loads");
        assert!(
            !Arc::ptr_eq(&a.session, &c.session),
            "a different thread setting is a new session"
        );
    }

    #[test]
    fn geometry_rounds_up_to_32() {
        assert_eq!(net_geometry(1280, 720, 320), (0.25, 320, 192));
        assert_eq!(net_geometry(512, 512, 512), (1.0, 512, 512));
        let (_, w, h) = net_geometry(1666, 1136, 1666);
        assert_eq!((w, h), (1696, 1152));
    }

    #[test]
    fn missing_model_names_the_path() {
        let err = read_verified(Path::new("/nonexistent/centerface.onnx")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/centerface.onnx"));
    }

    #[test]
    fn wrong_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("centerface.onnx");
        std::fs::write(&p, b"not a model").unwrap();
        let err = format!("{:#}", read_verified(&p).unwrap_err());
        assert!(
            err.contains("corrupt") && err.contains(&p.display().to_string()),
            "{err}"
        );
    }
}

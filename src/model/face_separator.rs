//! The face-conditioned separator (models/separator.onnx) run through ONNX Runtime, one streaming
//! call per 40 ms chunk for every speaker slot that holds a face (DESIGN.md "Streaming model call";
//! the same contract as training/onnx_run.py, which scores the model offline).
//!
//! Each slot keeps its own recurrent state between calls; all slots with a face go through one call
//! as rows of a batch. A model with look-ahead (`lookahead_frames` = 4 L) returns the mask of the
//! chunk it was given L calls earlier, so a slot's first L masks after it takes a new face belong
//! to no chunk of that face and are zero.

use super::CHUNK_FRAMES;
use crate::dsp::{
    COMPRESS_EXPONENT, Complex32, HOP, N_BINS, N_FFT, SAMPLE_RATE, WIN_LENGTH, to_model_channels,
};
use crate::stream::FaceFrame;
use crate::vision::ROI_SIZE;
use anyhow::{Context, Result, anyhow, bail};
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use std::path::{Path, PathBuf};

/// Look-ahead a model may have: whole chunks, at most 80 ms (the bound).
const MAX_LOOKAHEAD_CHUNKS: usize = 2;
const ROI_LEN: usize = ROI_SIZE * ROI_SIZE;
const CHUNK_LEN: usize = CHUNK_FRAMES * N_BINS;

/// Output gains (dB) of models whose files predate the `output_gain_db` metadata key, by sha256.
/// The models are trained with a scale-invariant loss, so their output level is their own; the
/// gain brings a voice back to about the level it has in the mixture. Measured with `python -m
/// training calibrate --split val` (training/calibrate.py; models/MODELS.md "Output level").
const KNOWN_OUTPUT_GAINS: [(&str, f32); 1] = [(
    // v15s, the shipped models/separator.onnx: median of 165 validation faces, quartiles 22.3 /
    // 27.9 dB.
    "c23e74289a526f492071ca3bb77706bf7219f8d5d2c36796b27e0e82b2e5e648",
    25.69,
)];

/// Where the shipped model is looked for: next to the sources (a checkout), else
/// `<prefix>/share/avsepd/` next to an installed binary.
pub fn default_model_path() -> PathBuf {
    super::shipped_model_path("separator.onnx")
}

/// The metadata values the signal and call contracts fix (DESIGN.md), as the exporter writes them.
fn expected_metadata() -> [(&'static str, String); 8] {
    [
        ("sample_rate", SAMPLE_RATE.to_string()),
        ("n_fft", N_FFT.to_string()),
        ("win_length", WIN_LENGTH.to_string()),
        ("hop_length", HOP.to_string()),
        ("chunk_frames", CHUNK_FRAMES.to_string()),
        ("compress_exponent", COMPRESS_EXPONENT.to_string()),
        ("roi_size", ROI_SIZE.to_string()),
        ("model_kind", "av".to_string()),
    ]
}

/// What the daemon needs to know about a model, read from its metadata and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    pub lookahead_chunks: usize,
    /// `state_*` inputs and the outputs they are fed back from, in the same order.
    pub state_inputs: Vec<String>,
    pub state_outputs: Vec<String>,
    /// `output_gain_db` when the file has it (training/calibrate.py `--write`).
    pub output_gain_db: Option<f32>,
}

impl ModelContract {
    /// Check a model's metadata against this build's DSP; `get` reads one key. The error names
    /// the file and the key.
    pub fn check(path: &Path, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let file = path.display();
        for (key, want) in expected_metadata() {
            match get(key) {
                Some(v) if v == want => {}
                Some(v) => bail!(
                    "separator model `{file}`: metadata {key} = `{v}`, avsepd needs `{want}`{}",
                    if key == "model_kind" {
                        " (a face-conditioned model; the audio-only baseline cannot say whose voice is whose)"
                    } else {
                        " (the model was exported for a different signal contract)"
                    }
                ),
                None => bail!(
                    "separator model `{file}`: metadata {key} is missing (not a file from `python -m training export`?)"
                ),
            }
        }
        let lookahead: usize = get("lookahead_frames")
            .and_then(|v| v.parse().ok())
            .filter(|f: &usize| f.is_multiple_of(CHUNK_FRAMES) && f / CHUNK_FRAMES <= MAX_LOOKAHEAD_CHUNKS)
            .ok_or_else(|| {
                anyhow!(
                    "separator model `{file}`: metadata lookahead_frames must be 0, 4 or 8, got {:?}",
                    get("lookahead_frames")
                )
            })?;
        let list = |key: &str| -> Result<Vec<String>> {
            let v = get(key)
                .ok_or_else(|| anyhow!("separator model `{file}`: metadata {key} is missing"))?;
            Ok(v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        };
        let (state_inputs, state_outputs) = (list("state_inputs")?, list("state_outputs")?);
        if state_inputs.len() != state_outputs.len() {
            bail!(
                "separator model `{file}`: metadata state_inputs and state_outputs differ in length"
            );
        }
        let output_gain_db = match get("output_gain_db") {
            None => None,
            Some(v) => Some(
                v.parse::<f32>()
                    .ok()
                    .filter(|g| g.is_finite() && g.abs() <= 60.0)
                    .ok_or_else(|| {
                        anyhow!(
                            "separator model `{file}`: metadata output_gain_db = `{v}` is not a gain in dB between -60 and 60"
                        )
                    })?,
            ),
        };
        Ok(ModelContract {
            lookahead_chunks: lookahead / CHUNK_FRAMES,
            state_inputs,
            state_outputs,
            output_gain_db,
        })
    }
}

/// One speaker slot: the track it serves, its recurrent state and its last mouth crop.
struct Slot {
    track: Option<u64>,
    /// Calls made since the slot took its track (its first `lookahead` masks are for no chunk).
    calls: usize,
    /// One buffer per state tensor, `[state elements]` (the batch row of this slot).
    state: Vec<Vec<f32>>,
    roi: Vec<f32>,
}

/// The face-conditioned separator of one stream.
pub struct FaceSeparator {
    session: Session,
    path: PathBuf,
    contract: ModelContract,
    /// Per state tensor: its shape without the batch axis.
    state_shapes: Vec<Vec<usize>>,
    slots: Vec<Slot>,
    // Batch buffers, sized for every slot at once (allocated here, once).
    mix: Vec<f32>,
    roi: Vec<f32>,
    state_batch: Vec<Vec<f32>>,
    /// The slot of each batch row in the current call.
    rows: Vec<usize>,
    /// Linear factor on every mask: the model's output gain.
    gain: f32,
}

impl FaceSeparator {
    /// Load and check the model (the error names the file and what is wrong), with `slots` speaker
    /// slots, on `threads` intra-op threads.
    pub fn load(path: &Path, slots: usize, threads: usize) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "separator model `{}` cannot be read (models/MODELS.md says how it is made)",
                path.display()
            )
        })?;
        let session = super::runtime::session_from_bytes("separator model", path, &bytes, threads)?;
        let ctx = |e: ort::Error| anyhow!("separator model `{}`: {e}", path.display());
        let contract = {
            let meta = session.metadata().map_err(ctx)?;
            ModelContract::check(path, |k| meta.custom(k))?
        };
        let mut state_shapes = Vec::new();
        for name in &contract.state_inputs {
            let input = session
                .inputs()
                .iter()
                .find(|i| i.name() == name)
                .ok_or_else(|| {
                    anyhow!(
                        "separator model `{}`: state input {name} is listed in metadata but not a graph input",
                        path.display()
                    )
                })?;
            let dims = input.dtype().tensor_shape().ok_or_else(|| {
                anyhow!(
                    "separator model `{}`: {name} is not a tensor",
                    path.display()
                )
            })?;
            let shape: Vec<usize> = dims.iter().skip(1).map(|&d| d.max(0) as usize).collect();
            if shape.contains(&0) {
                bail!(
                    "separator model `{}`: state {name} has a dynamic size besides the batch axis",
                    path.display()
                );
            }
            state_shapes.push(shape);
        }
        let gain_db = output_gain_db(path, &contract, &bytes);
        let sizes: Vec<usize> = state_shapes.iter().map(|s| s.iter().product()).collect();
        let slots = (0..slots)
            .map(|_| Slot {
                track: None,
                calls: 0,
                state: sizes.iter().map(|&n| vec![0.0; n]).collect(),
                roi: vec![0.0; ROI_LEN],
            })
            .collect::<Vec<_>>();
        let n = slots.len();
        Ok(FaceSeparator {
            session,
            path: path.to_path_buf(),
            state_shapes,
            mix: vec![0.0; n * 2 * CHUNK_LEN],
            roi: vec![0.0; n * ROI_LEN],
            state_batch: sizes.iter().map(|&s| vec![0.0; n * s]).collect(),
            rows: Vec::with_capacity(n),
            slots,
            contract,
            gain: 10f32.powf(gain_db / 20.0),
        })
    }

    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Chunks between a chunk's call and its mask.
    pub fn lookahead_chunks(&self) -> usize {
        self.contract.lookahead_chunks
    }

    /// One chunk: `mixture` is its uncompressed spectrum (`CHUNK_FRAMES x N_BINS`), `faces` the
    /// frame of faces on screen during it. Writes into `masks` (`slots x CHUNK_FRAMES x N_BINS`)
    /// each slot's mask for the chunk `lookahead_chunks()` calls ago: zero for a slot without a
    /// face then.
    pub fn masks(
        &mut self,
        mixture: &[Complex32],
        faces: Option<&FaceFrame>,
        masks: &mut [Complex32],
    ) -> Result<()> {
        masks.fill(Complex32::new(0.0, 0.0));
        self.assign(faces);
        self.rows.clear();
        for (k, slot) in self.slots.iter().enumerate() {
            if slot.track.is_some() {
                self.rows.push(k);
            }
        }
        if self.rows.is_empty() {
            return Ok(());
        }
        self.fill_batch(mixture);
        self.call(masks)
    }

    /// Slots follow the frame's `slot_tracks`: a slot whose track changed starts from zero state.
    /// The crop is the track's in this frame, else the slot's last one (a face not offered this
    /// frame, or a stale frame).
    fn assign(&mut self, faces: Option<&FaceFrame>) {
        for (k, slot) in self.slots.iter_mut().enumerate() {
            let track = faces.and_then(|f| f.slot_tracks.get(k).copied().flatten());
            if track != slot.track {
                slot.track = track;
                slot.calls = 0;
                for s in &mut slot.state {
                    s.fill(0.0);
                }
            }
            let (Some(track), Some(frame)) = (track, faces) else {
                continue;
            };
            if let Some(face) = frame.faces.iter().find(|f| f.track_id == track)
                && face.mouth_crop.len() == ROI_LEN
            {
                slot.roi.copy_from_slice(&face.mouth_crop);
            }
        }
    }

    /// The batch inputs: the compressed mixture (the same for every row), each row's crop and state.
    fn fill_batch(&mut self, mixture: &[Complex32]) {
        let b = self.rows.len();
        let (re, im) = self.mix[..2 * CHUNK_LEN].split_at_mut(CHUNK_LEN);
        for f in 0..CHUNK_FRAMES {
            let bins = f * N_BINS..(f + 1) * N_BINS;
            to_model_channels(&mixture[bins.clone()], &mut re[bins.clone()], &mut im[bins]);
        }
        for r in 1..b {
            self.mix.copy_within(0..2 * CHUNK_LEN, r * 2 * CHUNK_LEN);
        }
        for (r, &k) in self.rows.iter().enumerate() {
            let slot = &self.slots[k];
            self.roi[r * ROI_LEN..(r + 1) * ROI_LEN].copy_from_slice(&slot.roi);
            for (batch, state) in self.state_batch.iter_mut().zip(&slot.state) {
                let n = state.len();
                batch[r * n..(r + 1) * n].copy_from_slice(state);
            }
        }
    }

    fn call(&mut self, masks: &mut [Complex32]) -> Result<()> {
        let b = self.rows.len();
        let path = &self.path;
        let err = |e: ort::Error| anyhow!("separator model `{}`: {e}", path.display());
        let mut inputs: Vec<(&str, SessionInputValue)> =
            Vec::with_capacity(2 + self.state_batch.len());
        inputs.push((
            "mix",
            TensorRef::from_array_view((
                [b, 2, CHUNK_FRAMES, N_BINS],
                &self.mix[..b * 2 * CHUNK_LEN],
            ))
            .map_err(err)?
            .into(),
        ));
        inputs.push((
            "roi",
            TensorRef::from_array_view(([b, 1, ROI_SIZE, ROI_SIZE], &self.roi[..b * ROI_LEN]))
                .map_err(err)?
                .into(),
        ));
        for ((name, shape), data) in self
            .contract
            .state_inputs
            .iter()
            .zip(&self.state_shapes)
            .zip(&self.state_batch)
        {
            let n: usize = shape.iter().product();
            let dims: Vec<usize> = std::iter::once(b).chain(shape.iter().copied()).collect();
            let view = TensorRef::from_array_view((dims, &data[..b * n])).map_err(err)?;
            inputs.push((name.as_str(), view.into()));
        }
        let outputs = self.session.run(inputs).map_err(err)?;
        let (_, mask) = outputs["mask"].try_extract_tensor::<f32>().map_err(err)?;
        if mask.len() != b * 2 * CHUNK_LEN {
            bail!(
                "separator model `{}`: mask has {} values for {b} faces, expected {}",
                path.display(),
                mask.len(),
                b * 2 * CHUNK_LEN
            );
        }
        let lookahead = self.contract.lookahead_chunks;
        for (r, &k) in self.rows.iter().enumerate() {
            let slot = &mut self.slots[k];
            // The first `lookahead` masks after a slot takes its face belong to chunks before it.
            if slot.calls >= lookahead {
                let row = &mask[r * 2 * CHUNK_LEN..(r + 1) * 2 * CHUNK_LEN];
                let (re, im) = row.split_at(CHUNK_LEN);
                let out = &mut masks[k * CHUNK_LEN..(k + 1) * CHUNK_LEN];
                let g = self.gain;
                for ((m, &re), &im) in out.iter_mut().zip(re).zip(im) {
                    *m = Complex32::new(g * re, g * im);
                }
            }
            slot.calls += 1;
            for (name, state) in self.contract.state_outputs.iter().zip(&mut slot.state) {
                let (_, v) = outputs[name.as_str()]
                    .try_extract_tensor::<f32>()
                    .map_err(err)?;
                let n = state.len();
                state.copy_from_slice(&v[r * n..(r + 1) * n]);
            }
        }
        Ok(())
    }
}

/// The model's output gain: its metadata's, else the one measured for its sha256, else 0 dB
/// (with a warning: its voices come out at the model's own level).
fn output_gain_db(path: &Path, contract: &ModelContract, bytes: &[u8]) -> f32 {
    use sha2::{Digest, Sha256};
    if let Some(g) = contract.output_gain_db {
        return g;
    }
    let sha: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match KNOWN_OUTPUT_GAINS.iter().find(|(s, _)| *s == sha) {
        Some(&(_, g)) => g,
        None => {
            tracing::warn!(
                model = %path.display(),
                "separator model has no output_gain_db metadata: voices come out at the model's own level (`python -m training calibrate --write` measures and stores it)"
            );
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn shipped_metadata() -> HashMap<&'static str, String> {
        let mut m: HashMap<&'static str, String> = expected_metadata().into_iter().collect();
        m.insert("lookahead_frames", "8".into());
        m.insert("state_inputs", "state_gru,state_prev_roi".into());
        m.insert("state_outputs", "state_gru_out,state_prev_roi_out".into());
        m
    }

    fn check(m: &HashMap<&'static str, String>) -> Result<ModelContract> {
        ModelContract::check(Path::new("m.onnx"), |k| m.get(k).cloned())
    }

    #[test]
    fn the_shipped_contract_is_accepted() {
        let c = check(&shipped_metadata()).unwrap();
        assert_eq!(c.lookahead_chunks, 2);
        assert_eq!(c.state_outputs, ["state_gru_out", "state_prev_roi_out"]);
        assert_eq!(c.output_gain_db, None);
    }

    #[test]
    fn the_output_gain_comes_from_metadata_then_the_known_files() {
        let mut m = shipped_metadata();
        let c = check(&m).unwrap();
        let path = Path::new("m.onnx");
        // Not a known file and no metadata: the model's own level.
        assert_eq!(output_gain_db(path, &c, b"some other model"), 0.0);
        m.insert("output_gain_db", "12.5".into());
        let c = check(&m).unwrap();
        assert_eq!(output_gain_db(path, &c, b"some other model"), 12.5);
        // The shipped file is known by its sha256.
        let shipped = std::fs::read(default_model_path()).unwrap();
        let c = check(&shipped_metadata()).unwrap();
        assert_eq!(output_gain_db(path, &c, &shipped), KNOWN_OUTPUT_GAINS[0].1);
    }

    #[test]
    fn a_mismatching_or_missing_key_is_named() {
        for (key, value) in [
            ("n_fft", Some("1024")),
            ("hop_length", Some("256")),
            ("compress_exponent", Some("0.5")),
            ("model_kind", Some("audio")),
            ("roi_size", None),
            ("lookahead_frames", Some("6")),
            ("lookahead_frames", Some("12")),
            ("state_inputs", None),
            ("output_gain_db", Some("loud")),
            ("output_gain_db", Some("90")),
        ] {
            let mut m = shipped_metadata();
            match value {
                Some(v) => m.insert(key, v.into()),
                None => m.remove(key),
            };
            let e = format!("{:#}", check(&m).unwrap_err());
            assert!(e.contains("m.onnx") && e.contains(key), "{key}: {e}");
        }
    }
}

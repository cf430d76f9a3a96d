//! File outputs of `avsepd separate`: one WAV per speaker slot and `timeline.json`.
//! (The overlay MP4 is an appsrc pipeline: see `egress::OverlayMp4Recorder`.)

use anyhow::{Context, Result};
use serde::Serialize;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// 16 kHz mono 16-bit PCM, header kept valid about once a second so a killed process still
/// leaves a readable file.
pub struct WavRecorder {
    writer: Option<hound::WavWriter<BufWriter<std::fs::File>>>,
    path: PathBuf,
    since_flush: usize,
    samples: u64,
}

impl WavRecorder {
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: crate::media::ingest::AUDIO_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .with_context(|| format!("creating `{}`", path.display()))?;
        Ok(WavRecorder {
            writer: Some(writer),
            path: path.to_path_buf(),
            since_flush: 0,
            samples: 0,
        })
    }

    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        for &s in samples {
            let v = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
            w.write_sample(v)
                .with_context(|| format!("writing `{}`", self.path.display()))?;
        }
        self.samples += samples.len() as u64;
        self.since_flush += samples.len();
        if self.since_flush >= crate::media::ingest::AUDIO_RATE as usize {
            self.since_flush = 0;
            w.flush()
                .with_context(|| format!("writing `{}`", self.path.display()))?;
        }
        Ok(())
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Finalise the header. A file that never got a sample (a source without audio, a source
    /// that failed before its first buffer) is removed rather than left as an empty stub.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.finalize()
                .with_context(|| format!("finishing `{}`", self.path.display()))?;
            if self.samples == 0 {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        Ok(())
    }
}

impl Drop for WavRecorder {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// `timeline.json` as DESIGN.md's Outputs contract gives it. Each stage fills what it owns: the
/// backbone writes one entry per video frame with no faces yet.
#[derive(Debug, Serialize, Default)]
pub struct Timeline {
    pub stream: String,
    pub frames: Vec<TimelineFrame>,
    pub events: Vec<TimelineEvent>,
}

#[derive(Debug, Serialize)]
pub struct TimelineFrame {
    pub pts: u64,
    pub faces: Vec<TimelineFace>,
    pub source_peak: Option<[f32; 2]>,
}

#[derive(Debug, Serialize)]
pub struct TimelineFace {
    pub track_id: u64,
    pub slot: Option<usize>,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub speaking: bool,
    /// The middle of the mouth (between its corner landmarks): the `source_peak` when this face
    /// is the sound source.
    #[serde(skip)]
    pub mouth: [f32; 2],
}

#[derive(Debug, Serialize)]
pub struct TimelineEvent {
    pub pts: u64,
    pub kind: String,
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl Timeline {
    /// Mark each face speaking where its slot's speech covers the frame's pts, put the
    /// `source_peak` on the mouth of the loudest speaking face, and add the segments' starts and ends as `speech_start` / `speech_end` events (with slot, track id).
    pub fn add_speech(&mut self, log: &crate::stream::speech::SpeechLog) {
        use crate::stream::speech::speaking_in;
        let by_slot = log.by_slot();
        for frame in &mut self.frames {
            for face in &mut frame.faces {
                face.speaking = face
                    .slot
                    .and_then(|k| by_slot.get(k))
                    .is_some_and(|segs| speaking_in(segs, frame.pts));
            }
            let source = log.source_at(frame.pts);
            frame.source_peak = source.and_then(|k| {
                let face = frame.faces.iter().find(|f| f.slot == Some(k))?;
                Some(face.mouth)
            });
        }
        let event = |pts: u64, kind: &str, seg: &crate::stream::speech::SpeechSegment| {
            let mut detail = serde_json::Map::new();
            detail.insert("slot".into(), seg.slot.into());
            detail.insert("track_id".into(), seg.track_id.into());
            TimelineEvent {
                pts,
                kind: kind.to_string(),
                detail,
            }
        };
        for seg in &log.segments {
            self.events.push(event(seg.start, "speech_start", seg));
            if let Some(end) = seg.end {
                self.events.push(event(end, "speech_end", seg));
            }
        }
        self.events.sort_by_key(|e| e.pts);
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
        serde_json::to_writer(BufWriter::new(file), self)
            .with_context(|| format!("writing `{}`", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing `{}`", path.display()))?;
        Ok(())
    }
}

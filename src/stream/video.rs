//! The video thread: faces (detect every k frames, track in between, mouth crops) handed to the
//! separation stage, boxes drawn on the overlay outputs (RTP, MP4), and the timeline.

use super::FaceFrame;
use super::StreamCounters;
use super::StreamSpec;
use super::draw::{Canvas, track_colour};
use super::slots::SlotTable;
use crate::media::egress::{OverlayMp4Recorder, OverlayRtpOutput, RtpTarget};
use crate::media::ingest::VideoFrame;
use crate::media::record::{Timeline, TimelineFace, TimelineFrame};
use crate::vision::{FaceObs, FacePipeline, RgbView};
use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use gstreamer as gst;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Frames waiting in the channel from which the vision stage leaves the detector out.
const VISION_SKIP_BACKLOG: usize = 3;

/// How long a file's video thread waits for room in the face channel before dropping a frame.
const FACE_SEND_WAIT: Duration = Duration::from_secs(5);

/// How much vision work a frame gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VisionWork {
    /// Detector (when due), tracker, mouth crops.
    Full,
    /// Tracker and mouth crops only: the thread is behind its camera.
    TrackOnly,
    /// Nothing: a stop is draining the queue.
    Skip,
}

/// The video thread: faces (detector + tracker), the overlay outputs and the timeline.
pub(super) struct VideoThread {
    rtp: Option<OverlayRtpOutput>,
    mp4: Option<OverlayMp4Recorder>,
    timeline: Option<(Timeline, PathBuf)>,
    vision: Option<FacePipeline>,
    faces: Vec<FaceObs>,
    face_tx: Sender<FaceFrame>,
    counters: Arc<StreamCounters>,
    shutdown: Arc<super::Shutdown>,
    /// The source waits for us (a file): never skip vision work to keep up.
    source_waits: bool,
    /// Which track each speaker slot carries.
    slots: SlotTable,
}

impl VideoThread {
    pub(super) fn new(
        spec: &StreamSpec,
        counters: &Arc<StreamCounters>,
        shutdown: &Arc<super::Shutdown>,
        face_tx: Sender<FaceFrame>,
    ) -> Result<Self> {
        let (w, h) = (spec.ingest.width, spec.ingest.height);
        let vision = match &spec.vision {
            Some(cfg) => Some(FacePipeline::new(cfg.clone())?),
            None => None,
        };
        let rtp = match &spec.rtp {
            Some(r) if r.overlay => Some(OverlayRtpOutput::start(
                &format!("{}-overlay", spec.name),
                &RtpTarget {
                    host: r.host.clone(),
                    port: r.overlay_port,
                    mtu: r.mtu,
                },
                w,
                h,
                &spec.name,
                r.overlay_bitrate_kbps,
            )?),
            _ => None,
        };
        let (mp4, timeline) = match &spec.record_dir {
            Some(dir) => (
                Some(OverlayMp4Recorder::create(
                    &dir.join("overlay.mp4"),
                    w,
                    h,
                    &spec.name,
                    spec.rtp.is_some(),
                )?),
                Some((
                    Timeline {
                        stream: spec.name.clone(),
                        ..Default::default()
                    },
                    dir.join("timeline.json"),
                )),
            ),
            None => (None, None),
        };
        Ok(VideoThread {
            rtp,
            mp4,
            timeline,
            vision,
            faces: Vec::new(),
            face_tx,
            counters: counters.clone(),
            shutdown: shutdown.clone(),
            source_waits: spec.source_waits(),
            slots: SlotTable::new(spec.speaker_slots()),
        })
    }

    /// Runs until the channel closes; returns the timeline to write (when recording one) for the
    /// caller to complete with who spoke when, which the audio stage knows only later.
    pub(super) fn run(mut self, rx: Receiver<VideoFrame>) -> Result<Option<(Timeline, PathBuf)>> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(frame) => {
                    if self.shutdown.out_of_time() {
                        let counter = &self.counters.video_stop_dropped_frames;
                        super::shutdown::drop_backlog(rx.len(), counter, "video frames");
                        break;
                    }
                    // Behind (frames waiting): keep the overlay at camera rate by leaving the
                    // detector out for this frame (tracks and mouth crops still follow the
                    // frame). Stopping: no vision work at all, the last faces are drawn. A file
                    // has no camera rate to keep, and at the end of a stream everything queued
                    // is worked through: every frame gets its faces.
                    let work = if self.shutdown.stop_requested() {
                        VisionWork::Skip
                    } else if !self.source_waits && rx.len() >= VISION_SKIP_BACKLOG {
                        VisionWork::TrackOnly
                    } else {
                        VisionWork::Full
                    };
                    self.on_frame(&frame, work)?
                }
                Err(RecvTimeoutError::Timeout) if !self.shutdown.is_set() => {}
                Err(_) => break,
            }
        }
        if let Some(r) = &self.rtp {
            r.finish()?;
        }
        if let Some(m) = &self.mp4 {
            m.finish()?;
        }
        // Like the WAV and MP4 files, the timeline exists only when there is something in it.
        Ok(self.timeline.take().filter(|(t, _)| !t.frames.is_empty()))
    }

    fn on_frame(&mut self, frame: &VideoFrame, work: VisionWork) -> Result<()> {
        tracing::trace!(
            pts = frame.pts_ns,
            at = super::monotonic_ns(),
            "video frame in"
        );
        let c = &self.counters;
        c.last_pts_ns
            .fetch_max(frame.pts_ns + super::faces::FRAME_NS, Ordering::Relaxed);
        c.last_data_at_ns
            .store(super::monotonic_ns(), Ordering::Relaxed);
        let counter = match work {
            VisionWork::Full => None,
            VisionWork::TrackOnly => Some(&c.vision_track_only_frames),
            VisionWork::Skip => Some(&c.vision_skipped_frames),
        };
        if let Some(counter) = counter.filter(|_| self.vision.is_some()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if work != VisionWork::Skip {
            self.find_faces(frame, work == VisionWork::Full)?;
        }
        // Boxes are drawn on a copy; without faces the decoded frame goes out as it is.
        let drawn = if self.faces.is_empty() || (self.rtp.is_none() && self.mp4.is_none()) {
            None
        } else {
            Some(self.draw_faces(frame)?)
        };
        let out = drawn.as_ref().unwrap_or(&frame.buffer);
        if let Some(r) = &self.rtp
            && r.push(frame.pts_ns, out)?
        {
            self.counters
                .video_out_dropped_frames
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(m) = &mut self.mp4
            && m.push(frame.pts_ns, out)?
        {
            self.counters
                .video_out_dropped_frames
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some((timeline, _)) = &mut self.timeline {
            timeline.frames.push(TimelineFrame {
                pts: frame.pts_ns,
                faces: self
                    .faces
                    .iter()
                    .map(|f| TimelineFace {
                        track_id: f.track_id,
                        slot: self.slots.slot_of(f.track_id),
                        bbox: f.bbox,
                        speaking: false,
                        mouth: mouth_centre(&f.landmarks),
                    })
                    .collect(),
                source_peak: None,
            });
        }
        self.counters
            .video_out_frames
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Detect (when `detect`) and track faces in the frame, and hand them to the separation stage.
    fn find_faces(&mut self, frame: &VideoFrame, detect: bool) -> Result<()> {
        let Some(vision) = &mut self.vision else {
            return Ok(());
        };
        let busy = Instant::now();
        let map = frame
            .buffer
            .map_readable()
            .map_err(|_| anyhow!("video frame cannot be mapped"))?;
        let (w, h) = (frame.width as usize, frame.height as usize);
        let view = RgbView {
            data: map.as_slice(),
            width: w,
            height: h,
            // GStreamer pads RGB rows to a multiple of 4 bytes.
            stride: map.len() / h.max(1),
        };
        if detect {
            vision.process(frame.pts_ns, &view, true, &mut self.faces)?;
        } else {
            vision.track_only(frame.pts_ns, &view, true, &mut self.faces);
        }
        let c = &self.counters;
        c.vision_busy_ns
            .fetch_add(busy.elapsed().as_nanos() as u64, Ordering::Relaxed);
        c.faces_observed
            .fetch_add(self.faces.len() as u64, Ordering::Relaxed);
        if let Some(max_id) = self.faces.iter().map(|f| f.track_id).max() {
            c.tracks_started.fetch_max(max_id, Ordering::Relaxed);
        }
        let offered: Vec<FaceObs> = self.faces.iter().filter(|f| f.offered).cloned().collect();
        self.slots.update(offered.iter().map(|f| f.track_id));
        tracing::trace!(pts = frame.pts_ns, at = super::monotonic_ns(), "faces out");
        let offered = FaceFrame {
            pts_ns: frame.pts_ns,
            faces: offered,
            slot_tracks: self.slots.tracks(),
        };
        // A file's audio takes its faces as it needs them: wait for room (bounded, in case the
        // audio thread is stuck on something else). Live: never wait, drop and count.
        let sent = if self.source_waits {
            match self.face_tx.send_timeout(offered, FACE_SEND_WAIT) {
                Ok(()) | Err(SendTimeoutError::Disconnected(_)) => true,
                Err(SendTimeoutError::Timeout(_)) => false,
            }
        } else {
            match self.face_tx.try_send(offered) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => true,
                Err(TrySendError::Full(_)) => false,
            }
        };
        if !sent {
            c.face_frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A copy of the frame with each face's box and track id drawn on it.
    fn draw_faces(&self, frame: &VideoFrame) -> Result<gst::Buffer> {
        let mut out = frame
            .buffer
            .copy_deep()
            .map_err(|_| anyhow!("cannot copy a frame"))?;
        {
            let b = out
                .get_mut()
                .ok_or_else(|| anyhow!("frame copy not writable"))?;
            let mut map = b
                .map_writable()
                .map_err(|_| anyhow!("frame copy cannot be mapped"))?;
            let h = frame.height as usize;
            let stride = map.len() / h.max(1);
            let mut canvas = Canvas {
                data: map.as_mut_slice(),
                width: frame.width as usize,
                height: h,
                stride,
            };
            // Who is speaking, as the audio stage last decided (it runs behind the video by its
            // look-ahead and the STFT, ~100 ms live).
            let speaking = self.counters.speaking_slots.load(Ordering::Relaxed);
            let source = self
                .counters
                .source_slot
                .load(Ordering::Relaxed)
                .checked_sub(1);
            for f in &self.faces {
                let colour = track_colour(f.track_id);
                let thickness = if f.offered { 3 } else { 1 };
                canvas.rect(f.bbox, thickness, colour);
                if let Some(k) = self.slots.slot_of(f.track_id).filter(|&k| k < 64) {
                    if speaking & (1 << k) != 0 {
                        canvas.speaking_bar(f.bbox, colour);
                    }
                    if source == Some(k as u64) {
                        let [x, y] = mouth_centre(&f.landmarks);
                        canvas.source_marker(x as i64, y as i64);
                    }
                }
                let (x, y) = (f.bbox[0] as i64, f.bbox[1] as i64 - 14);
                canvas.number(x.max(0), y.max(0), f.track_id, 2, colour);
            }
        }
        Ok(out)
    }
}

/// The middle of the mouth in frame pixels (`vision::crop::mouth_centre`).
fn mouth_centre(l: &crate::vision::Landmarks) -> [f32; 2] {
    crate::vision::crop::mouth_centre(l).map(|v| v as f32)
}

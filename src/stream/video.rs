//! The video thread: faces (detect every k frames, track in between, mouth crops) handed to the
//! separation stage, boxes drawn on the overlay outputs (RTP, MP4), and the timeline.

use super::FaceFrame;
use super::StreamCounters;
use super::StreamSpec;
use super::draw::{Canvas, track_colour};
use crate::media::egress::{OverlayMp4Recorder, OverlayRtpOutput, RtpTarget};
use crate::media::ingest::VideoFrame;
use crate::media::record::{Timeline, TimelineFace, TimelineFrame};
use crate::vision::{FaceObs, FacePipeline, RgbView};
use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use gstreamer as gst;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Frames waiting in the channel from which the vision stage is skipped for a frame.
const VISION_SKIP_BACKLOG: usize = 3;

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
        })
    }

    pub(super) fn run(mut self, rx: Receiver<VideoFrame>) -> Result<()> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(frame) => {
                    if self.shutdown.out_of_time() {
                        let counter = &self.counters.video_stop_dropped_frames;
                        super::shutdown::drop_backlog(rx.len(), counter, "video frames");
                        break;
                    }
                    // Behind (frames waiting) or stopping: keep the overlay at camera rate (or
                    // the stop quick) by skipping the vision work for this frame; the last faces
                    // are kept and drawn. A file has no camera rate to keep, and at the end of a
                    // stream everything queued is worked through: every frame gets its faces.
                    let behind = (!self.source_waits && rx.len() >= VISION_SKIP_BACKLOG)
                        || self.shutdown.stop_requested();
                    self.on_frame(&frame, behind)?
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
        if let Some((timeline, path)) = &self.timeline
            && !timeline.frames.is_empty()
        {
            timeline.write(path)?;
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: &VideoFrame, behind: bool) -> Result<()> {
        let c = &self.counters;
        c.last_pts_ns
            .fetch_max(frame.pts_ns + 40_000_000, Ordering::Relaxed);
        c.last_data_at_ns
            .store(super::monotonic_ns(), Ordering::Relaxed);
        if behind && self.vision.is_some() {
            self.counters
                .vision_skipped_frames
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.find_faces(frame)?;
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
                        slot: None,
                        bbox: f.bbox,
                        speaking: false,
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

    /// Detect/track faces in the frame and hand them to the separation stage.
    fn find_faces(&mut self, frame: &VideoFrame) -> Result<()> {
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
        vision.process(frame.pts_ns, &view, true, &mut self.faces)?;
        let c = &self.counters;
        c.vision_busy_ns
            .fetch_add(busy.elapsed().as_nanos() as u64, Ordering::Relaxed);
        c.faces_observed
            .fetch_add(self.faces.len() as u64, Ordering::Relaxed);
        if let Some(max_id) = self.faces.iter().map(|f| f.track_id).max() {
            c.tracks_started.fetch_max(max_id, Ordering::Relaxed);
        }
        let offered = FaceFrame {
            pts_ns: frame.pts_ns,
            faces: self.faces.iter().filter(|f| f.offered).cloned().collect(),
        };
        match self.face_tx.try_send(offered) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                c.face_frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
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
            for f in &self.faces {
                let colour = track_colour(f.track_id);
                let thickness = if f.offered { 3 } else { 1 };
                canvas.rect(f.bbox, thickness, colour);
                let (x, y) = (f.bbox[0] as i64, f.bbox[1] as i64 - 14);
                canvas.number(x.max(0), y.max(0), f.track_id, 2, colour);
            }
        }
        Ok(out)
    }
}

//! The video thread: the overlay outputs (RTP, MP4) and the timeline.

use super::StreamCounters;
use super::StreamSpec;
use crate::media::egress::{OverlayMp4Recorder, OverlayRtpOutput, RtpTarget};
use crate::media::ingest::VideoFrame;
use crate::media::record::{Timeline, TimelineFrame};
use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The video thread: overlay outputs and the timeline.
pub(super) struct VideoThread {
    rtp: Option<OverlayRtpOutput>,
    mp4: Option<OverlayMp4Recorder>,
    timeline: Option<(Timeline, PathBuf)>,
    t0: Option<u64>,
    counters: Arc<StreamCounters>,
    quit: Arc<AtomicBool>,
}

impl VideoThread {
    pub(super) fn new(
        spec: &StreamSpec,
        counters: &Arc<StreamCounters>,
        quit: &Arc<AtomicBool>,
    ) -> Result<Self> {
        let (w, h) = (spec.ingest.width, spec.ingest.height);
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
            t0: None,
            counters: counters.clone(),
            quit: quit.clone(),
        })
    }

    pub(super) fn run(mut self, rx: Receiver<VideoFrame>) -> Result<()> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(frame) => self.on_frame(&frame)?,
                Err(RecvTimeoutError::Timeout) if !self.quit.load(Ordering::Relaxed) => {}
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

    fn on_frame(&mut self, frame: &VideoFrame) -> Result<()> {
        self.t0.get_or_insert(frame.pts_ns);
        if let Some(r) = &self.rtp {
            r.push(frame.pts_ns, &frame.buffer)?;
        }
        if let Some(m) = &mut self.mp4 {
            m.push(frame.pts_ns, &frame.buffer)?;
        }
        if let Some((timeline, _)) = &mut self.timeline {
            timeline.frames.push(TimelineFrame {
                pts: frame.pts_ns,
                faces: Vec::new(),
                source_peak: None,
            });
        }
        self.counters
            .video_out_frames
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

//! Egress: appsrc-fed GStreamer pipelines. One RTP audio output per speaker slot (Opus or L16), one
//! RTP overlay video output (H.264), and the same appsrc plumbing for file recordings.

use crate::media::latency::LatencyTracker;
use crate::media::templates;
use anyhow::{Context, Result, anyhow};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;
use std::time::Duration;

/// Codec of a speaker output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpAudioCodec {
    Opus,
    L16,
}

/// What a recording's appsrc holds before the caller waits: 5 video frames.
pub const RECORDING_QUEUE: Duration = Duration::from_millis(200);

/// An appsrc-driven pipeline built from a template whose source is `name=src`.
pub struct AppSrcPipeline {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    what: String,
    /// A recording: `push` waits for room (see [`Self::wait_for_room`]).
    waits: bool,
}

/// How long a recording may make no room at all before `push` gives up: far beyond any encoder
/// on a loaded machine, short enough that a wedged pipeline ends the run instead of hanging it.
const RECORDING_STALL: Duration = Duration::from_secs(30);

impl AppSrcPipeline {
    /// `live`: a real-time output (never blocks the caller; old data is dropped when the encoder
    /// falls more than a second behind). Otherwise a recording: the caller waits for room, and
    /// only [`RECORDING_QUEUE`] may wait in the pipeline, because all of it must be encoded when
    /// the file is finished (a stop must not wait on a second of backlog on a loaded machine).
    pub fn build(template: &str, what: &str, caps: &gst::Caps, live: bool) -> Result<Self> {
        crate::media::init()?;
        let bin = templates::bin(template, what)?;
        let pipeline = gst::Pipeline::with_name(what);
        pipeline.add(&bin)?;
        let src = templates::element(&bin, "src")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| anyhow!("`src` of {what} is not an appsrc"))?;
        src.set_caps(Some(caps));
        src.set_format(gst::Format::Time);
        src.set_is_live(live);
        src.set_do_timestamp(false);
        src.set_max_time(if live {
            gst::ClockTime::from_seconds(1)
        } else {
            gst::ClockTime::from_nseconds(RECORDING_QUEUE.as_nanos() as u64)
        });
        src.set_max_bytes(0);
        src.set_max_buffers(0);
        // Never appsrc's own blocking: a push blocked there waits on a condition that an error
        // downstream (disk full) never signals, and the caller hangs for good.
        src.set_block(false);
        if live {
            src.set_property_from_str("leaky-type", "downstream");
        }
        Ok(AppSrcPipeline {
            pipeline,
            src,
            what: what.to_string(),
            waits: !live,
        })
    }

    pub fn element(&self, name: &str) -> Result<gst::Element> {
        self.pipeline
            .by_name(name)
            .ok_or_else(|| anyhow!("{} has no element `{name}`", self.what))
    }

    pub fn start(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| anyhow!("{} could not start: {}", self.what, self.bus_error()))?;
        Ok(())
    }

    /// Queue `buffer`. Returns true when a live output's queue was full, so that appsrc drops
    /// its oldest buffer to take this one (the caller counts it: appsrc 1.22 does not).
    pub fn push(&self, buffer: gst::Buffer) -> Result<bool> {
        let full = if self.waits {
            self.wait_for_room()?;
            false
        } else {
            self.src.current_level_time() >= self.src.max_time()
        };
        self.src
            .push_buffer(buffer)
            .map_err(|e| anyhow!("{}: {e:?}: {}", self.what, self.bus_error()))?;
        Ok(full)
    }

    /// A recording's back-pressure: wait in short slices while the queue is full, and fail on an
    /// error on the bus or when nothing drains for [`RECORDING_STALL`].
    fn wait_for_room(&self) -> Result<()> {
        let max = self.src.max_time();
        let level = || self.src.current_level_time();
        let mut last = (level(), std::time::Instant::now());
        while max > gst::ClockTime::ZERO && level() >= max {
            if let Some(bus) = self.pipeline.bus()
                && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
                && let gst::MessageView::Error(e) = msg.view()
            {
                return Err(anyhow!("{}: {}", self.what, e.error()));
            }
            let now = level();
            if now != last.0 {
                last = (now, std::time::Instant::now());
            } else if last.1.elapsed() > RECORDING_STALL {
                return Err(anyhow!(
                    "{}: nothing encoded for {} s (pipeline stalled)",
                    self.what,
                    RECORDING_STALL.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Send EOS and wait (bounded) until every sink has it: encoders drained, files finalised.
    pub fn finish(&self, timeout: Duration) -> Result<()> {
        let _ = self.src.end_of_stream();
        let bus = self
            .pipeline
            .bus()
            .ok_or_else(|| anyhow!("pipeline without bus"))?;
        let deadline = std::time::Instant::now() + timeout;
        let mut result = Ok(());
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                result = Err(anyhow!("{} did not drain within {:?}", self.what, timeout));
                break;
            }
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_)) => break,
                Some(gst::MessageView::Error(e)) => {
                    result = Err(anyhow!("{}: {}", self.what, e.error()));
                    break;
                }
                _ => {}
            }
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }

    /// The first error waiting on the bus, for a useful message when a push fails.
    fn bus_error(&self) -> String {
        self.pipeline
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "no details on the bus".into())
    }
}

impl Drop for AppSrcPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Caps of everything the compute side produces as audio.
pub fn audio_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("rate", crate::media::ingest::AUDIO_RATE as i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build()
}

/// Caps of the overlay video the compute side produces.
pub fn video_caps(width: u32, height: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", width as i32)
        .field("height", height as i32)
        .field(
            "framerate",
            gst::Fraction::new(crate::media::ingest::VIDEO_FPS as i32, 1),
        )
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

/// Where an RTP output goes.
#[derive(Debug, Clone)]
pub struct RtpTarget {
    pub host: String,
    pub port: u16,
    pub mtu: u32,
}

fn configure_udpsink(p: &AppSrcPipeline, target: &RtpTarget) -> Result<()> {
    let sink = p.element("sink")?;
    sink.set_property("host", &target.host);
    sink.set_property("port", target.port as i32);
    p.element("pay")?.set_property("mtu", target.mtu);
    Ok(())
}

/// One speaker slot's live RTP audio output.
pub struct AudioRtpOutput {
    inner: AppSrcPipeline,
    samples_out: u64,
}

impl AudioRtpOutput {
    pub fn start(
        what: &str,
        target: &RtpTarget,
        codec: RtpAudioCodec,
        opus_bitrate: u32,
        latency: Option<Arc<LatencyTracker>>,
    ) -> Result<Self> {
        let template = match codec {
            RtpAudioCodec::Opus => templates::EGRESS_AUDIO_OPUS,
            RtpAudioCodec::L16 => templates::EGRESS_AUDIO_L16,
        };
        let inner = AppSrcPipeline::build(template, what, &audio_caps(), true)?;
        configure_udpsink(&inner, target)?;
        match codec {
            RtpAudioCodec::Opus => {
                inner
                    .element("enc")?
                    .set_property("bitrate", opus_bitrate as i32);
            }
            RtpAudioCodec::L16 => {
                // 20 ms packets: the default (MTU-sized, ~40 ms) would double the packet delay.
                let pay = inner.element("pay")?;
                pay.set_property("max-ptime", 20_000_000i64);
                pay.set_property("min-ptime", 10_000_000i64);
            }
        }
        if let Some(tracker) = latency {
            probe_sends(&inner.element("sink")?, tracker)?;
        }
        inner.start()?;
        Ok(AudioRtpOutput {
            inner,
            samples_out: 0,
        })
    }

    /// Send `samples` whose first sample has running time `pts_ns`; true when an older buffer
    /// was dropped for it (the encoder is more than a second behind).
    pub fn push(&mut self, pts_ns: u64, samples: &[f32]) -> Result<bool> {
        let buffer = f32_buffer(pts_ns, samples)?;
        self.samples_out += samples.len() as u64;
        self.inner.push(buffer)
    }

    pub fn samples_out(&self) -> u64 {
        self.samples_out
    }

    pub fn finish(&self) -> Result<()> {
        self.inner.finish(Duration::from_secs(2))
    }
}

/// A GStreamer buffer holding `samples` as F32LE with pts and duration set.
pub fn f32_buffer(pts_ns: u64, samples: &[f32]) -> Result<gst::Buffer> {
    let mut buffer = gst::Buffer::with_size(samples.len() * 4)
        .map_err(|_| anyhow!("cannot allocate an audio buffer"))?;
    {
        let b = buffer
            .get_mut()
            .ok_or_else(|| anyhow!("new buffer not writable"))?;
        b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
        b.set_duration(gst::ClockTime::from_nseconds(
            samples.len() as u64 * crate::media::NS_PER_SEC
                / crate::media::ingest::AUDIO_RATE as u64,
        ));
        let mut map = b
            .map_writable()
            .map_err(|_| anyhow!("cannot map an audio buffer"))?;
        for (dst, s) in map.as_mut_slice().chunks_exact_mut(4).zip(samples) {
            dst.copy_from_slice(&s.to_le_bytes());
        }
    }
    Ok(buffer)
}

/// Record the send time of every packet the udpsink gets.
fn probe_sends(sink: &gst::Element, tracker: Arc<LatencyTracker>) -> Result<()> {
    let pad = sink
        .static_pad("sink")
        .ok_or_else(|| anyhow!("udpsink without sink pad"))?;
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    if let Some(pts) = b.pts() {
                        tracker.on_send(pts.nseconds());
                    }
                }
                Some(gst::PadProbeData::BufferList(list)) => {
                    for b in list.iter() {
                        if let Some(pts) = b.pts() {
                            tracker.on_send(pts.nseconds());
                        }
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    )
    .ok_or_else(|| anyhow!("cannot probe udpsink"))?;
    Ok(())
}

/// The live overlay video output: RGB frames -> labels -> H.264 -> RTP.
pub struct OverlayRtpOutput {
    inner: AppSrcPipeline,
}

impl OverlayRtpOutput {
    pub fn start(
        what: &str,
        target: &RtpTarget,
        width: u32,
        height: u32,
        label: &str,
        bitrate_kbps: u32,
    ) -> Result<Self> {
        let inner = AppSrcPipeline::build(
            templates::EGRESS_OVERLAY_RTP,
            what,
            &video_caps(width, height),
            true,
        )?;
        configure_udpsink(&inner, target)?;
        inner.element("label")?.set_property("text", label);
        inner.element("enc")?.set_property("bitrate", bitrate_kbps);
        inner.start()?;
        Ok(OverlayRtpOutput { inner })
    }

    /// Send one RGB frame (the buffer is shared, not copied) with running time `pts_ns`; true
    /// when an older frame was dropped for it (the encoder is more than a second behind).
    pub fn push(&self, pts_ns: u64, frame: &gst::Buffer) -> Result<bool> {
        self.inner.push(retimed(frame, pts_ns)?)
    }

    pub fn finish(&self) -> Result<()> {
        self.inner.finish(Duration::from_secs(2))
    }
}

/// The overlay recorded to an MP4 file (`avsepd separate`).
pub struct OverlayMp4Recorder {
    inner: AppSrcPipeline,
    path: std::path::PathBuf,
    first_pts: Option<u64>,
    frames: u64,
}

impl OverlayMp4Recorder {
    pub fn create(
        path: &std::path::Path,
        width: u32,
        height: u32,
        label: &str,
        live: bool,
    ) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
        }
        let inner = AppSrcPipeline::build(
            templates::RECORD_OVERLAY_MP4,
            "overlay-mp4",
            &video_caps(width, height),
            live,
        )?;
        inner
            .element("sink")?
            .set_property("location", path.to_string_lossy().as_ref());
        inner.element("label")?.set_property("text", label);
        inner.start()?;
        Ok(OverlayMp4Recorder {
            inner,
            path: path.to_path_buf(),
            first_pts: None,
            frames: 0,
        })
    }

    /// Frames are stamped from the first frame's pts so the file starts at 0. True when an older
    /// frame was dropped for this one: only a recording made beside live outputs (`demo`) is
    /// leaky; `separate`'s waits for room.
    pub fn push(&mut self, pts_ns: u64, frame: &gst::Buffer) -> Result<bool> {
        let first = *self.first_pts.get_or_insert(pts_ns);
        self.frames += 1;
        self.inner
            .push(retimed(frame, pts_ns.saturating_sub(first))?)
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Finalise the file; a recording that never got a frame (source without video) is removed
    /// rather than left as an unplayable stub.
    pub fn finish(&self) -> Result<()> {
        if self.frames == 0 {
            let _ = self.inner.pipeline.set_state(gst::State::Null);
            let _ = std::fs::remove_file(&self.path);
            return Ok(());
        }
        self.inner.finish(Duration::from_secs(20))
    }
}

/// A new reference to the same memory with its own timestamps (no pixel copy).
fn retimed(frame: &gst::Buffer, pts_ns: u64) -> Result<gst::Buffer> {
    let mut out = frame.copy();
    let b = out
        .get_mut()
        .ok_or_else(|| anyhow!("buffer copy not writable"))?;
    b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
    b.set_duration(gst::ClockTime::from_mseconds(
        1000 / crate::media::ingest::VIDEO_FPS as u64,
    ));
    Ok(out)
}

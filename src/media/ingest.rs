//! Ingest: any URI GStreamer can open, decoded to F32 16 kHz mono audio and RGB 25 fps video in
//! appsinks, handed to the compute threads over bounded crossbeam channels with their pts.
//!
//! The end of a source is signalled by the channel disconnecting (the appsink's EOS drops its
//! sender), so a consumer sees every buffer before it sees the end. A source without audio or
//! without video disconnects that channel at once, with one warning, and the stream runs degraded.

use crate::media::templates;
use anyhow::{Context, Result, anyhow};
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError, bounded};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Audio sample rate of everything downstream of ingest.
pub const AUDIO_RATE: u32 = 16_000;
/// Video frame rate of everything downstream of ingest (one frame = 640 samples = 4 STFT hops).
pub const VIDEO_FPS: u32 = 25;

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    #[default]
    Auto,
    Tcp,
    Udp,
}

/// What an appsink callback does when its channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Live sources: never block the streaming thread; drop the buffer and count it.
    DropAndCount,
    /// Files processed offline: wait for room. Blocking a file demuxer's thread is GStreamer's own
    /// flow control (nothing is live upstream), and it is what makes offline output lossless.
    Wait,
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub uri: String,
    pub transport: RtspTransport,
    pub latency_ms: u32,
    /// The RTSP source's clock and this host's are synchronized (both NTP, or the same machine):
    /// the jitter buffer keeps the sender's timing instead of estimating its skew, which on a
    /// bursty sender puts video timestamps up to ~250 ms off the audio's (docs/PERFORMANCE.md).
    pub clock_synced: bool,
    pub width: u32,
    pub height: u32,
    /// Deliver in real time (appsink sync): used when a file stands in for a camera.
    pub pace_to_clock: bool,
    pub backpressure: Backpressure,
    /// Channel capacities in buffers.
    pub audio_capacity: usize,
    pub video_capacity: usize,
    /// Deliver at most this much input (ns of running time from the first buffer of either
    /// branch); each branch then ends as at EOS. Cutting here, not downstream, keeps buffers that
    /// are already queued from running past the limit. `None`: until the source ends.
    pub max_duration_ns: Option<u64>,
    /// Added to every pts. A reconnected source restarts its running time at 0; the stream offsets
    /// each new session so that time keeps increasing across reconnects.
    pub pts_offset_ns: u64,
}

impl IngestOptions {
    pub fn new(uri: impl Into<String>) -> Self {
        IngestOptions {
            uri: uri.into(),
            transport: RtspTransport::Auto,
            latency_ms: 200,
            clock_synced: false,
            width: 640,
            height: 360,
            pace_to_clock: false,
            backpressure: Backpressure::DropAndCount,
            audio_capacity: 512,
            // About 1.3 s of video: rides out a busy moment without dropping frames.
            video_capacity: 32,
            max_duration_ns: None,
            pts_offset_ns: 0,
        }
    }
}

/// Decoded audio: F32LE 16 kHz mono, straight from the appsink (no copy).
pub struct AudioChunk {
    /// Running time of the first sample, ns.
    pub pts_ns: u64,
    /// When the appsink handed it over (latency is measured from here).
    pub arrival: Instant,
    /// The buffer follows a discontinuity (lost packets, a seek): its pts is to be believed.
    pub discont: bool,
    /// The first buffer of this source session (after a reconnect: the source was away).
    pub session_start: bool,
    buffer: gst::MappedBuffer<gst::buffer::Readable>,
}

impl AudioChunk {
    /// The samples; borrowed when the buffer is f32-aligned (GStreamer's allocator always is).
    pub fn samples(&self) -> Cow<'_, [f32]> {
        let bytes = self.buffer.as_slice();
        // SAFETY: every bit pattern is a valid f32; align_to only yields the aligned middle part.
        let (head, body, tail) = unsafe { bytes.align_to::<f32>() };
        if head.is_empty() && tail.is_empty() {
            Cow::Borrowed(body)
        } else {
            Cow::Owned(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        }
    }

    pub fn len(&self) -> usize {
        self.buffer.as_slice().len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decoded video: RGB, `width` x `height`, 25 fps. The buffer is passed on without a copy.
pub struct VideoFrame {
    pub pts_ns: u64,
    pub arrival: Instant,
    pub width: u32,
    pub height: u32,
    pub buffer: gst::Buffer,
}

/// Counters of one ingest, readable from any thread.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub audio_buffers: AtomicU64,
    pub audio_samples: AtomicU64,
    pub audio_dropped_buffers: AtomicU64,
    pub video_frames: AtomicU64,
    pub video_dropped_frames: AtomicU64,
    pub has_audio: AtomicBool,
    pub has_video: AtomicBool,
    /// This session's decoder has listed all its streams and none is video.
    pub video_absent: AtomicBool,
    /// Pipelines that did not reach NULL within [`STOP_TIMEOUT`] and were abandoned.
    pub stop_timeouts: AtomicU64,
}

/// How long stopping a source may take before its pipeline is abandoned.
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the bus says about the source, for the stream's supervisor.
#[derive(Debug, Clone)]
pub enum IngestEvent {
    /// Every sink has seen EOS: the source ended normally.
    Eos,
    /// A fatal error, already phrased for the user (names the source).
    Error(String),
    /// The source has no audio or no video; the stream runs degraded.
    Degraded(String),
}

/// A running ingest pipeline. Dropping it stops the pipeline.
pub struct Ingest {
    pipeline: gst::Pipeline,
    pub audio: Receiver<AudioChunk>,
    pub video: Receiver<VideoFrame>,
    pub events: Receiver<IngestEvent>,
    pub counters: Arc<IngestCounters>,
    bus_thread: Option<std::thread::JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    audio_slot: SenderSlot<AudioChunk>,
    video_slot: SenderSlot<VideoFrame>,
}

type SenderSlot<T> = Arc<Mutex<Option<Sender<T>>>>;

impl Ingest {
    /// Build and start the pipeline. Errors that GStreamer reports later (unreachable host, no
    /// decoder) arrive as [`IngestEvent::Error`].
    pub fn start(opts: &IngestOptions) -> Result<Ingest> {
        let audio = bounded(opts.audio_capacity);
        let video = bounded(opts.video_capacity);
        Self::start_with(opts, audio, video, Arc::new(IngestCounters::default()))
    }

    /// Like [`Ingest::start`], but feeding channels and counters the caller keeps across
    /// sessions (reconnects): the end of this source then does not disconnect them.
    pub fn start_with(
        opts: &IngestOptions,
        audio: (Sender<AudioChunk>, Receiver<AudioChunk>),
        video: (Sender<VideoFrame>, Receiver<VideoFrame>),
        counters: Arc<IngestCounters>,
    ) -> Result<Ingest> {
        crate::media::init()?;
        // What this session's decoder lists, not what the last one did.
        counters.has_audio.store(false, Ordering::Relaxed);
        counters.has_video.store(false, Ordering::Relaxed);
        counters.video_absent.store(false, Ordering::Relaxed);
        let label = crate::media::uri::redact(&opts.uri);
        let pipeline = gst::Pipeline::with_name("ingest");
        let decode = gst::ElementFactory::make("uridecodebin")
            .name("decode")
            .property("uri", &opts.uri)
            .build()
            .context("creating uridecodebin (is gstreamer1.0-plugins-base installed?)")?;
        pipeline.add(&decode)?;
        configure_source(&decode, opts);

        let (audio_tx, audio_rx) = audio;
        let (video_tx, video_rx) = video;
        let (event_tx, event_rx) = bounded(64);
        let audio_slot: SenderSlot<AudioChunk> = Arc::new(Mutex::new(Some(audio_tx)));
        let video_slot: SenderSlot<VideoFrame> = Arc::new(Mutex::new(Some(video_tx)));
        let linked = Arc::new(Mutex::new((false, false)));
        let stopping = Arc::new(AtomicBool::new(false));
        let cut = Cut {
            limit_ns: opts.max_duration_ns,
            origin: Arc::new(AtomicU64::new(u64::MAX)),
        };

        {
            let pipeline_weak = pipeline.downgrade();
            let (opts, counters, linked) = (opts.clone(), counters.clone(), linked.clone());
            let (stopping, cut) = (stopping.clone(), cut.clone());
            let (audio_slot, video_slot, event_tx) =
                (audio_slot.clone(), video_slot.clone(), event_tx.clone());
            decode.connect_pad_added(move |_, pad| {
                let Some(pipeline) = pipeline_weak.upgrade() else {
                    return;
                };
                let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
                let kind = caps
                    .structure(0)
                    .map(|s| s.name().to_string())
                    .unwrap_or_default();
                let mut linked = linked.lock().unwrap_or_else(|p| p.into_inner());
                let result = if kind.starts_with("audio/") && !linked.0 {
                    linked.0 = true;
                    link_audio(
                        &pipeline,
                        pad,
                        &opts,
                        audio_slot.clone(),
                        counters.clone(),
                        stopping.clone(),
                        cut.clone(),
                    )
                } else if kind.starts_with("video/") && !linked.1 {
                    linked.1 = true;
                    link_video(
                        &pipeline,
                        pad,
                        &opts,
                        video_slot.clone(),
                        counters.clone(),
                        stopping.clone(),
                        cut.clone(),
                    )
                } else {
                    tracing::debug!(caps = %kind, "ignoring an extra or unsupported stream");
                    Ok(())
                };
                if let Err(e) = result {
                    let _ = event_tx.try_send(IngestEvent::Error(format!("{e:#}")));
                }
            });
        }
        {
            let (counters, linked, label) = (counters.clone(), linked.clone(), label.clone());
            let (audio_slot, video_slot, event_tx) =
                (audio_slot.clone(), video_slot.clone(), event_tx.clone());
            decode.connect_no_more_pads(move |_| {
                let linked = *linked.lock().unwrap_or_else(|p| p.into_inner());
                if !linked.0 {
                    take(&audio_slot);
                    let msg = format!("source `{label}` has no audio: no speaker outputs");
                    tracing::warn!("{msg}");
                    let _ = event_tx.try_send(IngestEvent::Degraded(msg));
                }
                if !linked.1 {
                    take(&video_slot);
                    let msg = format!("source `{label}` has no video: audio only, no overlay");
                    tracing::warn!("{msg}");
                    let _ = event_tx.try_send(IngestEvent::Degraded(msg));
                }
                counters.has_audio.store(linked.0, Ordering::Relaxed);
                counters.has_video.store(linked.1, Ordering::Relaxed);
                counters.video_absent.store(!linked.1, Ordering::Relaxed);
            });
        }

        let bus = pipeline
            .bus()
            .ok_or_else(|| anyhow!("pipeline without a bus"))?;
        let bus_thread = {
            let stopping = stopping.clone();
            let label = label.clone();
            let uri = opts.uri.clone();
            let slots = (audio_slot.clone(), video_slot.clone());
            std::thread::Builder::new()
                .name("ingest-bus".into())
                .spawn(move || watch_bus(bus, event_tx, stopping, (label, uri), slots))?
        };

        // Built before PLAYING so that a failed start is undone by its Drop (pipeline to NULL,
        // bus thread joined) instead of leaking both on every reconnect attempt.
        let ingest = Ingest {
            pipeline,
            audio: audio_rx,
            video: video_rx,
            events: event_rx,
            counters,
            bus_thread: Some(bus_thread),
            stopping,
            audio_slot,
            video_slot,
        };
        ingest
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| {
                anyhow!("source `{label}` could not be started (see the error above for the cause)")
            })?;
        Ok(ingest)
    }

    /// Whether the audio branch may still deliver: false once it saw its EOS (or the duration
    /// limit), or when the source turned out to have no audio.
    pub fn audio_open(&self) -> bool {
        is_open(&self.audio_slot)
    }

    /// Like [`Self::audio_open`], for video.
    pub fn video_open(&self) -> bool {
        is_open(&self.video_slot)
    }

    /// Stop the pipeline. Channels disconnect; buffers already queued stay readable.
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shut_down_pipeline();
        // Disconnect the channels: consumers drain what is queued, then see the end.
        take(&self.audio_slot);
        take(&self.video_slot);
        if let Some(t) = self.bus_thread.take() {
            let _ = t.join();
        }
    }

    /// Set the pipeline to NULL, bounded in time. Under heavy load rtspsrc can deadlock in that
    /// state change right after the end of a stream (the caller waits for a pad task that waits
    /// for the caller's state lock: seen once in dozens of runs on a saturated 2-core machine).
    /// A daemon must not hang on one camera, so after [`STOP_TIMEOUT`] the pipeline is abandoned
    /// (leaked with its stuck thread), counted and logged, and the stream carries on.
    fn shut_down_pipeline(&self) {
        let pipeline = self.pipeline.clone();
        let (done_tx, done_rx) = bounded::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("ingest-stop".into())
            .spawn(move || {
                let _ = pipeline.set_state(gst::State::Null);
                let _ = done_tx.send(());
            });
        if spawned.is_err() {
            let _ = self.pipeline.set_state(gst::State::Null);
            return;
        }
        if done_rx.recv_timeout(STOP_TIMEOUT).is_err() {
            self.counters.stop_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                timeout_s = STOP_TIMEOUT.as_secs(),
                "source pipeline did not stop; abandoning it (GStreamer state-change deadlock)"
            );
        }
    }

    /// The source's duration when it has one (files): progress reporting, and telling a clip
    /// that went quiet at its end from a stalled one.
    pub fn duration_ns(&self) -> Option<u64> {
        self.pipeline
            .query_duration::<gst::ClockTime>()
            .map(|d| d.nseconds())
    }

    /// The pipeline's current position (running time of what has been decoded), ns.
    pub fn position_ns(&self) -> Option<u64> {
        self.pipeline
            .query_position::<gst::ClockTime>()
            .map(|d| d.nseconds())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_open<T>(slot: &SenderSlot<T>) -> bool {
    slot.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

fn take<T>(slot: &SenderSlot<T>) {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// [`IngestOptions::max_duration_ns`] as the appsinks apply it: both branches share one origin,
/// the running time of the first buffer either of them sees.
#[derive(Clone)]
struct Cut {
    limit_ns: Option<u64>,
    /// `u64::MAX` until the first buffer.
    origin: Arc<AtomicU64>,
}

impl Cut {
    /// The running time at which input ends, given a buffer's; `None` without a limit.
    fn end_ns(&self, pts_ns: u64) -> Option<u64> {
        let limit = self.limit_ns?;
        let origin =
            match self
                .origin
                .compare_exchange(u64::MAX, pts_ns, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => pts_ns,
                Err(first) => first,
            };
        Some(origin.saturating_add(limit))
    }
}

/// RTSP knobs are properties of rtspsrc, which uridecodebin creates: set them as it appears.
fn configure_source(decode: &gst::Element, opts: &IngestOptions) {
    let (transport, latency, synced) = (opts.transport, opts.latency_ms, opts.clock_synced);
    decode.connect("source-setup", false, move |args| {
        let source = args[1].get::<gst::Element>().ok()?;
        let is_rtspsrc = source
            .factory()
            .is_some_and(|f| f.name().as_str() == "rtspsrc");
        if is_rtspsrc {
            source.set_property("latency", latency);
            let protocols = match transport {
                RtspTransport::Auto => "tcp+udp+udp-mcast",
                RtspTransport::Tcp => "tcp",
                RtspTransport::Udp => "udp+udp-mcast",
            };
            source.set_property_from_str("protocols", protocols);
            // A camera that stops talking must not hang us forever.
            source.set_property("tcp-timeout", 10_000_000u64);
            // rtpjitterbuffer's default ("slave") follows a camera whose clock drifts from ours;
            // with synchronized clocks there is no drift to follow and "synced" keeps each
            // frame's own timing.
            if synced {
                source.set_property_from_str("buffer-mode", "synced");
            }
        }
        None
    });
}

fn link_branch(pipeline: &gst::Pipeline, pad: &gst::Pad, bin: &gst::Bin) -> Result<()> {
    pipeline.add(bin)?;
    bin.sync_state_with_parent()?;
    let sink = bin
        .static_pad("sink")
        .ok_or_else(|| anyhow!("branch without a sink pad"))?;
    pad.link(&sink)
        .map_err(|e| anyhow!("linking decoded pad: {e:?}"))?;
    Ok(())
}

/// The next buffer of an appsink and its running time plus `offset` (ns); `None` for a buffer
/// without a timestamp.
fn pull_timed(
    sink: &gst_app::AppSink,
    offset: u64,
) -> Result<Option<(gst::Buffer, u64)>, gst::FlowError> {
    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
    let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
    let running = buffer.pts().and_then(|pts| {
        let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
        segment.to_running_time(pts)
    });
    Ok(running.map(|t| (buffer, t.nseconds().saturating_add(offset))))
}

/// Keep the first `keep_ns` of an F32 mono buffer (whole samples, no copy of the data); true
/// when something was cut off, i.e. this is the last buffer before the duration limit.
fn trim_audio(buffer: gst::Buffer, keep_ns: u64) -> Result<(gst::Buffer, bool), gst::FlowError> {
    let ns_per_sample = crate::media::NS_PER_SEC / AUDIO_RATE as u64;
    let keep = keep_ns.div_ceil(ns_per_sample);
    let keep_bytes = usize::try_from(keep)
        .unwrap_or(usize::MAX)
        .saturating_mul(4);
    if keep_bytes >= buffer.size() {
        return Ok((buffer, false));
    }
    let trimmed = buffer
        .copy_region(gst::BufferCopyFlags::MEMORY, 0..keep_bytes)
        .map_err(|_| gst::FlowError::Error)?;
    Ok((trimmed, true))
}

/// A decoded-pad branch from its template: the caps every stage downstream relies on, and the
/// appsink at its end (synchronised to the clock when a file stands in for a camera).
fn branch(
    template: &str,
    name: &str,
    caps: &gst::Caps,
    sync: bool,
) -> Result<(gst::Bin, gst_app::AppSink)> {
    let bin = templates::bin(template, name)?;
    templates::ghost_sink(&bin, "queue")?;
    templates::element(&bin, "caps")?.set_property("caps", caps);
    let sink = templates::element(&bin, "sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow!("`sink` of {name} is not an appsink"))?;
    sink.set_sync(sync);
    Ok((bin, sink))
}

fn link_audio(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    opts: &IngestOptions,
    slot: SenderSlot<AudioChunk>,
    counters: Arc<IngestCounters>,
    stopping: Arc<AtomicBool>,
    cut: Cut,
) -> Result<()> {
    let (bin, sink) = branch(
        templates::INGEST_AUDIO,
        "ingest-audio",
        &crate::media::egress::audio_caps(),
        opts.pace_to_clock,
    )?;
    let policy = opts.backpressure;
    let offset = opts.pts_offset_ns;
    let first_seen = AtomicBool::new(false);
    // Set when a buffer was dropped: the next one that gets through starts a new stretch, so the
    // aligner fills the hole by its pts instead of closing it up.
    let gap = AtomicBool::new(false);
    let eos_slot = slot.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let drops = Drops {
                    count: &counters.audio_dropped_buffers,
                    gap: Some(&gap),
                    first_seen: None,
                };
                // Untimed audio cannot be aligned: dropped and counted like a full channel's.
                let Some((buffer, pts_ns)) = pull_timed(sink, offset)? else {
                    drops.record();
                    return Ok(gst::FlowSuccess::Ok);
                };
                // The first buffer of a session starts a new stretch of the timeline.
                let session_start = !first_seen.swap(true, Ordering::Relaxed);
                // A dropped first buffer hands the session's start on to the next one.
                let drops = Drops {
                    first_seen: session_start.then_some(&first_seen),
                    ..drops
                };
                let discont = buffer.flags().contains(gst::BufferFlags::DISCONT)
                    | session_start
                    | gap.swap(false, Ordering::Relaxed);
                // The duration limit: drop what lies past it, trim the buffer that straddles it.
                let (buffer, last) = match cut.end_ns(pts_ns) {
                    Some(end) if pts_ns >= end => {
                        take(&slot);
                        return Err(gst::FlowError::Eos);
                    }
                    Some(end) => trim_audio(buffer, end - pts_ns)?,
                    None => (buffer, false),
                };
                let buffer = buffer
                    .into_mapped_buffer_readable()
                    .map_err(|_| gst::FlowError::Error)?;
                let chunk = AudioChunk {
                    pts_ns,
                    arrival: Instant::now(),
                    discont,
                    session_start,
                    buffer,
                };
                let n = chunk.len() as u64;
                counters.audio_buffers.fetch_add(1, Ordering::Relaxed);
                counters.audio_samples.fetch_add(n, Ordering::Relaxed);
                let flow = forward(&slot, chunk, policy, drops, &stopping);
                if last {
                    take(&slot);
                    return flow.and(Err(gst::FlowError::Eos));
                }
                flow
            })
            .eos(move |_| take(&eos_slot))
            .build(),
    );
    link_branch(pipeline, pad, &bin)
}

fn link_video(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    opts: &IngestOptions,
    slot: SenderSlot<VideoFrame>,
    counters: Arc<IngestCounters>,
    stopping: Arc<AtomicBool>,
    cut: Cut,
) -> Result<()> {
    let (bin, sink) = branch(
        templates::INGEST_VIDEO,
        "ingest-video",
        &crate::media::egress::video_caps(opts.width, opts.height),
        opts.pace_to_clock,
    )?;
    let (width, height) = (opts.width, opts.height);
    let policy = opts.backpressure;
    let offset = opts.pts_offset_ns;
    let eos_slot = slot.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let drops = Drops {
                    count: &counters.video_dropped_frames,
                    gap: None,
                    first_seen: None,
                };
                let Some((buffer, pts_ns)) = pull_timed(sink, offset)? else {
                    drops.record();
                    return Ok(gst::FlowSuccess::Ok);
                };
                if cut.end_ns(pts_ns).is_some_and(|end| pts_ns >= end) {
                    take(&slot);
                    return Err(gst::FlowError::Eos);
                }
                counters.video_frames.fetch_add(1, Ordering::Relaxed);
                let frame = VideoFrame {
                    pts_ns,
                    arrival: Instant::now(),
                    width,
                    height,
                    buffer,
                };
                forward(&slot, frame, policy, drops, &stopping)
            })
            .eos(move |_| take(&eos_slot))
            .build(),
    );
    link_branch(pipeline, pad, &bin)
}

/// Where a branch records a buffer it drops: counted, and for audio flagged so that the next
/// buffer through is taken as a discontinuity.
#[derive(Clone, Copy)]
struct Drops<'a> {
    count: &'a AtomicU64,
    gap: Option<&'a AtomicBool>,
    /// The session's "first buffer seen" flag, when the dropped buffer was that first one: set
    /// back, so that the next buffer starts the session instead.
    first_seen: Option<&'a AtomicBool>,
}

impl Drops<'_> {
    fn record(self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(gap) = self.gap {
            gap.store(true, Ordering::Relaxed);
        }
        if let Some(first_seen) = self.first_seen {
            first_seen.store(false, Ordering::Relaxed);
        }
    }
}

/// Hand a buffer to the compute side without ever blocking a live streaming thread; one that
/// finds the channel full is dropped and recorded in `drops`.
fn forward<T>(
    slot: &SenderSlot<T>,
    item: T,
    policy: Backpressure,
    drops: Drops<'_>,
    stopping: &AtomicBool,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    // Clone the sender out of the lock so a waiting send never holds it (EOS and stop take it).
    let sender = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(sender) = sender else {
        return Err(gst::FlowError::Eos);
    };
    match policy {
        Backpressure::DropAndCount => match sender.try_send(item) {
            Ok(()) => Ok(gst::FlowSuccess::Ok),
            Err(TrySendError::Full(_)) => {
                drops.record();
                Ok(gst::FlowSuccess::Ok)
            }
            Err(TrySendError::Disconnected(_)) => Err(gst::FlowError::Eos),
        },
        Backpressure::Wait => {
            // Wait in short slices so a stop request is never stuck behind a full channel.
            let mut item = item;
            loop {
                match sender.send_timeout(item, std::time::Duration::from_millis(100)) {
                    Ok(()) => return Ok(gst::FlowSuccess::Ok),
                    Err(SendTimeoutError::Disconnected(_)) => return Err(gst::FlowError::Eos),
                    Err(SendTimeoutError::Timeout(back)) => {
                        if stopping.load(Ordering::SeqCst) {
                            return Err(gst::FlowError::Flushing);
                        }
                        item = back;
                    }
                }
            }
        }
    }
}

fn watch_bus(
    bus: gst::Bus,
    events: Sender<IngestEvent>,
    stopping: Arc<AtomicBool>,
    (label, uri): (String, String),
    slots: (SenderSlot<AudioChunk>, SenderSlot<VideoFrame>),
) {
    use gst::MessageView;
    while !stopping.load(Ordering::SeqCst) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            // try_send: once the session is over nobody drains this channel, and `stop` joins
            // this thread; a full channel already holds an end for the supervisor.
            MessageView::Eos(_) => {
                let _ = events.try_send(IngestEvent::Eos);
            }
            MessageView::Error(err) => {
                let from = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
                let text = format!(
                    "source `{label}`: {} (element {from}{})",
                    err.error(),
                    err.debug()
                        .map(|d| format!("; {}", first_line(&d)))
                        .unwrap_or_default()
                );
                let text = crate::media::uri::scrub(&text, &uri);
                // An error ends the stream: disconnect the channels so consumers finish.
                take(&slots.0);
                take(&slots.1);
                let _ = events.try_send(IngestEvent::Error(text));
            }
            MessageView::Warning(w) => {
                let text = crate::media::uri::scrub(&w.error().to_string(), &uri);
                tracing::warn!(source = %label, "{text}");
            }
            _ => {}
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

//! One stream's threads and channels.
//!
//! ```text
//! Ingest ──audio chan──► audio thread: align by pts ─► STFT ─► separator ─► iSTFT per slot ─► RTP / WAV
//!        ──video chan──► video thread: overlay ─► RTP / MP4, timeline
//! supervisor (caller's thread): ingest events, stall detection, stop requests
//! ```
//!
//! The audio thread works one 40 ms chunk (4 hops, one video frame) at a time, as the model
//! contract does. Output sample n is input sample n: the STFT/iSTFT delay is compensated by stamping
//! output with the pts of the input samples it was made from.

pub mod align;

use crate::dsp::{HOP, N_BINS, STFT_ISTFT_DELAY, StreamingIstft, StreamingStft};

use crate::media::egress::{
    AudioRtpOutput, OverlayMp4Recorder, OverlayRtpOutput, RtpAudioCodec, RtpTarget,
};
use crate::media::ingest::{
    AUDIO_RATE, AudioChunk, Ingest, IngestEvent, IngestOptions, VideoFrame,
};
use crate::media::latency::{LatencyStats, LatencyTracker};
use crate::media::record::{Timeline, TimelineFrame, WavRecorder};
use crate::media::sdp::{self, SdpPayload};
use crate::model::{CHUNK_FRAMES, Separator};
use align::{NS_PER_SAMPLE, Placement, PtsAligner};
use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use rustfft::num_complex::Complex32;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Samples per model chunk (40 ms).
const CHUNK_SAMPLES: usize = CHUNK_FRAMES * HOP;

/// Live RTP outputs of a stream.
#[derive(Debug, Clone)]
pub struct RtpOutputs {
    pub host: String,
    pub base_port: u16,
    pub overlay_port: u16,
    pub codec: RtpAudioCodec,
    pub opus_bitrate: u32,
    pub mtu: u32,
    pub overlay: bool,
    pub overlay_bitrate_kbps: u32,
    pub sdp_dir: PathBuf,
}

/// Everything one stream needs.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    pub ingest: IngestOptions,
    pub rtp: Option<RtpOutputs>,
    /// Directory for `speaker-<k>.wav`, `overlay.mp4`, `timeline.json`.
    pub record_dir: Option<PathBuf>,
    /// End the stream when no audio or video arrives for this long.
    pub stall_timeout: Duration,
    /// Stop after this much input (`--duration`).
    pub max_duration: Option<Duration>,
}

/// Live counters of a stream, readable while it runs.
#[derive(Debug, Default)]
pub struct StreamCounters {
    pub audio_in_samples: AtomicU64,
    pub audio_out_samples: AtomicU64,
    pub audio_gap_samples: AtomicU64,
    pub audio_overlap_samples: AtomicU64,
    pub discontinuities: AtomicU64,
    pub video_out_frames: AtomicU64,
    pub dsp_busy_ns: AtomicU64,
    /// Input time processed so far (ns from the first sample), for progress.
    pub position_ns: AtomicU64,
    /// The source's duration when it has one (files), else 0.
    pub duration_ns: AtomicU64,
    /// Mirrored from the ingest by the supervisor (about every 100 ms).
    pub audio_dropped_buffers: AtomicU64,
    pub video_in_frames: AtomicU64,
    pub video_dropped_frames: AtomicU64,
    /// True while data arrives (within the stall timeout).
    pub up: AtomicBool,
}

/// What a finished stream reports.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    pub name: String,
    pub audio_in_samples: u64,
    pub audio_out_samples: u64,
    pub audio_dropped_buffers: u64,
    pub audio_gap_samples: u64,
    pub video_in_frames: u64,
    pub video_out_frames: u64,
    pub video_dropped_frames: u64,
    pub latency: LatencyStats,
    pub dsp_busy_s: f64,
    pub wall_s: f64,
    pub sdp_files: Vec<PathBuf>,
    pub error: Option<String>,
}

impl StreamReport {
    /// Audio seconds processed per second of DSP thread time, inverted (lower is better).
    pub fn real_time_factor(&self) -> f64 {
        let audio_s = self.audio_in_samples as f64 / AUDIO_RATE as f64;
        if audio_s > 0.0 {
            self.dsp_busy_s / audio_s
        } else {
            0.0
        }
    }
}

/// A stream being run; `run` blocks until the source ends, fails, stalls or `stop` is set.
pub struct Stream {
    pub spec: StreamSpec,
    pub counters: Arc<StreamCounters>,
    pub latency: Arc<LatencyTracker>,
}

impl Stream {
    pub fn new(spec: StreamSpec) -> Self {
        Stream {
            spec,
            counters: Arc::new(StreamCounters::default()),
            latency: Arc::new(LatencyTracker::new()),
        }
    }

    pub fn run(&self, stop: &AtomicBool) -> Result<StreamReport> {
        let started = Instant::now();
        let spec = &self.spec;
        let mut report = StreamReport {
            name: spec.name.clone(),
            ..Default::default()
        };
        if let Some(dir) = &spec.record_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating output directory `{}`", dir.display()))?;
        }
        let separator = Separator::Bypass;
        let slots = separator.active_slots();
        report.sdp_files = write_sdp_files(spec, slots)?;

        let mut ingest = Ingest::start(&spec.ingest)?;
        let quit = Arc::new(AtomicBool::new(false));
        let audio = {
            let ctx = AudioThread::new(spec, separator, &self.counters, &self.latency, &quit)?;
            let rx = ingest.audio.clone();
            std::thread::Builder::new()
                .name(format!("{}-audio", spec.name))
                .spawn(move || ctx.run(rx))?
        };
        let video = {
            let ctx = VideoThread::new(spec, &self.counters, &quit)?;
            let rx = ingest.video.clone();
            std::thread::Builder::new()
                .name(format!("{}-video", spec.name))
                .spawn(move || ctx.run(rx))?
        };

        // Supervise: the source's events, stalls, the duration limit and stop requests.
        let mut last_progress = (0u64, Instant::now());
        loop {
            if audio.is_finished() && video.is_finished() {
                break;
            }
            match ingest.events.recv_timeout(Duration::from_millis(100)) {
                Ok(IngestEvent::Error(e)) => {
                    tracing::error!(stream = %spec.name, "{e}");
                    report.error.get_or_insert(e);
                }
                Ok(IngestEvent::Eos) => tracing::info!(stream = %spec.name, "source ended"),
                Ok(IngestEvent::Degraded(_)) | Err(_) => {}
            }
            if self.counters.duration_ns.load(Ordering::Relaxed) == 0
                && let Some(d) = ingest.duration_ns()
            {
                self.counters.duration_ns.store(d, Ordering::Relaxed);
            }
            let c = &ingest.counters;
            self.mirror_ingest(c);
            let progress =
                c.audio_buffers.load(Ordering::Relaxed) + c.video_frames.load(Ordering::Relaxed);
            if progress != last_progress.0 {
                last_progress = (progress, Instant::now());
                self.counters.up.store(true, Ordering::Relaxed);
            } else if last_progress.1.elapsed() > spec.stall_timeout {
                let e = format!(
                    "source `{}`: no data for {:.1} s",
                    crate::media::uri::redact(&spec.ingest.uri),
                    spec.stall_timeout.as_secs_f64()
                );
                tracing::warn!(stream = %spec.name, "{e}");
                report.error.get_or_insert(e);
                break;
            }
            let done = spec.max_duration.is_some_and(|d| {
                self.counters.position_ns.load(Ordering::Relaxed) >= d.as_nanos() as u64
            });
            if done || stop.load(Ordering::SeqCst) {
                break;
            }
        }
        // Stop the source; the threads drain what is queued, flush and finish their outputs.
        self.counters.up.store(false, Ordering::Relaxed);
        ingest.stop();
        quit.store(true, Ordering::SeqCst);
        let audio_result = audio
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("audio thread panicked")));
        let video_result = video
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("video thread panicked")));
        while let Ok(ev) = ingest.events.try_recv() {
            if let IngestEvent::Error(e) = ev {
                report.error.get_or_insert(e);
            }
        }
        let c = &ingest.counters;
        report.audio_in_samples = self.counters.audio_in_samples.load(Ordering::Relaxed);
        report.audio_out_samples = self.counters.audio_out_samples.load(Ordering::Relaxed);
        report.audio_gap_samples = self.counters.audio_gap_samples.load(Ordering::Relaxed);
        report.audio_dropped_buffers = c.audio_dropped_buffers.load(Ordering::Relaxed);
        report.video_in_frames = c.video_frames.load(Ordering::Relaxed);
        report.video_out_frames = self.counters.video_out_frames.load(Ordering::Relaxed);
        report.video_dropped_frames = c.video_dropped_frames.load(Ordering::Relaxed);
        report.latency = self.latency.stats();
        report.dsp_busy_s = self.counters.dsp_busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
        report.wall_s = started.elapsed().as_secs_f64();
        audio_result.context("audio stage")?;
        video_result.context("video stage")?;
        Ok(report)
    }
}

impl Stream {
    /// Copy the ingest's counters into the stream's, where the control API reads them.
    fn mirror_ingest(&self, c: &crate::media::ingest::IngestCounters) {
        let m = &self.counters;
        let copy = |to: &AtomicU64, from: &AtomicU64| {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed)
        };
        copy(&m.audio_dropped_buffers, &c.audio_dropped_buffers);
        copy(&m.video_in_frames, &c.video_frames);
        copy(&m.video_dropped_frames, &c.video_dropped_frames);
    }
}

fn write_sdp_files(spec: &StreamSpec, slots: usize) -> Result<Vec<PathBuf>> {
    let Some(rtp) = &spec.rtp else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    let payload = match rtp.codec {
        RtpAudioCodec::Opus => SdpPayload::Opus,
        RtpAudioCodec::L16 => SdpPayload::L16,
    };
    for k in 0..slots {
        let path = rtp.sdp_dir.join(format!("{}-speaker-{k}.sdp", spec.name));
        let port = rtp.base_port + 2 * k as u16;
        let text = sdp::describe(
            &format!("avsepd {} speaker {k}", spec.name),
            &rtp.host,
            port,
            payload,
        );
        sdp::write_atomically(&path, &text)?;
        files.push(path);
    }
    if rtp.overlay {
        let path = rtp.sdp_dir.join(format!("{}-overlay.sdp", spec.name));
        let text = sdp::describe(
            &format!("avsepd {} overlay", spec.name),
            &rtp.host,
            rtp.overlay_port,
            SdpPayload::H264,
        );
        sdp::write_atomically(&path, &text)?;
        files.push(path);
    }
    Ok(files)
}

/// Where one slot's separated audio goes.
struct SlotSinks {
    rtp: Option<AudioRtpOutput>,
    wav: Option<WavRecorder>,
}

/// The audio thread's state: every buffer is allocated here, once.
struct AudioThread {
    separator: Separator,
    stft: StreamingStft,
    istft: Vec<StreamingIstft>,
    sinks: Vec<SlotSinks>,
    hop: [f32; HOP],
    hop_fill: usize,
    mixture: Vec<Complex32>,
    masks: Vec<Complex32>,
    masked: Vec<Complex32>,
    out: Vec<Vec<f32>>,
    chunk_frames: usize,
    /// Input sample index <-> pts.
    aligner: PtsAligner,
    samples_in: u64,
    /// Output samples produced so far, including the STFT/iSTFT delay at the start.
    produced: u64,
    /// Set at the end of the source: input samples before the flush padding.
    real_in: Option<u64>,
    counters: Arc<StreamCounters>,
    latency: Arc<LatencyTracker>,
    quit: Arc<AtomicBool>,
    name: String,
}

impl AudioThread {
    fn new(
        spec: &StreamSpec,
        separator: Separator,
        counters: &Arc<StreamCounters>,
        latency: &Arc<LatencyTracker>,
        quit: &Arc<AtomicBool>,
    ) -> Result<Self> {
        let slots = separator.active_slots();
        let mut sinks = Vec::with_capacity(slots);
        for k in 0..slots {
            let rtp = match &spec.rtp {
                Some(r) => Some(AudioRtpOutput::start(
                    &format!("{}-speaker-{k}", spec.name),
                    &RtpTarget {
                        host: r.host.clone(),
                        port: r.base_port + 2 * k as u16,
                        mtu: r.mtu,
                    },
                    r.codec,
                    r.opus_bitrate,
                    (k == 0).then(|| latency.clone()),
                )?),
                None => None,
            };
            let wav = match &spec.record_dir {
                Some(dir) => Some(WavRecorder::create(&dir.join(format!("speaker-{k}.wav")))?),
                None => None,
            };
            sinks.push(SlotSinks { rtp, wav });
        }
        Ok(AudioThread {
            separator,
            stft: StreamingStft::new(),
            istft: (0..slots).map(|_| StreamingIstft::new()).collect(),
            sinks,
            hop: [0.0; HOP],
            hop_fill: 0,
            mixture: vec![Complex32::default(); CHUNK_FRAMES * N_BINS],
            masks: vec![Complex32::default(); slots * CHUNK_FRAMES * N_BINS],
            masked: vec![Complex32::default(); N_BINS],
            out: vec![vec![0.0; CHUNK_SAMPLES]; slots],
            chunk_frames: 0,
            aligner: PtsAligner::new(),
            samples_in: 0,
            produced: 0,
            real_in: None,
            counters: counters.clone(),
            latency: latency.clone(),
            quit: quit.clone(),
            name: spec.name.clone(),
        })
    }

    fn run(mut self, rx: Receiver<AudioChunk>) -> Result<()> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(chunk) => self.on_chunk(&chunk)?,
                Err(RecvTimeoutError::Timeout) if !self.quit.load(Ordering::Relaxed) => {}
                Err(_) => break,
            }
        }
        self.flush()?;
        for s in &mut self.sinks {
            if let Some(r) = &s.rtp {
                r.finish()?;
            }
            if let Some(w) = &mut s.wav {
                w.finish()?;
            }
        }
        Ok(())
    }

    /// Place a buffer on the sample timeline by its pts, then feed it hop by hop.
    fn on_chunk(&mut self, chunk: &AudioChunk) -> Result<()> {
        self.latency.mark_input(chunk.pts_ns, chunk.arrival);
        let samples = chunk.samples();
        let mut skip = 0usize;
        match self
            .aligner
            .place(chunk.pts_ns, samples.len(), chunk.discont)
        {
            Placement::FillThenAccept(fill) => {
                self.counters
                    .audio_gap_samples
                    .fetch_add(fill, Ordering::Relaxed);
                for _ in 0..fill {
                    self.push_sample(0.0)?;
                }
                self.aligner.advance(fill);
            }
            Placement::Skip(n) => {
                skip = n;
                self.counters
                    .audio_overlap_samples
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            Placement::Resync => {
                tracing::warn!(stream = %self.name, "audio discontinuity: timeline re-anchored");
                self.counters
                    .discontinuities
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        for &s in &samples[skip..] {
            self.push_sample(s)?;
        }
        let accepted = (samples.len() - skip) as u64;
        self.aligner.advance(accepted);
        self.counters
            .audio_in_samples
            .fetch_add(accepted, Ordering::Relaxed);
        self.counters
            .position_ns
            .store(self.samples_in * NS_PER_SAMPLE, Ordering::Relaxed);
        Ok(())
    }

    fn push_sample(&mut self, s: f32) -> Result<()> {
        self.hop[self.hop_fill] = s;
        self.hop_fill += 1;
        self.samples_in += 1;
        if self.hop_fill == HOP {
            self.hop_fill = 0;
            let busy = Instant::now();
            let start = self.chunk_frames * N_BINS;
            let hop = self.hop;
            self.stft
                .push_hop(&hop, &mut self.mixture[start..start + N_BINS]);
            self.chunk_frames += 1;
            let full = self.chunk_frames == CHUNK_FRAMES;
            if full {
                self.chunk_frames = 0;
                self.separate_chunk();
            }
            self.counters
                .dsp_busy_ns
                .fetch_add(busy.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if full {
                self.emit_chunk(CHUNK_SAMPLES)?;
            }
        }
        Ok(())
    }

    /// Masks for the chunk, then the iSTFT of each slot's masked mixture.
    fn separate_chunk(&mut self) {
        self.separator.masks(&self.mixture, &mut self.masks);
        let per_slot = CHUNK_FRAMES * N_BINS;
        for (k, istft) in self.istft.iter_mut().enumerate() {
            for f in 0..CHUNK_FRAMES {
                let x = &self.mixture[f * N_BINS..(f + 1) * N_BINS];
                let m = &self.masks[k * per_slot + f * N_BINS..k * per_slot + (f + 1) * N_BINS];
                for ((y, x), m) in self.masked.iter_mut().zip(x).zip(m) {
                    *y = x * m;
                }
                istft.push_frame(&self.masked, &mut self.out[k][f * HOP..(f + 1) * HOP]);
            }
        }
    }

    /// Send the newest `n` output samples of every slot, dropping the start-up delay and stamping
    /// them with the pts of the input samples they came from.
    fn emit_chunk(&mut self, n: usize) -> Result<()> {
        let first = self.produced;
        self.produced += n as u64;
        let delay = STFT_ISTFT_DELAY as u64;
        // Output index i is input index i - delay; drop what precedes input sample 0 and what
        // follows the last real input sample (flush padding).
        let start = delay.saturating_sub(first).min(n as u64) as usize;
        let end_index = self.samples_in_real() + delay;
        let end = (end_index.saturating_sub(first)).min(n as u64) as usize;
        if end <= start {
            return Ok(());
        }
        let pts = self.aligner.pts_of(first + start as u64 - delay);
        for (k, sinks) in self.sinks.iter_mut().enumerate() {
            let samples = &self.out[k][start..end];
            if let Some(rtp) = &mut sinks.rtp {
                rtp.push(pts, samples)?;
            }
            if let Some(wav) = &mut sinks.wav {
                wav.write(samples)?;
            }
        }
        self.counters
            .audio_out_samples
            .fetch_add((end - start) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Push silence until every real input sample has come out of the iSTFT.
    fn flush(&mut self) -> Result<()> {
        if self.aligner.t0().is_none() {
            return Ok(());
        }
        let real = self.samples_in;
        self.real_in = Some(real);
        while self.produced < real + STFT_ISTFT_DELAY as u64 {
            self.push_sample(0.0)?;
        }
        Ok(())
    }

    /// Input samples that came from the source (not flush padding).
    fn samples_in_real(&self) -> u64 {
        self.real_in.unwrap_or(self.samples_in)
    }
}

/// The video thread: overlay outputs and the timeline.
struct VideoThread {
    rtp: Option<OverlayRtpOutput>,
    mp4: Option<OverlayMp4Recorder>,
    timeline: Option<(Timeline, PathBuf)>,
    t0: Option<u64>,
    counters: Arc<StreamCounters>,
    quit: Arc<AtomicBool>,
}

impl VideoThread {
    fn new(
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

    fn run(mut self, rx: Receiver<VideoFrame>) -> Result<()> {
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

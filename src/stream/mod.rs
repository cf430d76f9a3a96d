//! One stream's threads and channels.
//!
//! ```text
//! Ingest ──audio chan──► audio thread: align by pts ─► STFT ─► separator ─► iSTFT per slot ─► RTP / WAV
//!                                                                 ▲ the chunk's faces, by pts (faces.rs)
//!        ──video chan──► video thread: faces, overlay ─► RTP / MP4, timeline
//!                                      └──face chan───────────────┘
//! supervisor (caller's thread): ingest events, stall detection, stop requests
//! ```
//!
//! The audio thread works one 40 ms chunk (4 hops, one video frame) at a time, as the model
//! contract does. Output sample n is input sample n: the STFT/iSTFT delay is compensated by stamping
//! output with the pts of the input samples it was made from.

pub mod align;
mod audio;
pub mod draw;
pub mod faces;
pub mod liveness;
pub mod outputs;
mod shutdown;
pub mod slots;
pub mod speech;
pub mod status;
mod video;

use crate::media::egress::RtpAudioCodec;
use crate::media::ingest::{AUDIO_RATE, Ingest, IngestCounters, IngestEvent, IngestOptions};
use crate::media::latency::{LatencyStats, LatencyTracker};
use crate::media::sdp;
use anyhow::{Context, Result};
use audio::AudioThread;
use liveness::{TrackWatch, reached_end, stalled};
use shutdown::Shutdown;
pub use status::{ReconnectPolicy, StreamEvent, StreamState, StreamStatus};
use status::{jitter_unit, unix_ms};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use video::VideoThread;

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
    /// End the session when no data arrives for this long (before its first data: at least
    /// `liveness::FIRST_DATA_TIMEOUT`), or, for live sources, when one track stays quiet this
    /// long while the other flows (`liveness::TrackWatch`).
    pub stall_timeout: Duration,
    /// Stop after this much input (`--duration`).
    pub max_duration: Option<Duration>,
    /// Face detection and tracking; `None` disables it.
    pub vision: Option<crate::vision::VisionConfig>,
    /// Reconnect a source that ends, fails or stalls; `None`: the stream ends with its source.
    pub reconnect: Option<ReconnectPolicy>,
    /// What the speaker outputs carry.
    pub separation: SeparationSpec,
}

/// What a stream separates with.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SeparationSpec {
    /// No model: speaker slot 0 carries the mixture.
    #[default]
    Bypass,
    /// The face-conditioned model at `path`: slot k carries the voice of the face holding it.
    Model { path: PathBuf, slots: usize },
}

/// The faces of one video frame, as the separation stage receives them.
#[derive(Debug, Clone)]
pub struct FaceFrame {
    pub pts_ns: u64,
    /// The faces offered to separation.
    pub faces: Vec<crate::vision::FaceObs>,
    /// The track each speaker slot carries (`slots::SlotTable`), indexed by slot.
    pub slot_tracks: Vec<Option<u64>>,
}

/// Live counters of a stream, readable while it runs.
#[derive(Debug, Default)]
pub struct StreamCounters {
    pub audio_in_samples: AtomicU64,
    pub audio_out_samples: AtomicU64,
    /// Output buffers the live RTP outputs dropped because their encoder was more than a second
    /// behind (oldest first), counted at the push that made appsrc drop one.
    pub audio_out_dropped_buffers: AtomicU64,
    pub video_out_dropped_frames: AtomicU64,
    pub audio_gap_samples: AtomicU64,
    pub audio_overlap_samples: AtomicU64,
    pub discontinuities: AtomicU64,
    pub video_out_frames: AtomicU64,
    pub dsp_busy_ns: AtomicU64,
    /// Input time processed so far (ns from the first sample), for progress.
    pub position_ns: AtomicU64,
    /// The source's duration when it has one (files), else 0.
    pub duration_ns: AtomicU64,
    /// Queued input dropped when a stop request's drain budget ran out (shutdown.rs); the
    /// dropped totals below include them.
    pub audio_stop_dropped_buffers: AtomicU64,
    pub video_stop_dropped_frames: AtomicU64,
    /// Mirrored from the ingest by the supervisor (about every 100 ms), plus the above.
    pub audio_dropped_buffers: AtomicU64,
    pub video_in_frames: AtomicU64,
    pub video_dropped_frames: AtomicU64,
    /// True while data arrives (within the stall timeout).
    pub up: AtomicBool,
    /// Set by the supervisor when a session has ended and a reconnect waits: the audio stage
    /// then sends out the samples it still holds instead of keeping them until the next input.
    pub source_away: AtomicBool,
    /// Face observations made (one per visible track per frame).
    pub faces_observed: AtomicU64,
    /// Tracks started so far (the highest track id).
    pub tracks_started: AtomicU64,
    /// Frames of faces the separation stage could not take in time (channel full, or more than
    /// `faces::WINDOW` frames ahead of the audio).
    pub face_frames_dropped: AtomicU64,
    /// Audio chunks separated with the frame of faces on screen during them.
    pub face_chunks_on_time: AtomicU64,
    /// Audio chunks separated with a frame of faces older than `faces::STALE_NS`: the vision
    /// stage was behind the audio.
    pub face_chunks_stale: AtomicU64,
    /// Time the vision stage spent detecting, tracking and cropping.
    pub vision_busy_ns: AtomicU64,
    /// Frames the vision stage skipped while a stop drained the queue.
    pub vision_skipped_frames: AtomicU64,
    /// Frames the vision stage tracked without the detector to keep the overlay at camera rate
    /// (the thread was behind); their mouth crops are fresh, a due detection waits a frame.
    pub vision_track_only_frames: AtomicU64,
    /// Bit k set: speaker slot k is speaking now (speech.rs).
    pub speaking_slots: AtomicU64,
    /// Speech segments started, all slots together.
    pub speech_segments: AtomicU64,
    /// 1 + the slot whose voice is the loudest speaking one now; 0: nobody speaks.
    pub source_slot: AtomicU64,
    /// Reconnect attempts.
    pub reconnects: AtomicU64,
    /// Times the source came back (reached Running again after a reconnect).
    pub recoveries: AtomicU64,
    /// Highest pts seen from the source (audio or video), ns.
    pub last_pts_ns: AtomicU64,
    /// When data last arrived ([`monotonic_ns`]).
    pub last_data_at_ns: AtomicU64,
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
    /// Dropped by the live RTP outputs (their encoder more than 1 s behind).
    pub audio_out_dropped_buffers: u64,
    pub video_out_dropped_frames: u64,
    /// Audio chunks separated with the frame of faces on screen during them, and with one older
    /// than `faces::STALE_NS` (the rest had no frame yet: the start, or no video).
    pub face_chunks_on_time: u64,
    pub face_chunks_stale: u64,
    pub face_frames_dropped: u64,
    pub vision_skipped_frames: u64,
    pub vision_track_only_frames: u64,
    /// Speech segments started, all slots together (speech.rs).
    pub speech_segments: u64,
    pub latency: LatencyStats,
    pub dsp_busy_s: f64,
    pub wall_s: f64,
    pub sdp_files: Vec<PathBuf>,
    pub reconnects: u64,
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
    /// Kept across source sessions (reconnects), so counts never go backwards.
    pub ingest_counters: Arc<IngestCounters>,
    status: Mutex<StreamStatus>,
    /// Whether the source has audio, video: once a session delivered or listed it (see
    /// `expected_tracks`).
    has_track: [AtomicBool; 2],
    /// State changes, for the control API's server-sent events.
    pub events: tokio::sync::broadcast::Sender<StreamEvent>,
}

impl Stream {
    pub fn new(spec: StreamSpec) -> Self {
        let (events, _) = tokio::sync::broadcast::channel(64);
        Stream {
            spec,
            counters: Arc::new(StreamCounters::default()),
            latency: Arc::new(LatencyTracker::new()),
            ingest_counters: Arc::new(IngestCounters::default()),
            status: Mutex::new(StreamStatus::default()),
            has_track: Default::default(),
            events,
        }
    }

    /// The current state, without copying the status's strings (the supervisor asks every 100 ms).
    pub fn state(&self) -> StreamState {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).state
    }

    /// A copy of the current status.
    pub fn status(&self) -> StreamStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Change state and publish the events an operator cares about: `down` when a running
    /// stream stops delivering (with the reason), `retrying` for each reconnect wait, `up` when
    /// data flows again, `stopped` at the end. Connection attempts themselves are not events.
    fn set_state(&self, state: StreamState, error: Option<String>) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if st.state == state && error.is_none() {
            return;
        }
        let was = st.state;
        st.state = state;
        st.since_unix_ms = unix_ms();
        if error.is_some() {
            st.last_error = error.clone();
        }
        if state == StreamState::Retrying {
            st.reconnects += 1;
        }
        drop(st);
        self.counters
            .up
            .store(state == StreamState::Running, Ordering::Relaxed);
        let publish = |kind: &'static str, detail: Option<String>| {
            let _ = self.events.send(StreamEvent {
                stream: self.spec.name.clone(),
                kind,
                unix_ms: unix_ms(),
                detail,
                speech: None,
            });
        };
        if was == StreamState::Running && state != StreamState::Running {
            publish("down", error.clone());
        }
        match state {
            StreamState::Running => publish("up", None),
            StreamState::Retrying => publish("retrying", error),
            StreamState::Stopped => publish("stopped", None),
            StreamState::Buffering => {}
        }
    }

    /// Run until the source ends (without a reconnect policy), `stop` is set, or the duration
    /// limit is reached. With a reconnect policy, a source that ends, fails or stalls is started
    /// again with exponential backoff while the outputs stay up.
    pub fn run(&self, stop: &AtomicBool) -> Result<StreamReport> {
        crate::media::init()?;
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
        let separator = spec.separator()?;
        report.sdp_files = write_sdp_files(spec)?;

        // Outputs and models first: a bad model or an unusable port fails before the camera is
        // contacted.
        let shutdown = Arc::new(Shutdown::default());
        // Faces go from the video thread to the separation stage; a frame of faces that cannot be
        // taken in time is dropped and counted (the separator keeps the last crop of a track).
        // A file's video thread may run further ahead of its audio (nothing is dropped to keep up).
        let face_capacity = if spec.source_waits() { 64 } else { 8 };
        let (face_tx, face_rx) = crossbeam_channel::bounded::<FaceFrame>(face_capacity);
        let audio_ctx = AudioThread::new(self, separator, &shutdown, face_rx)?;
        let video_ctx = VideoThread::new(spec, &self.counters, &shutdown, face_tx)?;
        // The channels outlive each source session, so the compute threads and the outputs keep
        // running across reconnects; dropping these senders is what ends them.
        let audio_chan = crossbeam_channel::bounded(spec.ingest.audio_capacity);
        let video_chan = crossbeam_channel::bounded(spec.ingest.video_capacity);
        let audio = {
            let (ctx, rx) = (audio_ctx, audio_chan.1.clone());
            std::thread::Builder::new()
                .name(format!("{}-audio", spec.name))
                .spawn(move || ctx.run(rx))?
        };
        let video = {
            let (ctx, rx) = (video_ctx, video_chan.1.clone());
            std::thread::Builder::new()
                .name(format!("{}-video", spec.name))
                .spawn(move || ctx.run(rx))?
        };

        let mut attempt = 0u32;
        loop {
            let mut opts = spec.ingest.clone();
            opts.pts_offset_ns = self.next_pts_offset();
            self.set_state(StreamState::Buffering, None);
            let end = match Ingest::start_with(
                &opts,
                audio_chan.clone(),
                video_chan.clone(),
                self.ingest_counters.clone(),
            ) {
                Ok(mut ingest) => {
                    let compute_alive = || !audio.is_finished() && !video.is_finished();
                    let end = self.supervise(&ingest, stop, &mut attempt, &compute_alive);
                    let t = Instant::now();
                    ingest.stop();
                    tracing::debug!(stream = %spec.name, ms = t.elapsed().as_millis() as u64, "source stopped");
                    end
                }
                Err(e) => SessionEnd::Failed(format!("{e:#}")),
            };
            let failed = matches!(end, SessionEnd::Failed(_));
            let failure = match end {
                SessionEnd::Stopped => None,
                SessionEnd::ComputeEnded => {
                    tracing::error!(stream = %spec.name, "a processing stage ended while its source ran; the stream ends");
                    report.error = Some("a processing stage ended early".to_string());
                    break;
                }
                SessionEnd::Eos => {
                    tracing::info!(stream = %spec.name, "source ended");
                    Some(format!(
                        "source `{}` ended",
                        crate::media::uri::redact(&spec.ingest.uri)
                    ))
                }
                SessionEnd::Failed(e) => {
                    tracing::warn!(stream = %spec.name, "{e}");
                    Some(e)
                }
            };
            let (Some(why), Some(policy)) = (failure.clone(), &spec.reconnect) else {
                // No reconnect: an end of stream is a normal finish, a failure is the report's.
                if failed {
                    report.error = failure;
                }
                break;
            };
            if stop.load(Ordering::SeqCst) {
                break;
            }
            self.counters.source_away.store(true, Ordering::SeqCst);
            let wait = policy.delay(attempt, jitter_unit());
            attempt += 1;
            tracing::info!(stream = %spec.name, wait_ms = wait.as_millis() as u64, attempt, "reconnecting");
            self.set_state(StreamState::Retrying, Some(why));
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            let until = Instant::now() + wait;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
        // End the compute threads: they drain what is queued, flush and finish their outputs.
        self.set_state(StreamState::Stopped, None);
        drop(audio_chan);
        drop(video_chan);
        // A stop request (signal, reload) gets a bounded drain; the end of a stream drains all.
        shutdown.begin(stop.load(Ordering::SeqCst));
        let t = Instant::now();
        let audio_result = audio
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("audio thread panicked")));
        let audio_ms = t.elapsed().as_millis() as u64;
        let video_result = video
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("video thread panicked")));
        // The timeline is written once both stages are done: the video stage gave the faces of
        // every frame, the audio stage (later, by its look-ahead) who spoke when.
        let speech = audio_result.as_ref().ok().and_then(|log| log.as_ref());
        let video_result = video_result.and_then(|timeline| match timeline {
            Some((mut timeline, path)) => {
                if let Some(log) = speech {
                    timeline.add_speech(log);
                }
                timeline.write(&path)
            }
            None => Ok(()),
        });
        tracing::debug!(stream = %spec.name, audio_ms, video_ms = t.elapsed().as_millis() as u64, "outputs finished");
        self.mirror_ingest(&self.ingest_counters);
        let c = &self.counters;
        report.audio_in_samples = c.audio_in_samples.load(Ordering::Relaxed);
        report.audio_out_samples = c.audio_out_samples.load(Ordering::Relaxed);
        report.audio_gap_samples = c.audio_gap_samples.load(Ordering::Relaxed);
        report.audio_dropped_buffers = c.audio_dropped_buffers.load(Ordering::Relaxed);
        report.video_in_frames = c.video_in_frames.load(Ordering::Relaxed);
        report.video_out_frames = c.video_out_frames.load(Ordering::Relaxed);
        report.video_dropped_frames = c.video_dropped_frames.load(Ordering::Relaxed);
        report.audio_out_dropped_buffers = c.audio_out_dropped_buffers.load(Ordering::Relaxed);
        report.video_out_dropped_frames = c.video_out_dropped_frames.load(Ordering::Relaxed);
        report.face_chunks_on_time = c.face_chunks_on_time.load(Ordering::Relaxed);
        report.face_chunks_stale = c.face_chunks_stale.load(Ordering::Relaxed);
        report.face_frames_dropped = c.face_frames_dropped.load(Ordering::Relaxed);
        report.vision_skipped_frames = c.vision_skipped_frames.load(Ordering::Relaxed);
        report.vision_track_only_frames = c.vision_track_only_frames.load(Ordering::Relaxed);
        report.reconnects = c.reconnects.load(Ordering::Relaxed);
        report.speech_segments = c.speech_segments.load(Ordering::Relaxed);
        report.latency = self.latency.stats();
        report.dsp_busy_s = c.dsp_busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
        report.wall_s = started.elapsed().as_secs_f64();
        let audio_result = audio_result.context("audio stage");
        let video_result = video_result.context("video stage");
        if let Some(e) = audio_result.as_ref().err().or(video_result.as_ref().err()) {
            // The cause where the API and the log show it now, not only in the report that the
            // daemon collects at the next reload or at exit.
            let text = format!("{e:#}");
            tracing::error!(stream = %spec.name, "{text}");
            self.set_state(StreamState::Stopped, Some(text));
        }
        audio_result?;
        video_result?;
        Ok(report)
    }

    /// A live source (a camera: RTSP, UDP, SRT) one of whose tracks went quiet while the other
    /// flows, as a session end. Files are exempt, paced in real time or not: a track may end
    /// early in a file, and its demuxer ends every track only at the end of the file. A track
    /// counts only while its branch is open and the source is known to have it (it has
    /// delivered, or the decoder listed it).
    fn dead_track(
        &self,
        ingest: &Ingest,
        audio: &TrackWatch,
        video: &TrackWatch,
        now: Instant,
    ) -> Option<SessionEnd> {
        if !crate::media::uri::is_live(&self.spec.ingest.uri) {
            return None;
        }
        self.expected_tracks(ingest, audio, video)
            .into_iter()
            .find_map(|(track, expected, what)| {
                let limit = track.dead(expected, now, self.spec.stall_timeout)?;
                Some(self.quiet_source(ingest, Some(what), true, limit))
            })
    }

    /// Remember which tracks the source has: one that this session delivered or its decoder
    /// listed. Sticky across sessions on purpose: rtspsrc adds a pad only when that stream's
    /// first packet arrives, so a session whose audio never comes may never list it.
    fn note_tracks(&self, audio: &TrackWatch, video: &TrackWatch) {
        let c = &self.ingest_counters;
        for (t, listed, has) in [
            (audio, &c.has_audio, &self.has_track[0]),
            (video, &c.has_video, &self.has_track[1]),
        ] {
            if t.flowed() || listed.load(Ordering::Relaxed) {
                has.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Each track with whether it is expected to deliver now: its branch is open (no EOS, not
    /// absent from this session's source) and the stream is known to have it
    /// ([`Self::note_tracks`]).
    fn expected_tracks<'a>(
        &self,
        ingest: &Ingest,
        audio: &'a TrackWatch,
        video: &'a TrackWatch,
    ) -> [(&'a TrackWatch, bool, &'static str); 2] {
        let has = |i: usize| self.has_track[i].load(Ordering::Relaxed);
        [
            (audio, ingest.audio_open() && has(0), "audio"),
            (video, ingest.video_open() && has(1), "video"),
        ]
    }

    /// How a session that went quiet (wholly, or `track` alone) ends: at the known end of a clip
    /// it has ended; otherwise it failed, in words that say what was missing for how long.
    fn quiet_source(
        &self,
        ingest: &Ingest,
        track: Option<&str>,
        flowing: bool,
        waited: Duration,
    ) -> SessionEnd {
        let spec = &self.spec;
        // A clip served over RTSP that went quiet at its known end has ended, even if its EOS
        // was lost (seen on a machine with every core busy): not a failure.
        if reached_end(ingest.position_ns(), ingest.duration_ns()) {
            tracing::debug!(stream = %spec.name, "source went quiet at its end without EOS");
            return SessionEnd::Eos;
        }
        let uri = crate::media::uri::redact(&spec.ingest.uri);
        let secs = waited.as_secs_f64();
        SessionEnd::Failed(match track {
            Some(t) => {
                let other = if t == "audio" { "video" } else { "audio" };
                format!("source `{uri}`: no {t} for {secs:.1} s while its {other} flows")
            }
            None if flowing => format!("source `{uri}`: no data for {secs:.1} s"),
            None => format!("source `{uri}`: no data within {secs:.1} s of starting"),
        })
    }

    /// Watch one source session: its bus events, stalls, the duration limit and stop requests.
    fn supervise(
        &self,
        ingest: &Ingest,
        stop: &AtomicBool,
        attempt: &mut u32,
        compute_alive: &dyn Fn() -> bool,
    ) -> SessionEnd {
        let spec = &self.spec;
        let c = &self.ingest_counters;
        let started = Instant::now();
        let mut audio = TrackWatch::new(c.audio_buffers.load(Ordering::Relaxed), started);
        let mut video = TrackWatch::new(c.video_frames.load(Ordering::Relaxed), started);
        let mut last_progress = started;
        // Until the session's first data, the wait is at least FIRST_DATA_TIMEOUT: connecting,
        // the RTSP handshake and the decoders' preroll take seconds on a loaded machine, and a
        // stall timeout meant for a running source would end a healthy start.
        let mut flowing = false;
        let mut healthy = false;
        loop {
            match ingest.events.recv_timeout(Duration::from_millis(100)) {
                Ok(IngestEvent::Error(e)) => return SessionEnd::Failed(e),
                Ok(IngestEvent::Eos) => return SessionEnd::Eos,
                Ok(IngestEvent::Degraded(_)) | Err(_) => {}
            }
            if !compute_alive() {
                return SessionEnd::ComputeEnded;
            }
            if self.counters.duration_ns.load(Ordering::Relaxed) == 0
                && let Some(d) = ingest.duration_ns()
            {
                self.counters.duration_ns.store(d, Ordering::Relaxed);
            }
            self.mirror_ingest(c);
            let now = Instant::now();
            let moved = audio.observe(c.audio_buffers.load(Ordering::Relaxed), now)
                | video.observe(c.video_frames.load(Ordering::Relaxed), now);
            if moved {
                last_progress = now;
                if !flowing {
                    audio.session_flowing(now);
                    video.session_flowing(now);
                }
                flowing = true;
                if self.state() != StreamState::Running {
                    if self.counters.reconnects.load(Ordering::Relaxed) > 0 {
                        self.counters.recoveries.fetch_add(1, Ordering::Relaxed);
                    }
                    self.set_state(StreamState::Running, None);
                }
            }
            if let Some(waited) = stalled(flowing, now - last_progress, spec.stall_timeout) {
                return self.quiet_source(ingest, None, flowing, waited);
            }
            self.note_tracks(&audio, &video);
            // Every expected track delivered: the next failure starts the backoff afresh. Not
            // before: a camera whose audio stays dead would otherwise be restarted at the
            // shortest backoff for ever.
            if flowing
                && !healthy
                && self
                    .expected_tracks(ingest, &audio, &video)
                    .iter()
                    .all(|(t, expected, _)| t.flowed() || !expected)
            {
                healthy = true;
                *attempt = 0;
            }
            if flowing && let Some(end) = self.dead_track(ingest, &audio, &video, now) {
                return end;
            }
            let done = spec.max_duration.is_some_and(|d| {
                self.counters.position_ns.load(Ordering::Relaxed) >= d.as_nanos() as u64
            });
            if done || stop.load(Ordering::SeqCst) {
                return SessionEnd::Stopped;
            }
        }
    }

    /// Where the next session's pts start: after everything seen so far, plus the time the source
    /// was away, so the outputs' timestamps keep increasing and the gap is real time.
    fn next_pts_offset(&self) -> u64 {
        let last = self.counters.last_pts_ns.load(Ordering::Relaxed);
        if last == 0 {
            return 0;
        }
        let away = self.counters.last_data_at_ns.load(Ordering::Relaxed);
        let away = if away == 0 {
            0
        } else {
            monotonic_ns().saturating_sub(away)
        };
        last + away
    }
}

/// How one source session ended.
enum SessionEnd {
    Stopped,
    Eos,
    Failed(String),
    /// The audio or video thread ended while the source still ran (a model call failed, a
    /// panic): a reconnect cannot revive it, so the stream ends with that thread's error.
    ComputeEnded,
}

/// A process-wide monotonic clock in ns (for measuring how long a source was away).
pub(crate) fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl Stream {
    /// Copy the ingest's counters into the stream's, where the control API reads them.
    fn mirror_ingest(&self, c: &crate::media::ingest::IngestCounters) {
        let m = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        m.audio_dropped_buffers.store(
            load(&c.audio_dropped_buffers) + load(&m.audio_stop_dropped_buffers),
            Ordering::Relaxed,
        );
        m.video_in_frames
            .store(load(&c.video_frames), Ordering::Relaxed);
        m.video_dropped_frames.store(
            load(&c.video_dropped_frames) + load(&m.video_stop_dropped_frames),
            Ordering::Relaxed,
        );
    }
}

/// Write the SDP file of every RTP output (atomically, so a player never reads half of one).
fn write_sdp_files(spec: &StreamSpec) -> Result<Vec<PathBuf>> {
    let Some(rtp) = &spec.rtp else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for output in spec.rtp_outputs() {
        let path = rtp.sdp_dir.join(&output.file);
        sdp::write_atomically(&path, &output.sdp())?;
        files.push(path);
    }
    Ok(files)
}

//! The audio thread: place buffers on the timeline by pts, STFT, separator masks, iSTFT per speaker
//! slot, and the slots' outputs (RTP, WAV). Works one 40 ms chunk (4 hops, one video frame) at a
//! time as the model contract does; every buffer is allocated once, up front.

use super::StreamCounters;
use super::align::{NS_PER_SAMPLE, Placement, PtsAligner};
use super::faces::{FaceMatch, FaceTimeline};
use super::speech::{SpeechChange, SpeechLog, SpeechTracker};
use super::status::{SpeechEventInfo, StreamEvent, unix_ms};
use crate::dsp::{HOP, N_BINS, STFT_ISTFT_DELAY, StreamingIstft, StreamingStft};
use crate::media::egress::{AudioRtpOutput, RtpTarget};
use crate::media::ingest::{AudioChunk, IngestCounters};
use crate::media::latency::LatencyTracker;
use crate::media::record::WavRecorder;
use crate::model::{CHUNK_FRAMES, Separator};
use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use rustfft::num_complex::Complex32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Samples per model chunk (40 ms).
const CHUNK_SAMPLES: usize = CHUNK_FRAMES * HOP;
/// Spectrum values per chunk.
const CHUNK_LEN: usize = CHUNK_FRAMES * N_BINS;
/// How long a file's audio waits for the vision stage to deliver the faces of its chunk. Frames
/// come every 40 ms of vision work; silence this long means the video has no faces to give (no
/// video track, a stalled decoder), and the stream goes on without waiting from then on.
const FACE_WAIT: Duration = Duration::from_secs(2);

/// Where one slot's separated audio goes.
struct SlotSinks {
    rtp: Option<AudioRtpOutput>,
    wav: Option<WavRecorder>,
}

/// The audio thread's state: every buffer is allocated here, once.
pub(super) struct AudioThread {
    separator: Separator,
    stft: StreamingStft,
    istft: Vec<StreamingIstft>,
    sinks: Vec<SlotSinks>,
    hop: [f32; HOP],
    hop_fill: usize,
    /// The last `lookahead + 1` chunks of the mixture spectrum, a ring: the model's masks come
    /// `lookahead` chunks after their chunk went in.
    mixture: Vec<Complex32>,
    /// The ring entry being filled now.
    current: usize,
    lookahead: usize,
    /// Output sample i is input sample i - delay: the STFT/iSTFT delay plus the look-ahead.
    delay: u64,
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
    shutdown: Arc<super::Shutdown>,
    name: String,
    /// Faces from the video thread, waiting by pts for the chunks they were seen with.
    faces: Receiver<super::FaceFrame>,
    face_timeline: FaceTimeline,
    /// A file with vision on: wait for each chunk's faces (a live source takes what has come).
    wait_for_faces: bool,
    /// Who is speaking (speech.rs), from each slot's power and the mixture's per chunk.
    speech: SpeechTracker,
    voice_power: Vec<f32>,
    /// The track each slot carried in the chunk just separated, and when its speech started.
    chunk_tracks: Vec<Option<u64>>,
    speech_tracks: Vec<Option<u64>>,
    /// Segments for the timeline; only kept when the stream records one (it grows with the run).
    speech_log: Option<SpeechLog>,
    /// The control API's server-sent events (`speech_start`, `speech_end`).
    events: tokio::sync::broadcast::Sender<StreamEvent>,
    /// What the source's decoder found (a source without video has no faces to separate by).
    ingest: Arc<IngestCounters>,
    /// The separator needs faces; while the source has none to give, slot 0 carries the mixture.
    needs_faces: bool,
    mixture_fallback: bool,
}

impl AudioThread {
    /// The audio thread of `stream`, separating with `separator`, taking faces from `faces`.
    pub(super) fn new(
        stream: &super::Stream,
        separator: Separator,
        shutdown: &Arc<super::Shutdown>,
        faces: Receiver<super::FaceFrame>,
    ) -> Result<Self> {
        let (spec, counters, latency) = (&stream.spec, &stream.counters, &stream.latency);
        let needs_faces = matches!(separator, Separator::Faces(_));
        let slots = separator.active_slots();
        let lookahead = separator.lookahead_chunks();
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
            mixture: vec![Complex32::default(); (lookahead + 1) * CHUNK_LEN],
            current: 0,
            lookahead,
            delay: (STFT_ISTFT_DELAY + lookahead * CHUNK_SAMPLES) as u64,
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
            shutdown: shutdown.clone(),
            name: spec.name.clone(),
            faces,
            face_timeline: FaceTimeline::new(),
            wait_for_faces: spec.source_waits() && spec.vision.is_some(),
            speech: SpeechTracker::new(slots),
            voice_power: vec![0.0; slots],
            chunk_tracks: vec![None; slots],
            speech_tracks: vec![None; slots],
            speech_log: spec.record_dir.as_ref().map(|_| SpeechLog::default()),
            events: stream.events.clone(),
            ingest: stream.ingest_counters.clone(),
            needs_faces,
            mixture_fallback: false,
        })
    }

    /// Runs until the channel closes; returns who spoke when (for the timeline, when recorded).
    pub(super) fn run(mut self, rx: Receiver<AudioChunk>) -> Result<Option<SpeechLog>> {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(_) if self.shutdown.out_of_time() => {
                    let counter = &self.counters.audio_stop_dropped_buffers;
                    super::shutdown::drop_backlog(rx.len(), counter, "audio buffers");
                    break;
                }
                Ok(chunk) => self.on_chunk(&chunk)?,
                Err(RecvTimeoutError::Timeout) if !self.shutdown.is_set() => {
                    // Nothing queued for 100 ms and the source is gone: send what is held now.
                    if self.counters.source_away.swap(false, Ordering::SeqCst) {
                        self.flush_tail()?;
                    }
                }
                Err(_) => break,
            }
        }
        self.flush()?;
        let end = self.aligner.next_pts();
        self.end_all_speech(end);
        for s in &mut self.sinks {
            if let Some(r) = &s.rtp {
                r.finish()?;
            }
            if let Some(w) = &mut s.wav {
                w.finish()?;
            }
        }
        Ok(self.speech_log.take())
    }

    /// Place a buffer on the sample timeline by its pts, then feed it hop by hop.
    fn on_chunk(&mut self, chunk: &AudioChunk) -> Result<()> {
        tracing::trace!(pts = chunk.pts_ns, at = super::monotonic_ns(), "audio in");
        if chunk.session_start {
            // The new session's input pushes out whatever the last one left. Nobody speaks
            // across an outage: a segment open when the source went away ends where it went.
            self.counters.source_away.store(false, Ordering::SeqCst);
            let end = self.aligner.next_pts();
            self.end_all_speech(end);
        }
        let end = chunk.pts_ns + chunk.len() as u64 * NS_PER_SAMPLE;
        self.counters.last_pts_ns.fetch_max(end, Ordering::Relaxed);
        self.counters
            .last_data_at_ns
            .store(super::monotonic_ns(), Ordering::Relaxed);
        let samples = chunk.samples();
        let mut skip = 0usize;
        let placement = if chunk.session_start {
            self.aligner
                .place_session_start(chunk.pts_ns, samples.len())
        } else {
            self.aligner
                .place(chunk.pts_ns, samples.len(), chunk.discont)
        };
        // Latency marks sit on the timeline the outputs are stamped from (raw pts may run up to
        // 200 ms ahead of it uncorrected), so they rise in step with the packets. Inserted
        // silence is made now: its latency counts from here, not from the arrival of the buffer
        // before the gap (that would report the gap itself as latency).
        if let Placement::FillThenAccept(_) = placement {
            self.latency
                .mark_input(self.aligner.next_pts(), Instant::now());
        }
        match placement {
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
                if chunk.session_start {
                    tracing::debug!(stream = %self.name, "source back: timeline re-anchored past the time it was away");
                } else {
                    tracing::warn!(stream = %self.name, "audio discontinuity: timeline re-anchored");
                }
                self.counters
                    .discontinuities
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency
            .mark_input(self.aligner.next_pts(), chunk.arrival);
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
            let start = self.current * CHUNK_LEN + self.chunk_frames * N_BINS;
            let hop = self.hop;
            self.stft
                .push_hop(&hop, &mut self.mixture[start..start + N_BINS]);
            self.chunk_frames += 1;
            let full = self.chunk_frames == CHUNK_FRAMES;
            let mut waited = Duration::ZERO;
            if full {
                self.chunk_frames = 0;
                waited = self.separate_chunk()?;
            }
            // Time spent waiting for a file's faces is not work.
            let worked = busy.elapsed().saturating_sub(waited);
            self.counters
                .dsp_busy_ns
                .fetch_add(worked.as_nanos() as u64, Ordering::Relaxed);
            if full {
                self.emit_chunk(CHUNK_SAMPLES)?;
            }
        }
        Ok(())
    }

    /// Masks for the chunk `lookahead` chunks ago, then the iSTFT of each slot's masked mixture.
    /// Returns how long the chunk waited for its faces.
    fn separate_chunk(&mut self) -> Result<Duration> {
        // The frame of faces on screen during this chunk, by pts. The chunk is the last
        // CHUNK_SAMPLES input samples.
        let mid = self
            .aligner
            .pts_of(self.samples_in.saturating_sub(CHUNK_SAMPLES as u64 / 2));
        let waited = self.take_faces_up_to(mid);
        let faces = self.face_timeline.at(mid);
        let counter = match faces {
            FaceMatch::OnTime(_) => Some(&self.counters.face_chunks_on_time),
            FaceMatch::Stale(f) => {
                tracing::trace!(stream = %self.name, chunk_pts = mid, frame_pts = f.pts_ns, "stale faces");
                Some(&self.counters.face_chunks_stale)
            }
            FaceMatch::None => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.current * CHUNK_LEN;
        self.separator.masks(
            &self.mixture[now..now + CHUNK_LEN],
            faces.frame(),
            &mut self.masks,
        )?;
        for (k, t) in self.chunk_tracks.iter_mut().enumerate() {
            *t = faces
                .frame()
                .and_then(|f| f.slot_tracks.get(k).copied().flatten());
        }
        self.fall_back_without_video();
        // The masks are for the oldest chunk of the ring, the one the next chunk overwrites.
        let ring = self.lookahead + 1;
        self.current = (self.current + 1) % ring;
        let past = &self.mixture[self.current * CHUNK_LEN..(self.current + 1) * CHUNK_LEN];
        let mixture_power: f32 = past.iter().map(|x| x.norm_sqr()).sum();
        for (k, istft) in self.istft.iter_mut().enumerate() {
            let mut power = 0.0f32;
            for f in 0..CHUNK_FRAMES {
                let x = &past[f * N_BINS..(f + 1) * N_BINS];
                let m = &self.masks[k * CHUNK_LEN + f * N_BINS..k * CHUNK_LEN + (f + 1) * N_BINS];
                for ((y, x), m) in self.masked.iter_mut().zip(x).zip(m) {
                    *y = x * m;
                    power += y.norm_sqr();
                }
                istft.push_frame(&self.masked, &mut self.out[k][f * HOP..(f + 1) * HOP]);
            }
            self.voice_power[k] = self.speech.mean_square(power, CHUNK_FRAMES);
        }
        let mixture = self.speech.mean_square(mixture_power, CHUNK_FRAMES);
        self.track_speech(mixture);
        Ok(waited)
    }

    /// A source without video gives no faces, and a face-conditioned separator no voice: rather
    /// than silence, speaker slot 0 then carries the mixture (as in bypass), with one warning
    /// each time the source turns out to have no video.
    fn fall_back_without_video(&mut self) {
        let absent = self.needs_faces && self.ingest.video_absent.load(Ordering::Relaxed);
        if absent != self.mixture_fallback {
            self.mixture_fallback = absent;
            if absent {
                tracing::warn!(stream = %self.name, "no video, so no faces to separate by: speaker slot 0 carries the mixture");
            }
        }
        if absent {
            self.masks.fill(Complex32::new(0.0, 0.0));
            self.masks[..CHUNK_LEN].fill(Complex32::new(1.0, 0.0));
        }
    }

    /// Update who is speaking with the chunk just separated. Its sound is the input from
    /// `delay` samples before the chunk that the next `emit_chunk` sends, so the changes are
    /// stamped with that input's pts, like the audio they describe.
    fn track_speech(&mut self, mixture: f32) {
        let first = self.samples_in.saturating_sub(CHUNK_SAMPLES as u64);
        let pts = self.aligner.pts_of(first.saturating_sub(self.delay));
        // A slot handed to another face: the old face's speech ends here.
        for k in 0..self.chunk_tracks.len() {
            if self.speech.is_speaking(k) && self.chunk_tracks[k] != self.speech_tracks[k] {
                self.speech.end(k);
                self.speech_changed(SpeechChange::Ended(k), pts);
            }
        }
        tracing::trace!(voices = ?self.voice_power, mixture, pts, "chunk power");
        self.speech.update(&self.voice_power, mixture);
        for i in 0..self.speech.changes().len() {
            let change = self.speech.changes()[i];
            self.speech_changed(change, pts);
        }
        self.counters
            .speaking_slots
            .store(self.speech.mask(), Ordering::Relaxed);
        let source = self.speech.loudest_speaking(&self.voice_power);
        self.set_source(pts, source);
    }

    /// The slot whose face is the sound source from `pts` on (the overlay's marker, the
    /// timeline's `source_peak`).
    fn set_source(&mut self, pts: u64, slot: Option<usize>) {
        let code = slot.map_or(0, |k| k as u64 + 1);
        self.counters.source_slot.store(code, Ordering::Relaxed);
        if let Some(log) = &mut self.speech_log {
            log.source(pts, slot);
        }
    }

    /// Publish one change of a slot's speaking state: the timeline's segments, the control
    /// API's events, the segment counter and the log.
    fn speech_changed(&mut self, change: SpeechChange, pts: u64) {
        let (slot, started) = match change {
            SpeechChange::Started(k) => (k, true),
            SpeechChange::Ended(k) => (k, false),
        };
        if started {
            self.speech_tracks[slot] = self.chunk_tracks[slot];
        }
        let track = self.speech_tracks[slot];
        if let Some(log) = &mut self.speech_log {
            if started {
                log.start(slot, track, pts);
            } else {
                log.end(slot, pts);
            }
        }
        if started {
            self.counters
                .speech_segments
                .fetch_add(1, Ordering::Relaxed);
        }
        let kind = if started {
            "speech_start"
        } else {
            "speech_end"
        };
        let detail = match track {
            Some(t) => format!("slot {slot}, track {t}, pts {pts}"),
            None => format!("slot {slot}, pts {pts}"),
        };
        tracing::debug!(stream = %self.name, slot, track, pts, "{kind}");
        let _ = self.events.send(StreamEvent {
            stream: self.name.clone(),
            kind,
            unix_ms: unix_ms(),
            detail: Some(detail),
            speech: Some(SpeechEventInfo {
                slot,
                track_id: track,
                pts,
            }),
        });
    }

    /// End every slot's speech at `pts` (the source went away, or the stream ends).
    fn end_all_speech(&mut self, pts: u64) {
        for k in 0..self.chunk_tracks.len() {
            if self.speech.end(k) {
                self.speech_changed(SpeechChange::Ended(k), pts);
            }
        }
        self.counters.speaking_slots.store(0, Ordering::Relaxed);
        self.set_source(pts, None);
    }

    /// Move frames of faces from the video thread into the timeline. A live source takes all that
    /// have arrived (the video thread must never wait on us; frames ahead of the audio wait in the
    /// timeline). A file takes frames until the timeline holds the one on screen at `mid_ns`,
    /// waiting for the vision stage up to [`FACE_WAIT`] at a time; later frames stay queued in
    /// the channel, whose sender waits for room (nothing is dropped offline). Returns the time
    /// spent waiting.
    fn take_faces_up_to(&mut self, mid_ns: u64) -> Duration {
        let started = Instant::now();
        if !self.wait_for_faces {
            while let Ok(frame) = self.faces.try_recv() {
                self.keep_faces(frame);
            }
            return started.elapsed();
        }
        while !self.face_timeline.covers(mid_ns) {
            let next = if self.wait_for_faces && !self.shutdown.stop_requested() {
                match self.faces.recv_timeout(FACE_WAIT) {
                    Ok(f) => Some(f),
                    Err(RecvTimeoutError::Timeout) => {
                        tracing::warn!(stream = %self.name, "no frame of faces from the vision stage for {} s (does the source have video?); separating without waiting for faces from now on", FACE_WAIT.as_secs());
                        self.wait_for_faces = false;
                        None
                    }
                    // The video has ended: what is in the timeline is all there will be.
                    Err(RecvTimeoutError::Disconnected) => {
                        self.wait_for_faces = false;
                        None
                    }
                }
            } else {
                self.faces.try_recv().ok()
            };
            let Some(frame) = next else { break };
            self.keep_faces(frame);
        }
        started.elapsed()
    }

    /// A frame of faces into the timeline; one that pushed out an untaken frame is counted.
    fn keep_faces(&mut self, frame: super::FaceFrame) {
        if self.face_timeline.push(frame) {
            self.counters
                .face_frames_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Send the newest `n` output samples of every slot, dropping the start-up delay and stamping
    /// them with the pts of the input samples they came from.
    fn emit_chunk(&mut self, n: usize) -> Result<()> {
        let first = self.produced;
        self.produced += n as u64;
        let delay = self.delay;
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
            if let Some(rtp) = &mut sinks.rtp
                && rtp.push(pts, samples)?
            {
                self.counters
                    .audio_out_dropped_buffers
                    .fetch_add(1, Ordering::Relaxed);
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

    /// The source went away (a reconnect waits): pad with silence until every sample taken so
    /// far has come out of the iSTFT (the unfinished 40 ms chunk, the 22 ms delay and the model's
    /// look-ahead) and out of the outputs' payloaders, so the end of a session goes out now and
    /// not a whole outage late with the next input. The pad is on the timeline (the next session
    /// re-anchors it, `place_session_start`: the outage is longer than the pad, at least the
    /// 100 ms this waits plus the backoff), not counted as a gap.
    fn flush_tail(&mut self) -> Result<()> {
        if self.aligner.t0().is_none() {
            return Ok(());
        }
        // The pad is made up, not input: its packets (some of which the payloaders hold until
        // the next session pushes them out) have no latency to measure.
        self.latency.mark_padding(self.aligner.next_pts());
        // One chunk more than the iSTFT needs: the RTP payloader and the Opus encoder hold a
        // partial packet (up to 600 samples at the default MTU, a 20 ms frame plus look-ahead)
        // until more samples come; 40 ms of silence pushes the real audio out of them.
        let pad = self.pad_until(self.samples_in + self.delay + CHUNK_SAMPLES as u64)?;
        self.aligner.advance(pad);
        Ok(())
    }

    /// Push silence until every real input sample has come out of the iSTFT.
    fn flush(&mut self) -> Result<()> {
        if self.aligner.t0().is_none() {
            return Ok(());
        }
        let real = self.samples_in;
        self.real_in = Some(real);
        self.pad_until(real + self.delay)?;
        Ok(())
    }

    /// Push silence until `produced` output samples have come out; how many were pushed.
    fn pad_until(&mut self, produced: u64) -> Result<u64> {
        let mut pushed = 0;
        while self.produced < produced {
            self.push_sample(0.0)?;
            pushed += 1;
        }
        Ok(pushed)
    }

    /// Input samples that came from the source (not flush padding).
    fn samples_in_real(&self) -> u64 {
        self.real_in.unwrap_or(self.samples_in)
    }
}

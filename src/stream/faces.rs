//! Which frame of faces conditions which audio chunk: matched by pts, never by arrival
//! (DESIGN.md "Time"; docs/SIGNAL.md "Timing": a chunk pairs with the video frame whose 40 ms it
//! covers).
//!
//! The video thread sends one [`FaceFrame`] per video frame, and it runs ahead of or behind the
//! audio thread by decode and detection time. Frames therefore wait here in a short window, and
//! each chunk takes the frame on screen at its middle: the newest frame stamped at or before it.
//! The audio grid is anchored at the first audio pts, the video grid at the first video pts, so
//! the two are offset by up to half a frame; the middle picks the frame nearest the chunk's start.

use super::FaceFrame;
use std::collections::VecDeque;

/// One video frame at the pipeline's 25 fps.
pub const FRAME_NS: u64 = 40_000_000;
/// Frames held for chunks still to come: 640 ms of video at 25 fps, more than the audio thread
/// lags the video thread by in steady state.
pub const WINDOW: usize = 16;
/// A frame taken for a chunk more than this after its pts is stale: the vision stage is behind
/// the audio (five frames; the tracker's boxes barely move in that time, mouths do).
pub const STALE_NS: u64 = 200_000_000;

/// The frame of faces for one chunk.
#[derive(Debug)]
pub enum FaceMatch<'a> {
    /// The frame on screen during the chunk.
    OnTime(&'a FaceFrame),
    /// The newest frame there is, older than [`STALE_NS`]: the vision stage is behind.
    Stale(&'a FaceFrame),
    /// No frame at or before the chunk yet (the start of a stream, or vision disabled).
    None,
}

impl<'a> FaceMatch<'a> {
    pub fn frame(&self) -> Option<&'a FaceFrame> {
        match *self {
            FaceMatch::OnTime(f) | FaceMatch::Stale(f) => Some(f),
            FaceMatch::None => None,
        }
    }
}

/// Frames of faces waiting for their audio chunks, oldest first, pts strictly rising.
pub struct FaceTimeline {
    frames: VecDeque<FaceFrame>,
    /// The last pts a chunk asked for: frames before the one on screen then are no longer needed.
    asked_ns: u64,
}

impl Default for FaceTimeline {
    fn default() -> Self {
        Self::new()
    }
}

impl FaceTimeline {
    pub fn new() -> Self {
        FaceTimeline {
            frames: VecDeque::with_capacity(WINDOW),
            asked_ns: 0,
        }
    }

    /// Take a frame from the video thread. Returns true when an older frame that no chunk had
    /// taken yet was dropped to make room (the audio thread is more than [`WINDOW`] frames behind).
    pub fn push(&mut self, frame: FaceFrame) -> bool {
        if self
            .frames
            .back()
            .is_some_and(|last| frame.pts_ns <= last.pts_ns)
        {
            // Video time went back: a new source session. The old session's frames belong to
            // audio that has ended too.
            self.frames.clear();
            self.asked_ns = 0;
        }
        self.prune(self.asked_ns);
        let dropped = self.frames.len() == WINDOW;
        if dropped {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
        dropped
    }

    /// The frame for the chunk whose middle has pts `mid_ns`.
    pub fn at(&mut self, mid_ns: u64) -> FaceMatch<'_> {
        self.asked_ns = mid_ns;
        self.prune(mid_ns);
        match self.frames.front() {
            Some(f) if f.pts_ns <= mid_ns && mid_ns - f.pts_ns > STALE_NS => FaceMatch::Stale(f),
            Some(f) if f.pts_ns <= mid_ns => FaceMatch::OnTime(f),
            _ => FaceMatch::None,
        }
    }

    /// True when the newest frame held is the one on screen at `mid_ns` or a later one, so no
    /// frame still to come can be the chunk's (frames are one per 40 ms, pts rising).
    pub fn covers(&self, mid_ns: u64) -> bool {
        self.frames
            .back()
            .is_some_and(|f| f.pts_ns + FRAME_NS > mid_ns)
    }

    /// Drop the frames before the newest one stamped at or before `pts_ns`.
    fn prune(&mut self, pts_ns: u64) {
        while self.frames.len() >= 2 && self.frames[1].pts_ns <= pts_ns {
            self.frames.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const FRAME: u64 = 40 * MS;

    fn frame(pts_ns: u64) -> FaceFrame {
        FaceFrame {
            pts_ns,
            faces: Vec::new(),
            slot_tracks: Vec::new(),
        }
    }

    fn pts(m: FaceMatch<'_>) -> Option<u64> {
        m.frame().map(|f| f.pts_ns)
    }

    #[test]
    fn each_chunk_takes_the_frame_nearest_its_start_whatever_the_arrival_order() {
        // Video 13 ms after the audio grid: chunk k spans [40k, 40k + 40) ms, its middle 40k + 20.
        let mut t = FaceTimeline::new();
        // Video runs four frames ahead of the audio thread: all arrive before the chunks ask.
        for k in 0..4 {
            assert!(!t.push(frame(13 * MS + k * FRAME)));
        }
        for k in 0..4 {
            assert_eq!(pts(t.at(k * FRAME + 20 * MS)), Some(13 * MS + k * FRAME));
        }
        // 27 ms after the grid: the middle (20 ms) is before the frame, so the earlier frame wins.
        let mut t = FaceTimeline::new();
        for k in 0..3 {
            t.push(frame(27 * MS + k * FRAME));
        }
        assert!(matches!(t.at(20 * MS), FaceMatch::None));
        assert_eq!(pts(t.at(FRAME + 20 * MS)), Some(27 * MS));
        assert_eq!(pts(t.at(2 * FRAME + 20 * MS)), Some(27 * MS + FRAME));
    }

    #[test]
    fn a_lagging_vision_stage_gives_stale_frames_and_recovers() {
        let mut t = FaceTimeline::new();
        t.push(frame(0));
        assert!(matches!(t.at(20 * MS), FaceMatch::OnTime(_)));
        // No new frame for 10 chunks: the first 4 (middles up to 200 ms after pts 0) are on time.
        let stale: Vec<bool> = (1..=10)
            .map(|k| matches!(t.at(k * FRAME + 20 * MS), FaceMatch::Stale(_)))
            .collect();
        assert_eq!(stale.iter().filter(|s| **s).count(), 6);
        assert_eq!(pts(t.at(10 * FRAME + 20 * MS)), Some(0));
        // The late frames arrive; the chunk now asking gets its own frame back.
        for k in 1..=11 {
            t.push(frame(k * FRAME));
        }
        let now = t.at(11 * FRAME + 20 * MS);
        assert!(matches!(now, FaceMatch::OnTime(f) if f.pts_ns == 11 * FRAME));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_full_window_drops_the_oldest_untaken_frame_and_says_so() {
        let mut t = FaceTimeline::new();
        let dropped = (0..WINDOW as u64 + 3)
            .filter(|&k| t.push(frame(k * FRAME)))
            .count();
        assert_eq!(dropped, 3);
        assert_eq!(t.len(), WINDOW);
        // Frames already behind the last chunk asked for make room without counting as drops.
        let mut t = FaceTimeline::new();
        t.push(frame(0));
        t.at(100 * FRAME);
        let dropped = (1..=WINDOW as u64 + 3)
            .filter(|&k| t.push(frame(k * FRAME)))
            .count();
        assert_eq!(dropped, 0);
    }

    #[test]
    fn video_time_going_back_starts_a_new_timeline() {
        let mut t = FaceTimeline::new();
        for k in 50..60 {
            t.push(frame(k * FRAME));
        }
        t.at(55 * FRAME + 20 * MS);
        // The source reconnects and its running time restarts near zero.
        t.push(frame(3 * MS));
        t.push(frame(3 * MS + FRAME));
        assert_eq!(t.len(), 2);
        assert_eq!(pts(t.at(20 * MS)), Some(3 * MS));
        assert_eq!(pts(t.at(FRAME + 20 * MS)), Some(3 * MS + FRAME));
    }

    #[test]
    fn covered_once_the_frame_on_screen_or_a_later_one_is_held() {
        let mut t = FaceTimeline::new();
        assert!(!t.covers(20 * MS));
        t.push(frame(13 * MS));
        // On screen over [13, 53) ms: covers middles up to 52 ms, not the next chunk's 60.
        assert!(t.covers(20 * MS) && t.covers(52 * MS) && !t.covers(60 * MS));
        t.push(frame(53 * MS));
        assert!(t.covers(60 * MS));
    }

    #[test]
    fn nothing_yet_is_none() {
        let mut t = FaceTimeline::new();
        assert!(matches!(t.at(20 * MS), FaceMatch::None));
        assert!(t.is_empty());
    }
}

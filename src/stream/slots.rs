//! Speaker slots: which face track each output slot (`speaker-<k>`, RTP port `base_port + 2k`)
//! carries. Decided on the video thread, where tracks live, and sent with every frame of faces, so
//! the separator, the timeline and the overlay all name the same slot.
//!
//! A track keeps its slot while it is offered to separation; a track not offered for
//! [`RELEASE_FRAMES`] gives it up (a face that turns away for a moment keeps its voice's slot and
//! its model state). A new track takes the lowest free slot; with every slot taken it waits.

/// Frames a track may go unoffered before its slot is freed (1 s at 25 fps).
pub const RELEASE_FRAMES: u32 = 25;

#[derive(Debug, Clone, Copy)]
struct Held {
    track: u64,
    /// Frames since the track was last offered.
    absent: u32,
}

#[derive(Debug, Clone)]
pub struct SlotTable {
    slots: Vec<Option<Held>>,
}

impl SlotTable {
    pub fn new(slots: usize) -> Self {
        SlotTable {
            slots: vec![None; slots],
        }
    }

    /// One video frame: `offered` are the track ids offered to separation in it, in the order
    /// new ones should get slots (the tracker's order).
    pub fn update(&mut self, offered: impl IntoIterator<Item = u64>) {
        for held in self.slots.iter_mut().flatten() {
            held.absent += 1;
        }
        for track in offered {
            if let Some(h) = self.slots.iter_mut().flatten().find(|h| h.track == track) {
                h.absent = 0;
            } else if let Some(free) = self.slots.iter_mut().find(|s| s.is_none()) {
                *free = Some(Held { track, absent: 0 });
            }
        }
        for s in &mut self.slots {
            if s.is_some_and(|h| h.absent > RELEASE_FRAMES) {
                *s = None;
            }
        }
    }

    /// The track of each slot.
    pub fn tracks(&self) -> Vec<Option<u64>> {
        self.slots.iter().map(|s| s.map(|h| h.track)).collect()
    }

    /// The slot of `track`, if it has one.
    pub fn slot_of(&self, track: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.is_some_and(|h| h.track == track))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_take_the_lowest_free_slots_and_keep_them() {
        let mut t = SlotTable::new(2);
        t.update([7, 3]);
        assert_eq!(t.tracks(), [Some(7), Some(3)]);
        // A third face waits for a slot; order in later frames does not move anyone.
        t.update([3, 9, 7]);
        assert_eq!(t.tracks(), [Some(7), Some(3)]);
        assert_eq!(t.slot_of(9), None);
        assert_eq!(t.slot_of(3), Some(1));
    }

    #[test]
    fn a_slot_is_held_through_a_short_absence_and_freed_after_a_second() {
        let mut t = SlotTable::new(2);
        t.update([1, 2]);
        for _ in 0..RELEASE_FRAMES {
            t.update([2]);
        }
        assert_eq!(
            t.tracks(),
            [Some(1), Some(2)],
            "held for {RELEASE_FRAMES} frames"
        );
        t.update([2]);
        assert_eq!(t.tracks(), [None, Some(2)]);
        // A new track takes the freed slot.
        t.update([2, 5]);
        assert_eq!(t.tracks(), [Some(5), Some(2)]);
    }
}

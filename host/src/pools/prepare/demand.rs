//! How many prepared slots the reserve keeps: as many as spawns have lately needed.
//!
//! A fixed reserve costs a node that spawns a few processes as much as one that spawns
//! thousands a second (a counter's slot is 20 KiB prepared, per pool). So the reserve starts
//! small, doubles when spawns find it empty (the spawns outran the thread; once per refill,
//! however many spawns find it empty meanwhile), and halves at every idle check after the
//! first without a slot taken since the one before, down to nothing: an idle node gives its
//! reserve back to the kernel within seconds, while one spawning every second or so keeps a
//! few slots rather than preparing and discarding them.

/// The reserve a pool aims at first, and after it has been idle down to nothing.
const FIRST: usize = 4;

/// The most prepared slots a pool keeps.
pub(super) const MOST: usize = 32;

/// The reserve's size, following the spawns.
#[derive(Debug)]
pub(in crate::pools) struct Demand {
    target: usize,
    /// Slots handed out without warm pages so far (prepared or not).
    taken: u64,
    /// `taken` at the last idle check.
    checked: u64,
    /// Idle checks in a row without a slot taken.
    idle: u32,
    /// A spawn found the reserve empty since it was last full: the target doubled already.
    missed: bool,
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            target: FIRST,
            taken: 0,
            checked: 0,
            idle: 0,
            missed: false,
        }
    }
}

impl Demand {
    /// How many prepared slots to keep.
    pub(super) fn target(&self) -> usize {
        self.target
    }

    /// Below this many ready slots, the thread fills the reserve up to the target again.
    pub(super) fn low_water(&self) -> usize {
        self.target.div_ceil(2)
    }

    /// A slot was handed out without warm pages; `missed` when a prepared one was due and
    /// none was ready.
    pub(super) fn took(&mut self, missed: bool) {
        self.taken += 1;
        if missed && !self.missed {
            self.missed = true;
            self.target = (self.target * 2).clamp(FIRST, MOST);
        }
    }

    /// The reserve holds its target again.
    pub(super) fn filled(&mut self) {
        self.missed = false;
    }

    /// An idle check: halve the target if no slot was taken since the last two. Returns the
    /// target.
    pub(super) fn idle_check(&mut self) -> usize {
        if self.taken == self.checked {
            self.idle += 1;
            if self.idle >= 2 {
                self.target /= 2;
            }
        } else {
            self.idle = 0;
        }
        self.checked = self.taken;
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_doubles_once_per_refill_when_spawns_find_it_empty_up_to_its_most() {
        let mut demand = Demand::default();
        assert_eq!(demand.target(), FIRST);
        demand.took(false);
        assert_eq!(demand.target(), FIRST, "a prepared slot was ready");
        demand.took(true);
        demand.took(true);
        assert_eq!(
            demand.target(),
            2 * FIRST,
            "twice empty before it was refilled"
        );
        let mut targets = Vec::new();
        for _ in 0..4 {
            demand.filled();
            demand.took(true);
            targets.push(demand.target());
        }
        assert_eq!(targets, [16, 32, MOST, MOST]);
    }

    #[test]
    fn an_idle_reserve_halves_from_the_second_idle_check_down_to_nothing_and_regrows() {
        let mut demand = Demand::default();
        demand.took(true);
        demand.filled();
        demand.took(true);
        assert_eq!(demand.target(), 16);
        demand.took(false);
        assert_eq!(
            demand.idle_check(),
            16,
            "slots were taken since the last check"
        );
        assert_eq!(demand.idle_check(), 16, "one idle check is not idle yet");
        let halved: Vec<usize> = (0..6).map(|_| demand.idle_check()).collect();
        assert_eq!(halved, [8, 4, 2, 1, 0, 0]);
        assert_eq!(demand.low_water(), 0, "nothing to fill");
        demand.filled();
        demand.took(true);
        assert_eq!(
            demand.target(),
            FIRST,
            "a miss after idling starts small again"
        );
        assert_eq!(demand.low_water(), 2);
        assert_eq!(
            demand.idle_check(),
            FIRST,
            "a spawn came: idle from the start again"
        );
        assert_eq!(demand.idle_check(), FIRST);
        assert_eq!(demand.idle_check(), FIRST / 2);
    }
}

//! How many prepared slots the reserve keeps: as many as spawns have lately needed.
//!
//! A fixed reserve costs a node that spawns a few processes as much as one that spawns
//! thousands a second (a counter's slot is 20 KiB prepared, per pool). So the reserve starts
//! small, doubles whenever a spawn finds it empty (the spawns outran the thread), and halves
//! at every idle check without a slot taken since the one before, down to nothing: an idle
//! node gives its reserve back to the kernel within seconds.

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
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            target: FIRST,
            taken: 0,
            checked: 0,
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
        if missed {
            self.target = (self.target * 2).clamp(FIRST, MOST);
        }
    }

    /// An idle check: halve the target if no slot was taken since the last one. Returns the
    /// target.
    pub(super) fn idle_check(&mut self) -> usize {
        if self.taken == self.checked {
            self.target /= 2;
        }
        self.checked = self.taken;
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_doubles_when_spawns_find_it_empty_up_to_its_most() {
        let mut demand = Demand::default();
        assert_eq!(demand.target(), FIRST);
        demand.took(false);
        assert_eq!(demand.target(), FIRST, "a prepared slot was ready");
        let mut targets = Vec::new();
        for _ in 0..5 {
            demand.took(true);
            targets.push(demand.target());
        }
        assert_eq!(targets, [8, 16, 32, MOST, MOST]);
    }

    #[test]
    fn an_idle_reserve_halves_at_each_check_down_to_nothing_and_regrows() {
        let mut demand = Demand::default();
        demand.took(true);
        demand.took(true);
        assert_eq!(demand.target(), 16);
        demand.took(false);
        assert_eq!(
            demand.idle_check(),
            16,
            "slots were taken since the last check"
        );
        let halved: Vec<usize> = (0..6).map(|_| demand.idle_check()).collect();
        assert_eq!(halved, [8, 4, 2, 1, 0, 0]);
        assert_eq!(demand.low_water(), 0, "nothing to fill");
        demand.took(true);
        assert_eq!(
            demand.target(),
            FIRST,
            "a miss after idling starts small again"
        );
        assert_eq!(demand.low_water(), 2);
    }
}

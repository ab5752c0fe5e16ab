//! Warnings a guest can cause, at most one a second per module: the rest are counted and the
//! next warning says how many, so that a guest cannot flood the node's log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one module may cause a warning.
const PERIOD: Duration = Duration::from_secs(1);

/// The most modules tracked apart; past it (a node loading modules without end) the rest
/// share one slot, so the map stays bounded.
const MAX_MODULES: usize = 1_024;

/// One module's last warning and the warnings held back since.
struct Slot {
    last: Instant,
    suppressed: u64,
}

/// Warnings throttled per module.
#[derive(Default)]
pub(crate) struct Throttle {
    slots: Mutex<HashMap<Box<str>, Slot>>,
}

impl Throttle {
    /// Whether `module` may warn at `now`: `Some(n)` with the `n` warnings held back since its
    /// last, or `None` (and this one is counted).
    pub(crate) fn allow(&self, module: &str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let key = if slots.contains_key(module) || slots.len() < MAX_MODULES {
            module
        } else {
            ""
        };
        match slots.get_mut(key) {
            Some(slot) if now.saturating_duration_since(slot.last) < PERIOD => {
                slot.suppressed += 1;
                None
            }
            Some(slot) => {
                slot.last = now;
                Some(std::mem::take(&mut slot.suppressed))
            }
            None => {
                slots.insert(
                    key.into(),
                    Slot {
                        last: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_warns_once_a_second_and_then_says_how_many_it_held_back() {
        let t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.allow("a", t0), Some(0));
        for ms in [1, 500, 999] {
            assert_eq!(t.allow("a", t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(t.allow("b", t0 + Duration::from_millis(10)), Some(0));
        assert_eq!(t.allow("a", t0 + Duration::from_millis(1000)), Some(3));
        assert_eq!(t.allow("a", t0 + Duration::from_millis(1001)), None);
    }

    #[test]
    fn modules_past_the_bound_share_one_slot() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for i in 0..MAX_MODULES {
            assert_eq!(t.allow(&format!("m{i}"), t0), Some(0));
        }
        assert_eq!(t.allow("late_1", t0), Some(0));
        assert_eq!(t.allow("late_2", t0), None);
        assert_eq!(t.slots.lock().unwrap().len(), MAX_MODULES + 1);
    }
}

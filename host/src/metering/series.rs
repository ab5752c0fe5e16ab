//! The bound on the metric series guests create: a budget for the whole node and a share of
//! it for each module, so that one module inventing series (a label with a request id in it)
//! cannot take the budget from every other module.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::names::Instrument;

/// The default most distinct metric series (name and labels) guests may create on a node; a
/// measurement that would create one more is dropped (and counted in
/// `otter_telemetry_dropped_total{reason="series_limit"}`).
pub const MAX_GUEST_SERIES: usize = 2_000;

/// A module's default share is this fraction of the node's budget (a quarter: 500 of the
/// default 2,000).
const DEFAULT_SHARE_DIVISOR: usize = 4;

/// How many metric series guests may create: the node's budget, and each module's share of
/// it. A module is a module name, whatever its version: all its processes, before and after
/// an upgrade, draw on one share. Series stay counted for as long as the recorder keeps them
/// (until the program exits), so a module's share is not given back when its processes exit.
///
/// ```
/// let mut limits = otter::telemetry::SeriesLimits::default();
/// limits.max_series(10_000).max_series_per_module(1_000);
/// assert_eq!((limits.max(), limits.per_module()), (10_000, 1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimits {
    max: usize,
    per_module: Option<usize>,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            max: MAX_GUEST_SERIES,
            per_module: None,
        }
    }
}

impl SeriesLimits {
    /// The most distinct series all guests together create. Default [`MAX_GUEST_SERIES`]
    /// (2,000). Past it a measurement for a new series is dropped and counted in
    /// `otter_telemetry_dropped_total{reason="series_limit"}`.
    pub fn max_series(&mut self, series: usize) -> &mut Self {
        self.max = series;
        self
    }

    /// The most distinct series the processes of one module create together. Default a
    /// quarter of [`SeriesLimits::max_series`] (rounded up): 500 of 2,000, so it takes four
    /// runaway modules to spend the node's budget, while a module with a few hundred
    /// series of its own fits. More than `max_series` is `max_series`. Past it a
    /// measurement for a new series of that module is dropped and counted in
    /// `otter_telemetry_dropped_total{reason="module_series_limit",module}`.
    pub fn max_series_per_module(&mut self, series: usize) -> &mut Self {
        self.per_module = Some(series);
        self
    }

    /// The node's budget.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A module's share.
    pub fn per_module(&self) -> usize {
        self.per_module
            .unwrap_or(self.max.div_ceil(DEFAULT_SHARE_DIVISOR))
            .min(self.max)
    }
}

/// Why [`Series::admit`] refused a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Guests have created the node's budget of series already.
    SeriesLimit,
    /// The measurement's module has created its share of series already.
    ModuleSeriesLimit,
    /// The name (or one of the names a histogram exposes) is another metric's.
    NameTaken,
}

impl Refused {
    /// The `reason` label of `otter_telemetry_dropped_total`.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::SeriesLimit => "series_limit",
            Refused::ModuleSeriesLimit => MODULE_SERIES_LIMIT,
            Refused::NameTaken => "name_taken",
        }
    }
}

/// The most modules warned of reaching their share (each once, until the limits change).
const MAX_WARNED_MODULES: usize = 1024;

/// The drop reason that also carries the module's label.
pub(crate) const MODULE_SERIES_LIMIT: &str = "module_series_limit";

/// The series guests have created, so that a guest inventing names cannot grow the
/// recorder's memory without bound, nor take another module's share of it, nor make one
/// name two kinds of metric (which would make the whole scrape invalid).
pub(crate) struct Series {
    state: Mutex<SeriesState>,
    /// Whether the node's budget was reached (warned once).
    full: AtomicBool,
    /// Keys for the hashes that stand for series and names, drawn at random: with fixed keys
    /// a guest could find two names of one hash offline and so create a series uncounted.
    keys: RandomState,
}

#[derive(Default)]
struct SeriesState {
    limits: SeriesLimits,
    /// Series by a 64-bit keyed hash of name, kind and labels.
    series: HashSet<u64>,
    /// Each name a metric exposes (a histogram: `X_bucket`, `X_sum`, `X_count` and `X`),
    /// by hash, with the hash of the metric (name and kind) that claimed it.
    claims: HashMap<u64, u64>,
    /// How many of `series` each module created. A module is here only once it created
    /// one, so there are never more entries than series.
    by_module: HashMap<Box<str>, usize>,
    /// The modules warned of being refused past their share (since the limits were set).
    warned: HashSet<Box<str>>,
}

impl Series {
    pub(crate) fn new() -> Self {
        Series {
            state: Mutex::new(SeriesState::default()),
            full: AtomicBool::new(false),
            keys: RandomState::new(),
        }
    }

    /// Apply `limits` from now on. Series already created stay, even past a lowered limit.
    pub(crate) fn set_limits(&self, limits: SeriesLimits) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.limits = limits;
        state.warned.clear();
    }

    /// A value's hash under this node's random keys.
    fn hash(&self, value: impl Hash) -> u64 {
        self.keys.hash_one(value)
    }

    /// Whether a measurement of `module`'s may go to `instrument`'s series with `labels`:
    /// yes if the series exists, or if the module's share and the node's budget have room
    /// for it and its names are free.
    pub(crate) fn admit(
        &self,
        instrument: &Instrument,
        module: &str,
        labels: &[(&'static str, &str)],
    ) -> Result<(), Refused> {
        let (name, kind) = match instrument {
            Instrument::Histogram(n, _) => (n, 0u8),
            Instrument::Counter(n, _) => (n, 1),
            Instrument::Gauge(n, _) => (n, 2),
        };
        let key = self.hash((name, kind, labels));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.series.contains(&key) {
            return Ok(());
        }
        let limits = state.limits;
        // The module's own share first: a module past it is refused for that, even once
        // the node is full, so the drop names the module that caused it. With no budget
        // at all no module caused it.
        let held = state.by_module.get(module).copied().unwrap_or(0);
        if held >= limits.per_module() && limits.max() > 0 {
            // Once per module, for at most so many modules.
            if state.warned.len() < MAX_WARNED_MODULES && state.warned.insert(module.into()) {
                tracing::warn!(
                    target: "otter::telemetry",
                    module,
                    limit = limits.per_module(),
                    node_limit = limits.max(),
                    "a module reached its share of distinct metric series; measurements for its new series are dropped"
                );
            }
            return Err(Refused::ModuleSeriesLimit);
        }
        if state.series.len() >= limits.max() {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "otter::telemetry",
                    limit = limits.max(),
                    "guests reached the limit of distinct metric series; measurements for new series are dropped"
                );
            }
            return Err(Refused::SeriesLimit);
        }
        let metric = self.hash((name, kind));
        let exposed: Vec<u64> = if kind == 0 {
            ["", "_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| self.hash(format!("{name}{suffix}")))
                .collect()
        } else {
            vec![self.hash(name.as_str())]
        };
        if exposed
            .iter()
            .any(|n| state.claims.get(n).is_some_and(|owner| *owner != metric))
        {
            return Err(Refused::NameTaken);
        }
        for n in exposed {
            state.claims.insert(n, metric);
        }
        state.series.insert(key);
        let held = match state.by_module.get_mut(module) {
            Some(held) => held,
            None => state.by_module.entry(module.into()).or_default(),
        };
        *held += 1;
        Ok(())
    }

    /// Each module that created series, with how many, in module order.
    pub(crate) fn by_module(&self) -> Vec<(String, usize)> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(String, usize)> = state
            .by_module
            .iter()
            .map(|(m, n)| (m.to_string(), *n))
            .collect();
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(n: &str) -> Instrument {
        Instrument::Gauge(n.to_owned(), 1.0)
    }

    /// `module`'s measurement of a gauge `name`, labelled as `record` labels it.
    fn admit(s: &Series, name: &str, module: &str) -> Result<(), Refused> {
        s.admit(&gauge(name), module, &[("module", module)])
    }

    fn limits(max: usize, per_module: usize) -> SeriesLimits {
        let mut l = SeriesLimits::default();
        l.max_series(max).max_series_per_module(per_module);
        l
    }

    #[test]
    fn series_are_hashed_under_keys_of_their_own() {
        let (a, b) = (Series::new(), Series::new());
        let value = ("orders_total", 1u8, [("module", "x")]);
        assert_eq!(a.hash(value), a.hash(value));
        assert_ne!(a.hash(value), b.hash(value), "keys no guest can know");
    }

    #[test]
    fn a_module_s_default_share_is_a_quarter_of_the_node_s_budget() {
        let l = SeriesLimits::default();
        assert_eq!((l.max(), l.per_module()), (MAX_GUEST_SERIES, 500));
        let mut l = SeriesLimits::default();
        assert_eq!(l.max_series(10).per_module(), 3, "rounded up");
        assert_eq!(l.max_series(0).per_module(), 0);
        assert_eq!(
            l.max_series(100).max_series_per_module(500).per_module(),
            100,
            "never more than the node's"
        );
    }

    #[test]
    fn series_past_the_limit_are_refused_but_known_ones_go_on() {
        let s = Series::new();
        s.set_limits(limits(MAX_GUEST_SERIES, MAX_GUEST_SERIES));
        for i in 0..MAX_GUEST_SERIES {
            assert_eq!(admit(&s, &format!("m{i}"), "x"), Ok(()));
        }
        assert_eq!(admit(&s, "one_more", "x"), Err(Refused::ModuleSeriesLimit));
        assert_eq!(admit(&s, "one_more", "y"), Err(Refused::SeriesLimit));
        assert_eq!(admit(&s, "m0", "x"), Ok(()));
    }

    #[test]
    fn a_module_past_its_share_leaves_room_for_the_others() {
        let s = Series::new();
        for i in 0..MAX_GUEST_SERIES {
            let _ = admit(&s, &format!("noisy{i}"), "noisy");
        }
        assert_eq!(s.by_module(), [("noisy".to_owned(), 500)]);
        assert_eq!(
            admit(&s, "noisy_more", "noisy"),
            Err(Refused::ModuleSeriesLimit)
        );
        assert_eq!(admit(&s, "noisy0", "noisy"), Ok(()), "its series go on");
        assert_eq!(admit(&s, "quiet", "quiet"), Ok(()));
        // Four runaway modules do spend the node's budget: then it is the node's limit.
        for m in ["b", "c", "d"] {
            for i in 0..MAX_GUEST_SERIES {
                let _ = admit(&s, &format!("{m}{i}"), m);
            }
        }
        assert_eq!(admit(&s, "late", "late"), Err(Refused::SeriesLimit));
        let held: usize = s.by_module().iter().map(|(_, n)| n).sum();
        assert_eq!(held, MAX_GUEST_SERIES, "never past the node's budget");
    }

    #[test]
    fn lowered_limits_keep_the_series_made_and_refuse_new_ones() {
        let s = Series::new();
        for i in 0..10 {
            assert_eq!(admit(&s, &format!("m{i}"), "x"), Ok(()));
        }
        s.set_limits(limits(100, 5));
        assert_eq!(admit(&s, "m0", "x"), Ok(()));
        assert_eq!(admit(&s, "m10", "x"), Err(Refused::ModuleSeriesLimit));
        s.set_limits(limits(100, 0));
        assert_eq!(admit(&s, "new", "y"), Err(Refused::ModuleSeriesLimit));
        s.set_limits(limits(0, 0));
        assert_eq!(admit(&s, "m9", "x"), Ok(()), "known ones go on");
        assert_eq!(
            admit(&s, "newer", "y"),
            Err(Refused::SeriesLimit),
            "with no budget at all, no module is to blame"
        );
    }

    #[test]
    fn a_name_is_one_kind_of_metric_and_a_histogram_owns_its_suffixes() {
        let s = Series::new();
        let labels = [("module", "x")];
        let histogram = Instrument::Histogram("a_duration_seconds".into(), 1.0);
        assert_eq!(s.admit(&histogram, "x", &labels), Ok(()));
        for taken in ["a_duration_seconds", "a_duration_seconds_count"] {
            assert_eq!(
                s.admit(&Instrument::Gauge(taken.into(), 1.0), "x", &labels),
                Err(Refused::NameTaken),
                "{taken}"
            );
        }
        assert_eq!(
            s.admit(&Instrument::Counter("b_total".into(), 1), "x", &labels),
            Ok(())
        );
        assert_eq!(
            s.admit(&Instrument::Gauge("b_total".into(), 1.0), "x", &labels),
            Err(Refused::NameTaken)
        );
        assert_eq!(
            s.admit(
                &Instrument::Counter("b_total".into(), 1),
                "y",
                &[("module", "y")]
            ),
            Ok(()),
            "the same metric with other labels"
        );
        assert_eq!(
            s.by_module(),
            [("x".to_owned(), 2), ("y".to_owned(), 1)],
            "a refused name is not counted"
        );
    }
}

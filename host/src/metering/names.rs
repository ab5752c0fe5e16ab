//! How a guest's event becomes metric names, and the bound on how many series guests create.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most distinct metric series (name and labels) guests may create on a node; a
/// measurement that would create one more is dropped (and counted in
/// `otter_telemetry_dropped_total{reason="series_limit"}`).
pub const MAX_GUEST_SERIES: usize = 2_000;

/// What a guest event's measurement becomes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Instrument {
    /// A histogram observation, in seconds.
    Histogram(String, f64),
    /// A counter increment.
    Counter(String, u64),
    /// A gauge set to a value.
    Gauge(String, f64),
}

/// The event's segments as one metric-name stem: each segment lowercased, every character
/// other than `a-z`, `0-9` and `_` made `_`, joined by `_`; a stem starting with a digit
/// gets a leading `_` (Prometheus names may not start with one).
pub(crate) fn stem(segments: &[&str]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.extend(s.chars().map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        }));
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The metrics one event makes, by the rule the README's Telemetry section states:
///
/// - a span's `[..., start]`: none;
/// - `[..., stop]`: its `duration` (nanoseconds) → histogram `<prefix>_duration_seconds`;
/// - `[..., exception]`: counter `<prefix>_exceptions_total` +1;
/// - any other event `E`: `duration` → histogram `E_duration_seconds`; a measurement whose
///   name ends in `_total` → counter `E_<name>` (a negative or fractional value is dropped);
///   any other → gauge `E_<name>`.
///
/// A name that would start with `otter_` (the host's) starts with `guest_otter_`. Values
/// that are not finite are dropped before this.
pub(crate) fn instruments(segments: &[&str], measurements: &[(&str, f64)]) -> Vec<Instrument> {
    let mut all = by_rule(segments, measurements);
    for i in &mut all {
        let (Instrument::Histogram(name, _)
        | Instrument::Counter(name, _)
        | Instrument::Gauge(name, _)) = i;
        // `otter_` names are the host's: a guest cannot pose as (or clash with) them.
        if name.starts_with("otter_") {
            name.insert_str(0, "guest_");
        }
    }
    all
}

fn by_rule(segments: &[&str], measurements: &[(&str, f64)]) -> Vec<Instrument> {
    let Some((last, prefix)) = segments.split_last() else {
        return Vec::new();
    };
    let duration = || {
        measurements
            .iter()
            .find(|(k, _)| *k == "duration")
            .map(|(_, v)| *v)
            .filter(|v| *v >= 0.0)
    };
    match *last {
        "start" if !prefix.is_empty() => Vec::new(),
        "stop" if !prefix.is_empty() => duration()
            .map(|ns| Instrument::Histogram(format!("{}_duration_seconds", stem(prefix)), ns / 1e9))
            .into_iter()
            .collect(),
        "exception" if !prefix.is_empty() => {
            vec![Instrument::Counter(
                format!("{}_exceptions_total", stem(prefix)),
                1,
            )]
        }
        _ => {
            let stem = stem(segments);
            measurements
                .iter()
                .filter_map(|&(name, v)| {
                    let metric = format!("{stem}_{}", self::stem(&[name]));
                    if name == "duration" {
                        (v >= 0.0)
                            .then(|| Instrument::Histogram(format!("{metric}_seconds"), v / 1e9))
                    } else if name.ends_with("_total") {
                        (v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64)
                            .then_some(Instrument::Counter(metric, v as u64))
                    } else {
                        Some(Instrument::Gauge(metric, v))
                    }
                })
                .collect()
        }
    }
}

/// Why [`Series::admit`] refused a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Guests have created [`MAX_GUEST_SERIES`] series already.
    SeriesLimit,
    /// The name (or one of the names a histogram exposes) is another metric's.
    NameTaken,
}

impl Refused {
    /// The `reason` label of `otter_telemetry_dropped_total`.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::SeriesLimit => "series_limit",
            Refused::NameTaken => "name_taken",
        }
    }
}

/// The series guests have created, so that a guest inventing names cannot grow the
/// recorder's memory without bound, nor make one name two kinds of metric (which would make
/// the whole scrape invalid).
pub(crate) struct Series {
    state: Mutex<SeriesState>,
    /// Whether the limit was reached (warned once).
    full: AtomicBool,
    /// Keys for the hashes that stand for series and names, drawn at random: with fixed keys
    /// a guest could find two names of one hash offline and so create a series uncounted.
    keys: RandomState,
}

#[derive(Default)]
struct SeriesState {
    /// Series by a 64-bit keyed hash of name, kind and labels.
    series: HashSet<u64>,
    /// Each name a metric exposes (a histogram: `X_bucket`, `X_sum`, `X_count` and `X`),
    /// by hash, with the hash of the metric (name and kind) that claimed it.
    claims: HashMap<u64, u64>,
}

impl Series {
    pub(crate) fn new() -> Self {
        Series {
            state: Mutex::new(SeriesState::default()),
            full: AtomicBool::new(false),
            keys: RandomState::new(),
        }
    }

    /// A value's hash under this node's random keys.
    fn hash(&self, value: impl Hash) -> u64 {
        self.keys.hash_one(value)
    }

    /// Whether a measurement may go to `instrument`'s series with `labels`: yes if the series
    /// exists, or if there is room for it and its names are free.
    pub(crate) fn admit(
        &self,
        instrument: &Instrument,
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
        if state.series.len() >= MAX_GUEST_SERIES {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "otter::telemetry",
                    limit = MAX_GUEST_SERIES,
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_event_becomes_a_duration_histogram_in_seconds() {
        let got = instruments(
            &["orders", "flush", "stop"],
            &[("duration", 2.5e9), ("monotonic_time", 7.0)],
        );
        assert_eq!(
            got,
            vec![Instrument::Histogram(
                "orders_flush_duration_seconds".into(),
                2.5
            )]
        );
    }

    #[test]
    fn an_exception_event_counts_and_a_start_event_makes_nothing() {
        assert_eq!(
            instruments(&["orders", "flush", "exception"], &[("duration", 1.0)]),
            vec![Instrument::Counter(
                "orders_flush_exceptions_total".into(),
                1
            )]
        );
        assert!(instruments(&["orders", "flush", "start"], &[("monotonic_time", 1.0)]).is_empty());
    }

    #[test]
    fn other_measurements_become_counters_or_gauges_by_name() {
        let got = instruments(
            &["Orders", "queue"],
            &[
                ("submitted_total", 3.0),
                ("len", 4.5),
                ("bad_total", -1.0),
                ("duration", 1e6),
            ],
        );
        assert_eq!(
            got,
            vec![
                Instrument::Counter("orders_queue_submitted_total".into(), 3),
                Instrument::Gauge("orders_queue_len".into(), 4.5),
                Instrument::Histogram("orders_queue_duration_seconds".into(), 0.001),
            ]
        );
    }

    #[test]
    fn a_guest_cannot_name_a_metric_as_the_host_s() {
        assert_eq!(
            instruments(&["otter", "mailbox"], &[("length", 1.0)]),
            vec![Instrument::Gauge("guest_otter_mailbox_length".into(), 1.0)]
        );
    }

    #[test]
    fn stems_are_prometheus_names() {
        assert_eq!(stem(&["a.b", "C-d", "é"]), "a_b_c_d__");
        assert_eq!(stem(&["9lives"]), "_9lives");
    }

    #[test]
    fn series_are_hashed_under_keys_of_their_own() {
        let (a, b) = (Series::new(), Series::new());
        let value = ("orders_total", 1u8, [("module", "x")]);
        assert_eq!(a.hash(value), a.hash(value));
        assert_ne!(a.hash(value), b.hash(value), "keys no guest can know");
    }

    #[test]
    fn series_past_the_limit_are_refused_but_known_ones_go_on() {
        let s = Series::new();
        let gauge = |n: &str| Instrument::Gauge(n.to_owned(), 1.0);
        for i in 0..MAX_GUEST_SERIES {
            assert_eq!(
                s.admit(&gauge(&format!("m{i}")), &[("module", "x")]),
                Ok(())
            );
        }
        assert_eq!(
            s.admit(&gauge("one_more"), &[("module", "x")]),
            Err(Refused::SeriesLimit)
        );
        assert_eq!(s.admit(&gauge("m0"), &[("module", "x")]), Ok(()));
    }

    #[test]
    fn a_name_is_one_kind_of_metric_and_a_histogram_owns_its_suffixes() {
        let s = Series::new();
        let labels = [("module", "x")];
        let histogram = Instrument::Histogram("a_duration_seconds".into(), 1.0);
        assert_eq!(s.admit(&histogram, &labels), Ok(()));
        for taken in ["a_duration_seconds", "a_duration_seconds_count"] {
            assert_eq!(
                s.admit(&Instrument::Gauge(taken.into(), 1.0), &labels),
                Err(Refused::NameTaken),
                "{taken}"
            );
        }
        assert_eq!(
            s.admit(&Instrument::Counter("b_total".into(), 1), &labels),
            Ok(())
        );
        assert_eq!(
            s.admit(&Instrument::Gauge("b_total".into(), 1.0), &labels),
            Err(Refused::NameTaken)
        );
        assert_eq!(
            s.admit(
                &Instrument::Counter("b_total".into(), 1),
                &[("module", "y")]
            ),
            Ok(()),
            "the same metric with other labels"
        );
    }
}

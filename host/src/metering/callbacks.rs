//! What the runtime records as it runs: callback durations (in histograms of its own) and
//! supervisor restarts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The callbacks whose durations are measured.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Callback {
    Call,
    Cast,
    Info,
    /// Several queued messages handed over in one entry.
    Batch,
}

impl Callback {
    fn label(self) -> &'static str {
        match self {
            Callback::Call => "handle_call",
            Callback::Cast => "handle_cast",
            Callback::Info => "handle_info",
            Callback::Batch => "handle_batch",
        }
    }
}

/// A module's callback-duration histograms, found by the module's name at its first
/// callback measured, so that a callback costs no lookup.
#[derive(Default)]
pub(crate) struct ModuleMetrics {
    callbacks: OnceLock<Arc<Callbacks>>,
}

/// Upper bounds of the callback-duration buckets, in nanoseconds (those of the guests'
/// duration histograms too).
const CALLBACK_BUCKETS_NS: [u64; 15] = [
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// One histogram: a counter per bucket (and one past the last) and the sum. Kept by the host
/// itself rather than through the recorder, which stores every sample until its upkeep: a
/// callback pays two clock reads and two relaxed atomic adds.
#[derive(Default)]
struct Durations {
    buckets: [AtomicU64; CALLBACK_BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Durations {
    fn record(&self, ns: u64) {
        let i = CALLBACK_BUCKETS_NS.partition_point(|&le| le < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// A module's four histograms, one per [`Callback`].
#[derive(Default)]
struct Callbacks {
    by_callback: [Durations; 4],
}

/// Every module's histograms, by module name: a module's versions share them.
fn all_callbacks() -> &'static Mutex<BTreeMap<String, Arc<Callbacks>>> {
    static ALL: OnceLock<Mutex<BTreeMap<String, Arc<Callbacks>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
}

impl ModuleMetrics {
    fn durations(&self, module: &str, callback: Callback) -> &Durations {
        let all = self.callbacks.get_or_init(|| {
            all_callbacks()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(module.to_owned())
                .or_default()
                .clone()
        });
        &all.by_callback[callback as usize]
    }
}

/// `otter_callback_duration_seconds{module,callback}`, as a histogram family.
pub(crate) fn render_callbacks(out: &mut String) {
    let all = all_callbacks().lock().unwrap_or_else(|e| e.into_inner());
    let family = "otter_callback_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {family} How long callbacks ran, by module and callback."
    );
    let _ = writeln!(out, "# TYPE {family} histogram");
    for (module, callbacks) in all.iter() {
        for callback in [
            Callback::Call,
            Callback::Cast,
            Callback::Info,
            Callback::Batch,
        ] {
            let d = &callbacks.by_callback[callback as usize];
            let labels = format!(
                "module=\"{}\",callback=\"{}\"",
                LabelValue(module),
                callback.label()
            );
            let mut cumulative = 0u64;
            for (i, le) in CALLBACK_BUCKETS_NS.iter().enumerate() {
                cumulative += d.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{family}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                    *le as f64 / 1e9
                );
            }
            cumulative += d.buckets[CALLBACK_BUCKETS_NS.len()].load(Ordering::Relaxed);
            let _ = writeln!(out, "{family}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
            let sum = d.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{family}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{family}_count{{{labels}}} {cumulative}");
        }
    }
}

/// Times one callback (made only when metrics are recorded: see [`super::enabled`]).
pub(crate) struct CallbackTimer {
    callback: Callback,
    started: quanta::Instant,
}

impl CallbackTimer {
    /// Start timing.
    pub(crate) fn start(callback: Callback) -> CallbackTimer {
        CallbackTimer {
            callback,
            started: quanta::Instant::now(),
        }
    }

    /// Record the time since [`CallbackTimer::start`] for the module `name`.
    pub(crate) fn finish(self, metrics: &ModuleMetrics, name: &str) {
        let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        metrics.durations(name, self.callback).record(ns);
    }
}

/// A supervisor restarted a child.
pub(crate) fn restarted(supervisor: &str, child: &str) {
    if super::enabled() {
        metrics::counter!(
            "otter_supervisor_restarts_total",
            "supervisor" => supervisor.to_owned(),
            "child" => child.to_owned()
        )
        .increment(1);
    }
}

/// One gauge family: its `HELP` and `TYPE` lines, then a line per row.
pub(crate) fn gauge_family<'a>(
    out: &mut String,
    family: &str,
    help: &str,
    rows: impl Iterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
) {
    let _ = writeln!(out, "# HELP {family} {help}");
    let _ = writeln!(out, "# TYPE {family} gauge");
    for (labels, value) in rows {
        out.push_str(family);
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", LabelValue(v));
        }
        let _ = writeln!(out, "}} {value}");
    }
}

/// A label value escaped as the text format requires (`\\`, `\"`, `\n`).
struct LabelValue<'a>(&'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        gauge_family(
            &mut out,
            "f",
            "h",
            [(vec![("name", "a\"b\\c\nd")], 1)].into_iter(),
        );
        assert!(out.ends_with("f{name=\"a\\\"b\\\\c\\nd\"} 1\n"), "{out}");
    }
}

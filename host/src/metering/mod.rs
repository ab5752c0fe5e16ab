//! What the runtime records as it runs, through the `metrics` facade or in figures of its
//! own: guests' telemetry events as metrics (under the naming rule of [`crate::telemetry`]),
//! callback durations, supervisor restarts. Nothing is recorded until
//! [`crate::telemetry::Metrics::install`] calls [`enable`]; until then each hook costs one
//! relaxed atomic load.

mod callbacks;
mod names;
mod series;
mod throttle;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use callbacks::{
    Callback, CallbackTimer, ModuleMetrics, gauge_family, render_callbacks, restarted,
};
pub use series::{MAX_GUEST_SERIES, SeriesLimits};

use names::Instrument;
use series::Series;

/// Whether a recorder is installed (so metrics are worth making).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether metrics are recorded: one relaxed load, for the hot paths.
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The series guests created.
fn series() -> &'static Series {
    static SERIES: OnceLock<Series> = OnceLock::new();
    SERIES.get_or_init(Series::new)
}

/// Record a guest event's metrics (a no-op until [`Metrics::install`]). `measurements` are
/// finite already.
pub(crate) fn record(
    pid: crate::Pid,
    module: &str,
    name: Option<&str>,
    segments: &[&str],
    measurements: &[(&str, f64)],
) {
    if !enabled() {
        return;
    }
    let mut labels: Vec<(&'static str, &str)> = vec![("module", module)];
    if let Some(name) = name {
        labels.push(("name", name));
    }
    for instrument in names::instruments(segments, measurements) {
        if let Err(refused) = series().admit(&instrument, module, &labels) {
            dropped(pid, module, refused.reason());
            continue;
        }
        let owned: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, (*v).to_owned()))
            .collect();
        match instrument {
            Instrument::Histogram(m, v) => metrics::histogram!(m, owned).record(v),
            Instrument::Counter(m, v) => metrics::counter!(m, owned).increment(v),
            Instrument::Gauge(m, v) => metrics::gauge!(m, owned).set(v),
        }
    }
}

/// A guest event (or part of one) was dropped for `reason`: counted (a drop past a module's
/// share of series with the module's label too, so the operator sees which module), and
/// warned of at most once a second per module so that a guest can neither flood the log nor
/// hide another module's drops behind its own.
pub(crate) fn dropped(pid: crate::Pid, module: &str, reason: &'static str) {
    if enabled() {
        if reason == series::MODULE_SERIES_LIMIT {
            metrics::counter!(
                "otter_telemetry_dropped_total",
                "reason" => reason,
                "module" => module.to_owned()
            )
            .increment(1);
        } else {
            metrics::counter!("otter_telemetry_dropped_total", "reason" => reason).increment(1);
        }
    }
    static DROPS: OnceLock<throttle::Throttle> = OnceLock::new();
    if let Some(suppressed) = DROPS
        .get_or_init(Default::default)
        .allow(module, std::time::Instant::now())
    {
        tracing::warn!(
            target: "otter::telemetry",
            pid,
            module,
            reason,
            suppressed,
            "guest telemetry dropped"
        );
    }
}

/// Apply `limits` to the series guests create from now on.
pub(crate) fn set_series_limits(limits: SeriesLimits) {
    series().set_limits(limits);
}

/// Each module that created metric series, with how many.
pub(crate) fn series_by_module() -> Vec<(String, usize)> {
    series().by_module()
}

/// Whether a guest's `exception` event may be a warning now: at most one a second per
/// module; `Some(n)` with the `n` held back since the last.
pub(crate) fn exception_warning(module: &str) -> Option<u64> {
    static EXCEPTIONS: OnceLock<throttle::Throttle> = OnceLock::new();
    EXCEPTIONS
        .get_or_init(Default::default)
        .allow(module, std::time::Instant::now())
}

/// Whether that a process of `module` was left without a granted directory, because guests
/// hold all the files they may, may be a warning now: at most one a second per module; `Some(n)`
/// with the `n` held back since the last.
pub(crate) fn spent_files_warning(module: &str) -> Option<u64> {
    static SPENT: OnceLock<throttle::Throttle> = OnceLock::new();
    SPENT
        .get_or_init(Default::default)
        .allow(module, std::time::Instant::now())
}

/// Record from now on (the recorder is installed).
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

//! Telemetry: guests' events (Erlang's `:telemetry`) as `tracing` events and metrics, the
//! host's own per-process figures, and the Prometheus endpoint that serves them.
//!
//! Metrics go through the `metrics` facade. Nothing is recorded until [`Metrics::install`]
//! installs the node's Prometheus recorder (`otter run` does when the manifest has
//! `[telemetry] prometheus`): until then a guest event costs its `tracing` event only, and
//! a callback costs one relaxed atomic load.
//!
//! # Naming
//!
//! A guest event's segments make a metric stem: each segment lowercased, any character other
//! than `a-z`, `0-9`, `_` made `_`, the segments joined by `_`. Then:
//! - `[..., :start]` makes no metric;
//! - `[..., :stop]` with `duration` (ns) → histogram `<prefix>_duration_seconds`, so a span
//!   `[:orders, :flush]` gives `orders_flush_duration_seconds`;
//! - `[..., :exception]` → counter `<prefix>_exceptions_total`;
//! - any other event `E`: measurement `duration` (ns) → histogram `E_duration_seconds`; one
//!   whose name ends in `_total` → counter `E_<name>` (non-negative integers only); any
//!   other → gauge `E_<name>` (its last value).
//!
//! Guest metrics are labelled `module` and, for a registered process, `name`; never by pid,
//! so the number of series stays that of the application's shape. By default at most
//! [`MAX_GUEST_SERIES`] distinct series come from guests, and at most a quarter of them from
//! one module (its processes together, whatever their version), so that one module cannot
//! starve the others ([`SeriesLimits`], set with [`Metrics::set_series_limits`]); past a
//! module's share its new series are dropped and counted in
//! `otter_telemetry_dropped_total{reason="module_series_limit",module}`, past the node's
//! budget in `otter_telemetry_dropped_total{reason="series_limit"}`. A name is one kind
//! of metric (the first measurement decides; a histogram also owns its `_bucket`, `_sum`
//! and `_count` names), and `otter_` names are the host's: a guest's would-be `otter_x` is
//! `guest_otter_x`. So a guest cannot make the scrape invalid.
//!
//! The host's own figures, all prefixed `otter_`: `otter_processes`, `otter_guest_files`
//! and `otter_guest_files_max` (descriptors guests hold open, and may),
//! `otter_module_processes{module}`, `otter_module_mailbox_messages{module}`,
//! `otter_mailbox_length{name,module}`, `otter_process_memory_bytes{name,module}` and
//! `otter_process_restarts{name,module}` for registered processes (read at scrape time; the
//! first [`MAX_REGISTERED_SHOWN`] by name, the number left out in
//! `otter_registered_processes_omitted`),
//! `otter_callback_duration_seconds{module,callback}` (histogram),
//! `otter_supervisor_restarts_total{supervisor,child}`,
//! `otter_guest_series{module}` (the series each module created) and
//! `otter_telemetry_dropped_total{reason}`.

mod endpoint;
mod figures;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use crate::metering::{MAX_GUEST_SERIES, SeriesLimits};
pub use endpoint::PrometheusEndpoint;
pub use figures::MAX_REGISTERED_SHOWN;

use crate::Node;

/// The installed recorder's handle, once installed.
static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Histogram buckets for every `*_duration_seconds`: 1 µs to 10 s.
const BUCKETS: &[f64] = &[
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets (they are kept one by one
/// until then).
const UPKEEP: Duration = Duration::from_secs(1);

/// Why the recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Another `metrics` recorder is installed in this program.
    #[error("another metrics recorder is installed")]
    RecorderTaken,
}

/// The node's metrics: the Prometheus recorder installed as the program's `metrics`
/// recorder.
///
/// ```no_run
/// # async fn demo(node: otter::Node) -> Result<(), Box<dyn std::error::Error>> {
/// use otter::telemetry::{Metrics, PrometheusEndpoint};
/// let metrics = Metrics::install()?;
/// let endpoint = PrometheusEndpoint::bind("127.0.0.1:9568".parse()?).await?;
/// tokio::spawn(endpoint.serve(node.clone(), metrics));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Install the recorder (the first call; later calls return the same one). From then on
    /// guest events and the host's figures are recorded.
    ///
    /// # Errors
    /// [`TelemetryError::RecorderTaken`] if the program installed another recorder.
    pub fn install() -> Result<Metrics, TelemetryError> {
        if let Some(m) = INSTALLED.get() {
            return Ok(m.clone());
        }
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = INSTALLED.get() {
            return Ok(m.clone());
        }
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), BUCKETS)
            .map_err(|_| TelemetryError::RecorderTaken)?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| TelemetryError::RecorderTaken)?;
        let upkeep = handle.clone();
        // A thread, not a task: the recorder may be installed outside any runtime.
        std::thread::Builder::new()
            .name("otter-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                }
            })
            .map_err(|_| TelemetryError::RecorderTaken)?;
        let m = Metrics { handle };
        let _ = INSTALLED.set(m.clone());
        crate::metering::enable();
        Ok(m)
    }

    /// How many metric series guests may create, from now on (default
    /// [`SeriesLimits::default`]). The limits are the recorder's, so they hold for every node
    /// in the program. Series already created stay, even past a lowered limit.
    pub fn set_series_limits(&self, limits: SeriesLimits) {
        crate::metering::set_series_limits(limits);
    }

    /// The metrics in Prometheus' text format, with `node`'s figures read now. It takes no
    /// runtime and may block on locks for a while on a large node: a server calls it from a
    /// blocking thread (both `Metrics` and `Node` are `Send + Sync`).
    pub fn render(&self, node: &Node) -> String {
        let mut out = self.handle.render();
        figures::render_node(node, &mut out);
        out
    }
}

/// `render` is meant to run on a blocking thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Metrics>();
    send_sync::<Node>();
};

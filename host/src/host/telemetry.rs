//! `otter:genserver/telemetry`: a guest's `:telemetry` events become `tracing` events (target
//! `otter::telemetry`, with pid, module and registered name) and metrics (see
//! [`crate::telemetry`]).
//!
//! Every part of an event is bounded; an event over a bound is dropped whole, and a
//! measurement that is not a finite number is dropped alone, each with a throttled warning.
//! An `exception` event is a warning, at most one a second per module (the rest at debug).
//! Nothing a guest passes here fails or ends it.

use std::fmt;

use crate::bindings::otter::genserver::telemetry::{Host, Measurement};
use crate::guest_text::one_line;
use crate::host::ProcessCtx;

/// The most segments in an event name.
const MAX_SEGMENTS: usize = 8;
/// The longest segment, measurement name or metadata key, in bytes.
const MAX_KEY: usize = 64;
/// The most measurements, and the most metadata entries, in one event.
const MAX_ENTRIES: usize = 16;
/// The longest metadata value, in bytes.
const MAX_VALUE: usize = 256;

/// Why an event is refused whole, if it is.
fn refusal(
    event: &[String],
    measurements: &[(String, Measurement)],
    metadata: &[(String, String)],
) -> Option<&'static str> {
    if event.is_empty() || event.len() > MAX_SEGMENTS {
        return Some("segments");
    }
    if event.iter().any(|s| s.is_empty() || s.len() > MAX_KEY) {
        return Some("segment_size");
    }
    if measurements.len() > MAX_ENTRIES || metadata.len() > MAX_ENTRIES {
        return Some("entries");
    }
    if measurements
        .iter()
        .any(|(k, _)| k.is_empty() || k.len() > MAX_KEY)
        || metadata
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > MAX_KEY || v.len() > MAX_VALUE)
    {
        return Some("entry_size");
    }
    None
}

impl Host for ProcessCtx {
    fn execute(
        &mut self,
        event: Vec<String>,
        measurements: Vec<(String, Measurement)>,
        metadata: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        if let Some(reason) = refusal(&event, &measurements, &metadata) {
            crate::metering::dropped(self.pid, &self.module, reason);
            return Ok(());
        }
        let mut numbers: Vec<(&str, f64)> = Vec::with_capacity(measurements.len());
        for (k, m) in &measurements {
            let v = match *m {
                Measurement::Int(i) => i as f64,
                Measurement::Float(f) => f,
            };
            if v.is_finite() {
                numbers.push((k, v));
            } else {
                crate::metering::dropped(self.pid, &self.module, "not_finite");
            }
        }
        let name = self
            .node
            .entry(self.pid)
            .and_then(|e| e.name.lock().ok().and_then(|n| n.clone()));
        let segments: Vec<&str> = event.iter().map(String::as_str).collect();
        let (pid, module) = (self.pid, &*self.module);
        let shown = Shown {
            event: &segments,
            measurements: &measurements,
            metadata: &metadata,
        };
        let name_field = name.as_deref().map(|n| one_line(n, MAX_VALUE));
        // A failure is a warning, but at most one a second per module (a guest could
        // otherwise flood the log with them); the rest go to debug and are counted.
        if segments.last() == Some(&"exception")
            && let Some(suppressed) = crate::metering::exception_warning(module)
        {
            tracing::warn!(target: "otter::telemetry", pid, module, name = name_field.as_deref(), suppressed, "{shown}");
        } else {
            tracing::debug!(target: "otter::telemetry", pid, module, name = name_field.as_deref(), "{shown}");
        }
        crate::metering::record(pid, module, name.as_deref(), &segments, &numbers);
        Ok(())
    }
}

/// An event as one log line: `orders.flush.stop duration=12 kind="error"`, each guest string
/// escaped by [`one_line`] (so it cannot forge a line) and already bounded.
struct Shown<'a> {
    event: &'a [&'a str],
    measurements: &'a [(String, Measurement)],
    metadata: &'a [(String, String)],
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.event.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&one_line(s, MAX_KEY))?;
        }
        for (k, m) in self.measurements {
            match m {
                Measurement::Int(i) => write!(f, " {}={i}", one_line(k, MAX_KEY))?,
                Measurement::Float(x) => write!(f, " {}={x}", one_line(k, MAX_KEY))?,
            }
        }
        for (k, v) in self.metadata {
            write!(f, " {}={:?}", one_line(k, MAX_KEY), one_line(v, MAX_VALUE))?;
        }
        Ok(())
    }
}

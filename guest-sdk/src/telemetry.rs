//! Telemetry events, as Erlang's `:telemetry`: the host turns them into `tracing` events and
//! metrics (a Prometheus endpoint serves them when the manifest has `[telemetry]
//! prometheus`).
//!
//! ```no_run
//! use otter_guest::telemetry;
//!
//! // One event with numbers and metadata.
//! telemetry::execute(&["orders", "submit"], &[("queued", 12.into())], &[("client", "a")]);
//!
//! // A span: `[orders, flush, start]`, then `[orders, flush, stop]` with its duration, or
//! // `[orders, flush, exception]` if the work returns an error. The host makes the
//! // histogram `orders_flush_duration_seconds` from the stop events.
//! let written: Result<usize, String> =
//!     telemetry::span(&["orders", "flush"], &[("table", "orders")], || Ok(42));
//! ```
//!
//! Times are nanoseconds from [`crate::clock`]. The host bounds every part of an event (8
//! segments of 64 bytes, 16 measurements, 16 metadata entries, values of 256 bytes) and
//! drops an event over a bound with a warning; it never fails the caller. How events become
//! metrics is in the README's Telemetry section.

use std::fmt::Display;

use crate::imports::clock;
use crate::imports::telemetry as host;

/// A measurement's value: an integer or a float. A float that is NaN or infinite is dropped
/// by the host.
#[derive(Debug, Clone, Copy)]
pub enum Measurement {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

/// Same integer, or same float bits (so a NaN equals itself: a recording compares).
impl PartialEq for Measurement {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Measurement::Int(a), Measurement::Int(b)) => a == b,
            (Measurement::Float(a), Measurement::Float(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for Measurement {}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl From<$t> for Measurement {
            fn from(v: $t) -> Self {
                Measurement::Int(i64::from(v))
            }
        }
    )*};
}
ints!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Measurement {
    /// Saturates at `i64::MAX`.
    fn from(v: u64) -> Self {
        Measurement::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Measurement {
    /// Saturates at `i64::MAX`.
    fn from(v: usize) -> Self {
        Measurement::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Measurement {
    fn from(v: f64) -> Self {
        Measurement::Float(v)
    }
}

impl From<f32> for Measurement {
    fn from(v: f32) -> Self {
        Measurement::Float(f64::from(v))
    }
}

impl From<Measurement> for host::Measurement {
    fn from(m: Measurement) -> Self {
        match m {
            Measurement::Int(i) => host::Measurement::Int(i),
            Measurement::Float(f) => host::Measurement::Float(f),
        }
    }
}

/// Emit one event (`:telemetry.execute/3`): its name as segments, its measurements, its
/// metadata. The host adds the pid, module and registered name.
pub fn execute(event: &[&str], measurements: &[(&str, Measurement)], metadata: &[(&str, &str)]) {
    let event: Vec<String> = event.iter().map(|s| (*s).to_owned()).collect();
    send(&event, measurements, metadata);
}

fn send(event: &[String], measurements: &[(&str, Measurement)], metadata: &[(&str, &str)]) {
    let measurements: Vec<(String, host::Measurement)> = measurements
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    let metadata: Vec<(String, String)> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    host::execute(event, &measurements, &metadata);
}

/// Run `work` inside a span (`:telemetry.span/3`) and return what it returned.
///
/// Emits `event ++ [start]` with `monotonic_time` and `system_time`, then either
/// `event ++ [stop]` with `duration` and `monotonic_time` when `work` returns `Ok`, or
/// `event ++ [exception]` with `duration` and `monotonic_time` and the metadata `kind =
/// "error"` and `reason` (the error, displayed) when it returns `Err`. Every event carries
/// `metadata`. Times are nanoseconds.
///
/// If `work` panics, the process traps (a panic ends a process, as a raise ends an Erlang
/// one), so no `stop` or `exception` event is emitted: the process's exit is the record.
pub fn span<T, E: Display>(
    event: &[&str],
    metadata: &[(&str, &str)],
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let mut name: Vec<String> = event.iter().map(|s| (*s).to_owned()).collect();
    name.push("start".to_owned());
    let start = clock::monotonic_time();
    send(
        &name,
        &[
            ("monotonic_time", start.into()),
            ("system_time", clock::system_time().into()),
        ],
        metadata,
    );
    let result = work();
    let end = clock::monotonic_time();
    let timing = [
        ("duration", end.saturating_sub(start).into()),
        ("monotonic_time", end.into()),
    ];
    name.pop();
    match &result {
        Ok(_) => {
            name.push("stop".to_owned());
            send(&name, &timing, metadata);
        }
        Err(e) => {
            name.push("exception".to_owned());
            let reason = e.to_string();
            let mut meta = metadata.to_vec();
            meta.push(("kind", "error"));
            meta.push(("reason", &reason));
            send(&name, &timing, &meta);
        }
    }
    result
}

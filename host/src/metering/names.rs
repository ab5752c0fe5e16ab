//! How a guest's event becomes metric names.

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
}

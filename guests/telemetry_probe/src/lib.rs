//! A test guest for `telemetry`: a span around work that succeeds or fails, an event of any
//! shape, and the attacks a hostile guest could make on the import.

use std::time::Duration;

use otter_guest::telemetry::{self, Measurement};
use otter_guest::{GenServer, Init, Reply, ReplyTo, clock};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Probe;

/// A measurement as a client writes it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Value {
    Int(i64),
    Float(f64),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    /// A span named `event` around work that waits `sleep_ms`, then succeeds or fails.
    Span {
        event: Vec<String>,
        sleep_ms: u32,
        fail: bool,
    },
    /// One event, as given.
    Execute {
        event: Vec<String>,
        measurements: Vec<(String, Value)>,
        metadata: Vec<(String, String)>,
    },
    /// Attacks on the import.
    Hostile(Attack),
    Ping,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Attack {
    /// A segment of 1 MiB.
    HugeSegment,
    /// 100,000 segments.
    ManySegments,
    /// 20,000 metadata entries and as many measurements.
    ManyEntries,
    /// A metadata value of 1 MiB.
    HugeValue,
    /// NaN, infinities and one good gauge in one event.
    NotFinite,
    /// This many distinct events, each with a gauge.
    ManyEvents(u32),
}

impl GenServer for Probe {
    type Args = ();
    type Call = Call;
    type Reply = String;
    type Cast = ();
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(Probe)
    }

    fn handle_call(&mut self, req: Call, _from: ReplyTo) -> Reply<String> {
        Reply::ok(match req {
            Call::Span {
                event,
                sleep_ms,
                fail,
            } => {
                let event: Vec<&str> = event.iter().map(String::as_str).collect();
                let r = telemetry::span(&event, &[("table", "orders")], || {
                    clock::sleep(Duration::from_millis(sleep_ms.into()));
                    if fail { Err("disk full") } else { Ok(()) }
                });
                match r {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("failed: {e}"),
                }
            }
            Call::Execute {
                event,
                measurements,
                metadata,
            } => {
                let event: Vec<&str> = event.iter().map(String::as_str).collect();
                let measurements: Vec<(&str, Measurement)> = measurements
                    .iter()
                    .map(|(k, v)| {
                        let m = match v {
                            Value::Int(i) => Measurement::Int(*i),
                            Value::Float(f) => Measurement::Float(*f),
                        };
                        (k.as_str(), m)
                    })
                    .collect();
                let metadata: Vec<(&str, &str)> = metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                telemetry::execute(&event, &measurements, &metadata);
                "ok".to_owned()
            }
            Call::Hostile(attack) => {
                attack.run();
                "ok".to_owned()
            }
            Call::Ping => "pong".to_owned(),
        })
    }
}

impl Attack {
    fn run(self) {
        match self {
            Attack::HugeSegment => {
                let big = "x".repeat(1 << 20);
                telemetry::execute(&["hostile", &big], &[("n", 1.into())], &[]);
            }
            Attack::ManySegments => {
                let many = vec!["s"; 100_000];
                telemetry::execute(&many, &[("n", 1.into())], &[]);
            }
            Attack::ManyEntries => {
                let keys: Vec<String> = (0..20_000).map(|i| format!("k{i}")).collect();
                let metadata: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
                let measurements: Vec<(&str, Measurement)> =
                    keys.iter().map(|k| (k.as_str(), 1.into())).collect();
                telemetry::execute(&["hostile", "entries"], &measurements, &metadata);
            }
            Attack::HugeValue => {
                let big = "v".repeat(1 << 20);
                telemetry::execute(&["hostile", "value"], &[("n", 1.into())], &[("k", &big)]);
            }
            Attack::NotFinite => telemetry::execute(
                &["hostile", "numbers"],
                &[
                    ("nan", f64::NAN.into()),
                    ("inf", f64::INFINITY.into()),
                    ("minus_inf", f64::NEG_INFINITY.into()),
                    ("good", 7.into()),
                ],
                &[],
            ),
            Attack::ManyEvents(n) => {
                for i in 0..n {
                    let name = format!("e{i}");
                    telemetry::execute(&["hostile", "invented", &name], &[("g", 1.into())], &[]);
                }
            }
        }
    }
}

otter_guest::export_genserver!(Probe);

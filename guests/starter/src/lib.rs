//! A server for the tests of starting processes and of time: it starts processes with
//! `start`, `start_link` and `start_monitor` (whatever options a test gives), sleeps, reads
//! the clocks and arms `start_timer` timers, and keeps a log of the infos it receives, in
//! order, which a test reads back with `log`. Every answer is text, so that a test can
//! match the SDK's own error values.

use std::collections::BTreeMap;
use std::time::Duration;

use otter_guest::{GenServer, Info, Init, NoReply, Overflow, Reply, ReplyTo, StartOptions, clock};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Starter {
    events: Vec<String>,
}

/// Any term a test passes through as a child's args.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// How the started process is tied to the starter.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Bond {
    #[default]
    None,
    Link,
    Monitor,
}

#[derive(Deserialize)]
struct Start {
    module: String,
    #[serde(default = "empty")]
    args: Value,
    #[serde(default)]
    bond: Bond,
    name: Option<String>,
    /// `[registry, key]`.
    via: Option<(String, Value)>,
    start_timeout_ms: Option<u64>,
    hibernate_after_ms: Option<u64>,
    /// `[bound, "reject" | "drop_oldest" | "drop_newest"]`.
    mailbox: Option<(u32, String)>,
}

/// No args given: an empty map, which a server with optional settings reads as defaults.
fn empty() -> Value {
    Value::Map(BTreeMap::new())
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    Ping,
    Log,
    Start(Start),
    /// Start (unlinked) processes of this module until one fails or `max` have started;
    /// answer how many started and the error.
    StartLoop {
        module: String,
        max: u32,
    },
    TrapExit(bool),
    /// Sleep this many ms; answer the ms the monotonic clock saw pass.
    Sleep(u64),
    /// Both clocks, in ns: `<monotonic> <system since the epoch>`.
    Now,
    StartTimer {
        ms: u32,
        msg: String,
    },
    CancelTimer(u64),
}

impl Start {
    fn run(self) -> String {
        let mut opts = StartOptions::new();
        if let Some(n) = self.name {
            opts = opts.name(n);
        }
        if let Some((registry, key)) = &self.via {
            opts = opts.via(registry, key);
        }
        if let Some(ms) = self.start_timeout_ms {
            opts = opts.start_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = self.hibernate_after_ms {
            opts = opts.hibernate_after(Duration::from_millis(ms));
        }
        if let Some((bound, policy)) = &self.mailbox {
            let policy = match policy.as_str() {
                "drop_oldest" => Overflow::DropOldest,
                "drop_newest" => Overflow::DropNewest,
                _ => Overflow::Reject,
            };
            opts = opts.mailbox(*bound, policy);
        }
        let started = match self.bond {
            Bond::None => {
                otter_guest::start(&self.module, &self.args, opts).map(|p| p.map(|p| p.to_string()))
            }
            Bond::Link => otter_guest::start_link(&self.module, &self.args, opts)
                .map(|p| p.map(|p| p.to_string())),
            Bond::Monitor => otter_guest::start_monitor(&self.module, &self.args, opts)
                .map(|p| p.map(|(p, m)| format!("{p}:{m}"))),
        };
        match started {
            Ok(Some(pid)) => format!("ok:{pid}"),
            Ok(None) => "ignore".into(),
            Err(e) => format!("error:{e:?}"),
        }
    }
}

impl GenServer for Starter {
    type Args = ();
    type Call = Request;
    type Reply = Value;
    type Cast = ();
    type Info = String;
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(Starter::default())
    }

    fn handle_call(&mut self, request: Request, _from: ReplyTo) -> Reply<Value> {
        let text = match request {
            Request::Ping => "pong".into(),
            Request::Log => {
                let events = self.events.iter().cloned().map(Value::Str).collect();
                return Reply::ok(Value::List(events));
            }
            Request::Start(start) => start.run(),
            Request::StartLoop { module, max } => {
                let mut started = 0u32;
                let mut error = String::from("none");
                while started < max {
                    match otter_guest::start(&module, &empty(), StartOptions::new()) {
                        Ok(_) => started += 1,
                        Err(e) => {
                            error = format!("{e:?}");
                            break;
                        }
                    }
                }
                format!("{started} {error}")
            }
            Request::TrapExit(on) => otter_guest::trap_exit(on).to_string(),
            Request::Sleep(ms) => {
                let t0 = clock::monotonic_time();
                clock::sleep(Duration::from_millis(ms));
                (clock::monotonic_time() - t0).as_millis().to_string()
            }
            Request::Now => {
                let mono = clock::monotonic_time().as_nanos();
                let sys = clock::system_time()
                    .duration_since(std::time::SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                format!("{mono} {sys}")
            }
            Request::StartTimer { ms, msg } => {
                otter_guest::start_timer(otter_guest::self_pid(), &msg, ms).to_string()
            }
            Request::CancelTimer(t) => format!("{:?}", otter_guest::cancel_timer(t)),
        };
        Reply::ok(Value::Str(text))
    }

    fn handle_info(&mut self, msg: Info<String>) -> NoReply {
        let event = match msg {
            Info::Message(text) => format!("info:{text}"),
            Info::Timeout => "timeout".into(),
            Info::Down {
                monitor,
                pid,
                reason,
            } => format!("down:{pid}:{monitor}:{reason}"),
            Info::Exit { from, reason } => format!("exit:{from}:{reason}"),
            Info::Timer { timer, msg } => format!("timer:{timer}:{msg}"),
        };
        self.events.push(event);
        NoReply::ok()
    }
}

otter_guest::export_genserver!(Starter);

//! A hostile server for the sandbox tests. It hands the host the deepest, largest and most
//! malformed terms it can, through every import, after first filling its own wasm stack to
//! a chosen depth, so that the host's frames for the import run at the bottom of the fiber
//! stack. It also answers `count`, so that live neighbours can show their state survived.
//!
//! Terms are built as raw CBOR and passed through the WIT bindings directly, since the SDK's
//! typed API only produces well-formed terms.

use otter_guest::bindings::otter::genserver::spawn::StartOptions;
use otter_guest::bindings::otter::genserver::types::{Dest, ExitReason, ReplyTo as WitReplyTo};
use otter_guest::bindings::otter::genserver::{clock, log, process, registry, spawn, supervisor};
use otter_guest::{GenServer, Init, NoReply, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Hostile {
    count: u64,
    /// Callers of `hold` not yet answered.
    held: Vec<ReplyTo>,
    /// Set by `poison`: restoring this state fails with this text as the error.
    #[serde(default, deserialize_with = "refuse_poison")]
    poison: Option<String>,
}

/// Refuse a state that carries poison, with the poison as the error's text.
fn refuse_poison<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) => Err(serde::de::Error::custom(text)),
        None => Ok(None),
    }
}

/// A term of `depth` nested one-element arrays (or maps, `{0: ...}`, or maps whose one key
/// is the next level, `{...: 0}`) around a text string of `leaf` bytes.
#[derive(Deserialize, Clone, Copy)]
struct Shape {
    depth: u32,
    #[serde(default)]
    leaf: u32,
    #[serde(default)]
    maps: bool,
    #[serde(default)]
    keys: bool,
}

impl Shape {
    fn term(self) -> Vec<u8> {
        let mut t = Vec::with_capacity(self.depth as usize * 2 + self.leaf as usize + 5);
        for _ in 0..self.depth {
            if self.keys {
                t.push(0xa1);
            } else if self.maps {
                t.extend_from_slice(&[0xa1, 0x00]);
            } else {
                t.push(0x81);
            }
        }
        t.push(0x7a);
        t.extend_from_slice(&self.leaf.to_be_bytes());
        t.resize(t.len() + self.leaf as usize, b'a');
        if self.keys {
            // Each level's value, after its key.
            t.resize(t.len() + self.depth as usize, 0x00);
        }
        t
    }
}

/// A host import to call with a hostile term.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "snake_case")]
enum Attack {
    /// Nothing: only the descent (to find the deepest the wasm stack allows).
    Nothing,
    Register(Shape),
    Unregister(Shape),
    Lookup(Shape),
    Dispatch(Shape),
    SendVia(Shape),
    CastVia(Shape),
    CallVia(Shape),
    MonitorVia(Shape),
    SendAfterVia(Shape),
    /// `send` to itself with the term as the message.
    SendSelf(Shape),
    /// `start-child` with the term as args, under this dynamic supervisor.
    StartChild(String, Shape),
    /// `exit` to an unknown pid with `shutdown-with(term)`.
    ExitWith(Shape),
    /// `which-children`, `count-children` and `terminate-child` of a `via` supervisor.
    SupervisorVia(Shape),
    /// `reply` to a caller that is gone, with the term.
    ReplyGone(Shape),
    /// A log line of this many bytes with as many fields.
    Log(u32),
    /// `register` with a local name of this many bytes.
    Name(u32),
    /// `whereis` of a name of this many bytes.
    Whereis(u32),
    /// `panicking` with a message of this many bytes (without then trapping).
    Panicking(u32),
    /// `start-monitor` of a `probe` with the term as args (then stopped: a monitor of it).
    Start(Shape),
    /// `start` of a `probe` with the term as its `via` key.
    StartVia(Shape),
    /// `start` of a module whose name has this many bytes.
    Module(u32),
    /// `start-timer` to a `via` destination with the term as key and message.
    StartTimerVia(Shape),
    /// Both clocks and a `sleep(0)`.
    Clock,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Count,
    /// Descend this many wasm frames, then make the attack; the reply says how it went.
    Deep(u32, Attack),
    /// Answer with this term (through `reply`, raw).
    ReplyWith(Shape),
    /// Stop with `shutdown-with(term)`.
    StopWith(Shape),
    /// Answer only at the next `release`.
    Hold,
    /// Answer, then hibernate (the state, held callers included, is serialized).
    Hibernate,
    /// Answer every held caller; reply how many there were.
    Release,
    /// Do this `n` times in one callback, with terms of `size` bytes; reply how many
    /// succeeded.
    Flood(Flood, u32, u32),
    /// Keep this text as poison and hibernate: waking fails with the text as its error.
    Poison(String),
    /// Call `hold` on the named server (so this process waits inside a callback, its fiber
    /// suspended in the `call` import), then reply with the count and that answer.
    Relay(String),
}

/// What a flood repeats: each holds host memory the guest's own memory limit does not count.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Flood {
    /// `send` to itself.
    SendSelf,
    /// `monitor` itself.
    Monitor,
    /// `register` in the duplicate registry `HostileDup`, the term as key and value.
    RegisterDup,
    /// `send-after` to itself, an hour away.
    Timers,
    /// A log line with `n` fields of `size` bytes each (once).
    LogFields,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cast {
    Count,
}

const REGISTRY: &str = "Hostile";

fn via(shape: Shape) -> Dest {
    Dest::Via((REGISTRY.to_owned(), shape.term()))
}

impl Attack {
    /// Build the attack's inputs, so that the descent's bottom only calls the import.
    fn prepare(self) -> impl FnMut() -> String {
        let term = match &self {
            Attack::Register(s)
            | Attack::Unregister(s)
            | Attack::Lookup(s)
            | Attack::Dispatch(s)
            | Attack::SendSelf(s)
            | Attack::StartChild(_, s)
            | Attack::ReplyGone(s)
            | Attack::Start(s)
            | Attack::StartVia(s)
            | Attack::ExitWith(s) => s.term(),
            _ => Vec::new(),
        };
        let dest = match &self {
            Attack::SendVia(s)
            | Attack::CastVia(s)
            | Attack::CallVia(s)
            | Attack::MonitorVia(s)
            | Attack::SendAfterVia(s)
            | Attack::StartTimerVia(s)
            | Attack::SupervisorVia(s) => Some(via(*s)),
            _ => None,
        };
        let text = match &self {
            Attack::Log(n)
            | Attack::Name(n)
            | Attack::Whereis(n)
            | Attack::Panicking(n)
            | Attack::Module(n) => "\u{1b}x\n".repeat(*n as usize / 3),
            _ => String::new(),
        };
        let fields: Vec<(String, String)> = match &self {
            Attack::Log(n) => (0..*n / 64)
                .map(|i| (i.to_string(), text.clone()))
                .take(64)
                .collect(),
            _ => Vec::new(),
        };
        let sup = match &self {
            Attack::StartChild(name, _) => Dest::Name(name.clone()),
            _ => Dest::Pid(0),
        };
        let none = StartOptions {
            name: None,
            via: None,
            start_timeout_ms: None,
            hibernate_after_ms: None,
            mailbox: None,
        };
        let by_key = StartOptions {
            via: Some((REGISTRY.to_owned(), term.clone())),
            ..none.clone()
        };
        move || match &self {
            Attack::Nothing => "ok".into(),
            Attack::Start(_) => format!("{:?}", spawn::start_monitor("probe", &term, &none)),
            Attack::StartVia(_) => format!("{:?}", spawn::start("probe", &[0xa0], &by_key)),
            Attack::Module(_) => format!("{:?}", spawn::start(&text, &[0xa0], &none)),
            Attack::StartTimerVia(_) => {
                format!(
                    "{:?}",
                    process::start_timer(dest.as_ref().unwrap(), &term, 1)
                )
            }
            Attack::Clock => {
                let t = (clock::monotonic_time(), clock::system_time());
                clock::sleep(0);
                format!("{t:?}")
            }
            Attack::Register(_) => format!("{:?}", registry::register(REGISTRY, &term, &term)),
            Attack::Unregister(_) => format!("{:?}", registry::unregister(REGISTRY, &term)),
            Attack::Lookup(_) => {
                format!("{:?}", registry::lookup(REGISTRY, &term).map(|v| v.len()))
            }
            Attack::Dispatch(_) => format!("{:?}", registry::dispatch(REGISTRY, &term, &term)),
            Attack::SendVia(_) => format!("{:?}", process::send(dest.as_ref().unwrap(), &[0xf6])),
            Attack::CastVia(_) => {
                process::cast(dest.as_ref().unwrap(), &[0xf6]);
                "ok".into()
            }
            Attack::CallVia(_) => format!(
                "{:?}",
                process::call(dest.as_ref().unwrap(), &[0xf6], Some(100)).map(|r| r.len())
            ),
            Attack::MonitorVia(_) => format!("{:?}", process::monitor(dest.as_ref().unwrap())),
            Attack::SendAfterVia(_) => {
                format!(
                    "{:?}",
                    process::send_after(dest.as_ref().unwrap(), &[0xf6], 1)
                )
            }
            Attack::SendSelf(_) => {
                format!("{:?}", process::send(&Dest::Pid(process::self_()), &term))
            }
            Attack::StartChild(..) => format!("{:?}", supervisor::start_child(&sup, &term)),
            Attack::ExitWith(_) => {
                process::exit(u64::MAX, &ExitReason::ShutdownWith(term.clone()));
                "ok".into()
            }
            Attack::Log(_) => {
                log::log(log::Level::Info, &text, &fields);
                "ok".into()
            }
            Attack::Name(_) => format!("{:?}", process::register(&text)),
            Attack::Whereis(_) => format!("{:?}", process::whereis(&text)),
            Attack::Panicking(_) => {
                process::panicking(&text);
                "ok".into()
            }
            Attack::SupervisorVia(_) => {
                let sup = dest.as_ref().unwrap();
                format!(
                    "{:?} {:?} {:?} {:?}",
                    supervisor::which_children(sup).map(|c| c.len()),
                    supervisor::count_children(sup).map(|c| c.active),
                    supervisor::terminate_child(sup, 1),
                    supervisor::get_childspec(sup, &supervisor::ChildRef::Id(text.clone()))
                        .map(|c| c.id.len())
                )
            }
            Attack::ReplyGone(_) => {
                let to = WitReplyTo {
                    server: process::self_(),
                    caller: 0,
                    tag: u64::MAX,
                };
                process::reply(to, &term);
                "ok".into()
            }
        }
    }
}

/// Descend `depth` wasm frames, then run `bottom`. Each frame keeps its depth live across the
/// call and adds to the result, and calls the next through a pointer read with a volatile
/// load, so the compiler can neither turn the recursion into a loop nor drop frames. Nothing
/// goes through the guest's own stack in linear memory (64 KiB, which would run out long
/// before a large wasm stack does): a frame is wasm locals only.
#[inline(never)]
fn descend(depth: u32, bottom: &mut dyn FnMut()) -> u64 {
    if depth == 0 {
        bottom();
        return 0;
    }
    // SAFETY: a read of a static, which is always initialised.
    let next = unsafe { core::ptr::read_volatile(&raw const DESCEND) };
    next(depth - 1, bottom) + u64::from(depth)
}

/// [`descend`], for its frames to call without the compiler seeing the recursion.
static DESCEND: fn(u32, &mut dyn FnMut()) -> u64 = descend;

impl GenServer for Hostile {
    type Args = ();
    type Call = Call;
    type Reply = String;
    type Cast = Cast;
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(Hostile::default())
    }

    fn handle_call(&mut self, request: Call, from: ReplyTo) -> Reply<String> {
        match request {
            Call::Count => Reply::ok(self.count.to_string()),
            Call::Deep(depth, attack) => {
                let mut attack = attack.prepare();
                let mut outcome = String::new();
                descend(depth, &mut || outcome = attack());
                Reply::ok(outcome)
            }
            Call::ReplyWith(shape) => {
                let to = WitReplyTo {
                    server: from.server,
                    caller: from.caller,
                    tag: from.tag,
                };
                process::reply(to, &shape.term());
                Reply::NoReply(otter_guest::Next::None)
            }
            Call::Hold => {
                self.held.push(from);
                Reply::NoReply(otter_guest::Next::None)
            }
            Call::Hibernate => Reply::Reply("ok".into(), otter_guest::Next::Hibernate),
            Call::Release => {
                let held = std::mem::take(&mut self.held);
                for &from in &held {
                    otter_guest::reply(from, &"released");
                }
                Reply::ok(held.len().to_string())
            }
            Call::Relay(name) => {
                let answer: Result<String, _> =
                    otter_guest::call_timeout(name.as_str(), &"hold", 60_000);
                Reply::ok(format!("{} {answer:?}", self.count))
            }
            Call::Flood(what, n, size) => {
                let term = Shape {
                    depth: 0,
                    leaf: size.saturating_sub(5),
                    maps: false,
                    keys: false,
                }
                .term();
                let me = Dest::Pid(process::self_());
                let mut ok = 0u32;
                if let Flood::LogFields = what {
                    let text = "x".repeat(size as usize);
                    let fields: Vec<(String, String)> =
                        (0..n).map(|_| (String::new(), text.clone())).collect();
                    log::log(log::Level::Info, "fields", &fields);
                    return Reply::ok(n.to_string());
                }
                for _ in 0..n {
                    let done = match what {
                        Flood::SendSelf => process::send(&me, &term).is_ok(),
                        Flood::Monitor => {
                            process::monitor(&me);
                            true
                        }
                        Flood::RegisterDup => {
                            registry::register("HostileDup", &term, &term).is_ok()
                        }
                        Flood::Timers => {
                            process::send_after(&me, &term, 3_600_000);
                            true
                        }
                        Flood::LogFields => unreachable!(),
                    };
                    ok += u32::from(done);
                }
                Reply::ok(ok.to_string())
            }
            Call::Poison(text) => {
                self.poison = Some(text);
                Reply::Reply("poisoned".into(), otter_guest::Next::Hibernate)
            }
            Call::StopWith(shape) => Reply::StopReply(
                otter_guest::ExitReason::ShutdownWith(shape.term()),
                "bye".into(),
            ),
        }
    }

    fn handle_cast(&mut self, request: Cast) -> NoReply {
        match request {
            Cast::Count => self.count += 1,
        }
        NoReply::ok()
    }
}

otter_guest::export_genserver!(Hostile);

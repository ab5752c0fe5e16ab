//! A server for the tests: each request exercises one piece of GenServer behaviour (trap,
//! panic, runaway loop, deferred and late replies, calls to other servers, continue, idle
//! timeout, hibernate, monitors, registries, supervisors), and it keeps a log of what it saw, in order, which a test
//! reads back with `log`. With an `observer` name it also casts each event there, so events
//! that happen while it stops (terminate) can be read from another process.

use otter_guest::{
    CallError, CodeChange, ExitReason, GenServer, Info, Init, Next, NoReply, Reply, ReplyTo, log,
    registry, supervisor,
};
use serde::{Deserialize, Serialize};

mod protocol;

use protocol::*;

#[derive(Serialize, Deserialize, Default)]
struct Probe {
    events: Vec<String>,
    counter: u64,
    deferred: Vec<(u64, u64, u64)>,
    observer: Option<String>,
    /// Prefixes the events cast to the observer (`tag:event`), to tell siblings apart.
    tag: Option<String>,
    /// Bytes allocated on request; lost when the process restarts.
    ballast: Vec<u8>,
    /// A state with `"tripwire": true` panics while it is restored (`replace_state`).
    #[serde(default)]
    tripwire: Tripwire,
}

/// Always `false` once restored: restoring `true` panics.
#[derive(Serialize, Default)]
struct Tripwire(bool);

impl<'de> Deserialize<'de> for Tripwire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? {
            panic!("tripwire restored");
        }
        Ok(Tripwire(false))
    }
}

/// Recurses until the wasm stack overflows. Its frames hold only wasm locals, so the stack
/// that runs out is the engine's, not the guest's own stack in linear memory.
#[allow(unconditional_recursion)]
fn deep(n: u64) -> u64 {
    deep(n.wrapping_add(1)).rotate_left(3) ^ n
}

/// `Request::Big`: send `s` by `op`.
fn big(op: &str, to: DestArg, s: String) -> Value {
    if op == "cast" {
        otter_guest::cast(to.dest(), &Cast::Record(s));
        return ok();
    }
    let msg = Msg::Text(s);
    match (op, to) {
        ("call", to) => otter_guest::call::<_, Value>(to.dest(), &msg).unwrap_or_else(call_error),
        ("send", to) => otter_guest::send(to.dest(), &msg).map_or_else(call_error, |()| ok()),
        ("send_after", to) => {
            otter_guest::send_after(to.dest(), &msg, 0);
            ok()
        }
        ("dispatch", DestArg::Via(reg, key)) => {
            registry::dispatch(&reg, &key, &msg).map_or_else(text, |n| int(n.into()))
        }
        ("start_child", to) => match supervisor::start_child(to.dest(), &msg) {
            Ok(p) => p.map_or(Value::Null, int),
            Err(e) => text(e),
        },
        _ => text("unknown op"),
    }
}

impl Probe {
    fn event(&mut self, e: String) {
        if let Some(obs) = &self.observer {
            let text = match &self.tag {
                Some(tag) => format!("{tag}:{e}"),
                None => e.clone(),
            };
            otter_guest::cast(obs.as_str(), &Cast::Record(text));
        }
        self.events.push(e);
    }
}

fn ok() -> Value {
    Value::Str("ok".into())
}

impl GenServer for Probe {
    type Args = Args;
    type Call = Request;
    type Reply = Value;
    type Cast = Cast;
    type Info = Msg;
    type Continue = String;
    const VSN: &'static str = if cfg!(feature = "v2") { "2" } else { "1" };

    fn init(args: Args) -> Init<Self, String> {
        let mut probe = Probe {
            observer: args.observer,
            tag: args.tag,
            ..Probe::default()
        };
        probe.event("init".into());
        if let Some((reg, key)) = &args.register {
            let tag = Value::Str(probe.tag.clone().unwrap_or_default());
            if let Err(e) = registry::register(reg, key, &tag) {
                return Init::Stop(ExitReason::Error(e.to_string()));
            }
        }
        if args.trap_exit {
            otter_guest::trap_exit(true);
        }
        if let Some(line) = &args.say {
            log::info(line, &[("said", line)]);
        }
        match args.mode {
            Mode::Ok => Init::ok(probe),
            Mode::Ignore => Init::Ignore,
            Mode::Stop(why) => Init::Stop(ExitReason::Error(why)),
            Mode::Panic => panic!("init panicked on purpose"),
            Mode::Loop =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            Mode::LoopWhileNamed(name) => {
                while otter_guest::whereis(&name).is_some() {}
                Init::ok(probe)
            }
            Mode::Continue(tag) => Init::Ok(probe, Next::Continue(tag)),
            Mode::Timeout(ms) => Init::Ok(probe, Next::Timeout(ms)),
            Mode::Hibernate => Init::Ok(probe, Next::Hibernate),
            Mode::SendSelfThenContinue => {
                let me = otter_guest::self_pid();
                let _ = otter_guest::send(me, &Msg::Text("from-init".into()));
                Init::Ok(probe, Next::Continue("after-init".into()))
            }
        }
    }

    fn handle_call(&mut self, request: Request, from: ReplyTo) -> Reply<Value, String> {
        match request {
            Request::Ping => Reply::ok(Value::Str("pong".into())),
            Request::Vsn => Reply::ok(Value::Str(Self::VSN.into())),
            Request::Log => Reply::ok(Value::List(
                self.events.iter().cloned().map(Value::Str).collect(),
            )),
            Request::Add(n) => {
                self.counter += n;
                Reply::ok(Value::Int(self.counter as i64))
            }
            Request::Panic => panic!("handle_call panicked on purpose"),
            Request::Trap => trap(),
            Request::Loop =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            Request::Sleep(ms) => {
                otter_guest::clock::sleep(core::time::Duration::from_millis(ms.into()));
                Reply::ok(Value::Str("slept".into()))
            }
            Request::Spin(n) => {
                let mut x = 0u64;
                for i in 0..n {
                    x = core::hint::black_box(x.wrapping_add(i));
                }
                Reply::ok(Value::Int((x & 0xffff) as i64))
            }
            Request::Defer => {
                self.event("defer".into());
                self.deferred.push((from.server, from.caller, from.tag));
                Reply::NoReply(Next::None)
            }
            Request::Release(text) => {
                for (server, caller, tag) in self.deferred.drain(..) {
                    otter_guest::reply(
                        ReplyTo {
                            server,
                            caller,
                            tag,
                        },
                        &Value::Str(text.clone()),
                    );
                }
                Reply::ok(ok())
            }
            Request::DeferFor(ms) => {
                let late = Msg::Late {
                    server: from.server,
                    caller: from.caller,
                    tag: from.tag,
                };
                otter_guest::send_after(otter_guest::self_pid(), &late, ms);
                Reply::NoReply(Next::None)
            }
            Request::ReplyInline => {
                otter_guest::reply(from, &Value::Str("inline".into()));
                Reply::NoReply(Next::None)
            }
            Request::Call {
                to,
                request,
                timeout,
            } => {
                let r: Result<Value, CallError> = match timeout {
                    Some(ms) => otter_guest::call_timeout(to.dest(), &request, ms),
                    None => otter_guest::call(to.dest(), &request),
                };
                Reply::ok(r.unwrap_or_else(call_error))
            }
            Request::CallSelf => {
                let r: Result<Value, CallError> =
                    otter_guest::call(otter_guest::self_pid(), &Value::Str("ping".into()));
                Reply::ok(r.unwrap_or_else(call_error))
            }
            Request::StopReply(reason) => Reply::StopReply(reason.reason(), ok()),
            Request::Stop(reason) => Reply::Stop(reason.reason()),
            Request::ReplyContinue(tag) => {
                let me = otter_guest::self_pid();
                let _ = otter_guest::send(me, &Msg::Text(format!("sent-before-{tag}")));
                Reply::Reply(ok(), Next::Continue(tag))
            }
            Request::Timeout(ms) => Reply::Reply(ok(), Next::Timeout(ms)),
            Request::Hibernate => Reply::Reply(ok(), Next::Hibernate),
            Request::SendSelf(text) => {
                let me = otter_guest::self_pid();
                let _ = otter_guest::send(me, &Msg::Text(text));
                Reply::ok(ok())
            }
            Request::CastSelf(text) => {
                otter_guest::cast(otter_guest::self_pid(), &Cast::Record(text));
                Reply::ok(ok())
            }
            Request::Monitor(target) => {
                Reply::ok(Value::Int(otter_guest::monitor(target.dest()) as i64))
            }
            Request::Demonitor(r) => {
                otter_guest::demonitor(r);
                Reply::ok(ok())
            }
            Request::DemonitorThen { monitor, timeout } => {
                otter_guest::demonitor(monitor);
                let next = match timeout {
                    Some(ms) => Next::Timeout(ms),
                    None => Next::Hibernate,
                };
                Reply::Reply(ok(), next)
            }
            Request::Register(name) => Reply::ok(match otter_guest::register(&name) {
                Ok(()) => ok(),
                Err(e) => Value::Str(e.to_string()),
            }),
            Request::Whereis(name) => Reply::ok(match otter_guest::whereis(&name) {
                Some(p) => Value::Int(p as i64),
                None => Value::Null,
            }),
            Request::QueueLen => Reply::ok(Value::Int(otter_guest::message_queue_len() as i64)),
            Request::SelfPid => Reply::ok(Value::Int(otter_guest::self_pid() as i64)),
            Request::Alloc(n) => {
                self.ballast = vec![1u8; n as usize];
                Reply::ok(Value::Int(self.ballast.len() as i64))
            }
            Request::ForeignGrow(pages) => Reply::ok(Value::Bool(foreign_grow(pages as usize))),
            Request::SendAfter { ms, msg } => {
                let t = otter_guest::send_after(otter_guest::self_pid(), &Msg::Text(msg), ms);
                Reply::ok(Value::Int(t as i64))
            }
            Request::CancelTimer(t) => Reply::ok(match otter_guest::cancel_timer(t) {
                Some(left) => Value::Int(left as i64),
                None => Value::Null,
            }),
            Request::Link(pid) => {
                otter_guest::link(pid);
                Reply::ok(ok())
            }
            Request::Unlink(pid) => {
                otter_guest::unlink(pid);
                Reply::ok(ok())
            }
            Request::TrapExit(on) => Reply::ok(Value::Bool(otter_guest::trap_exit(on))),
            Request::Exit { pid, reason } => {
                otter_guest::exit(pid, reason.reason());
                Reply::ok(ok())
            }
            Request::RegRegister {
                registry,
                key,
                value,
            } => Reply::ok(match registry::register(&registry, &key, &value) {
                Ok(()) => ok(),
                Err(e) => text(e),
            }),
            Request::RegUnregister { registry, key } => {
                Reply::ok(match registry::unregister(&registry, &key) {
                    Ok(()) => ok(),
                    Err(e) => text(e),
                })
            }
            Request::RegLookup { registry, key } => {
                Reply::ok(match registry::lookup::<_, Value>(&registry, &key) {
                    Ok(entries) => Value::List(
                        entries
                            .into_iter()
                            .map(|(p, v)| Value::List(vec![int(p), v]))
                            .collect(),
                    ),
                    Err(e) => text(e),
                })
            }
            Request::Dispatch {
                registry,
                key,
                text: t,
            } => Reply::ok(match registry::dispatch(&registry, &key, &Msg::Text(t)) {
                Ok(n) => int(n.into()),
                Err(e) => text(e),
            }),
            Request::CastTo { to, text: t } => {
                otter_guest::cast(to.dest(), &Cast::Record(t));
                Reply::ok(ok())
            }
            Request::SendTo { to, text: t } => {
                Reply::ok(match otter_guest::send(to.dest(), &Msg::Text(t)) {
                    Ok(()) => ok(),
                    Err(e) => call_error(e),
                })
            }
            Request::StartChild { sup, args } => {
                Reply::ok(match supervisor::start_child(sup.dest(), &args) {
                    Ok(Some(pid)) => int(pid),
                    Ok(None) => Value::Null,
                    Err(e) => text(e),
                })
            }
            Request::TerminateChild { sup, pid } => {
                Reply::ok(match supervisor::terminate_child(sup.dest(), pid) {
                    Ok(()) => ok(),
                    Err(e) => text(e),
                })
            }
            Request::WhichChildren(sup) => {
                Reply::ok(match supervisor::which_children(sup.dest()) {
                    Ok(rows) => Value::List(
                        rows.into_iter()
                            .map(|c| {
                                map(vec![
                                    ("id", Value::Str(c.id)),
                                    ("pid", c.pid.map_or(Value::Null, int)),
                                    ("module", Value::Str(c.module)),
                                    ("supervisor", Value::Bool(c.supervisor)),
                                    ("restarts", int(c.restarts.into())),
                                ])
                            })
                            .collect(),
                    ),
                    Err(e) => text(e),
                })
            }
            Request::CountChildren(sup) => {
                Reply::ok(match supervisor::count_children(sup.dest()) {
                    Ok(c) => map(vec![
                        ("specs", int(c.specs.into())),
                        ("active", int(c.active.into())),
                        ("supervisors", int(c.supervisors.into())),
                        ("workers", int(c.workers.into())),
                    ]),
                    Err(e) => text(e),
                })
            }
            Request::GetChildspec { sup, child } => {
                let child: supervisor::ChildRef = match child {
                    Value::Str(id) => supervisor::ChildRef::Id(id),
                    Value::Int(pid) => supervisor::ChildRef::Pid(pid as u64),
                    _ => return Reply::ok(text("child: an id or a pid")),
                };
                Reply::ok(match supervisor::get_childspec(sup.dest(), child) {
                    Ok(s) => map(vec![
                        ("id", Value::Str(s.id)),
                        ("module", s.module.map_or(Value::Null, Value::Str)),
                        (
                            "args",
                            s.args.map_or(Value::Null, |a| {
                                otter_guest::decode(&a).unwrap_or(Value::Null)
                            }),
                        ),
                        (
                            "restart",
                            Value::Str(format!("{:?}", s.restart).to_lowercase()),
                        ),
                        (
                            "shutdown",
                            match s.shutdown {
                                supervisor::Shutdown::Timeout(d) => int(d.as_millis() as u64),
                                other => Value::Str(format!("{other:?}")),
                            },
                        ),
                        ("name", s.name.map_or(Value::Null, Value::Str)),
                    ]),
                    Err(e) => text(e),
                })
            }
            Request::Big { op, to, len } => Reply::ok(big(&op, to, "x".repeat(len as usize))),
            Request::BigReply(len) => Reply::ok(Value::Str("x".repeat(len as usize))),
            Request::PanicWith(message) => panic!("{message}"),
            Request::Overflow => Reply::ok(int(deep(0))),
            Request::Burst { to, steps } => {
                for step in steps {
                    match step {
                        Step::Send(t) => {
                            let _ = otter_guest::send(to, &Msg::Text(t));
                        }
                        Step::Cast(t) => otter_guest::cast(to, &Cast::Record(t)),
                        Step::Exit(reason) => otter_guest::exit(to, reason.reason()),
                    }
                }
                Reply::ok(ok())
            }
            Request::Timers { n, ms, to, text } => {
                for _ in 0..n {
                    otter_guest::send_after(to.dest(), &Msg::Text(text.clone()), ms);
                }
                Reply::ok(int(n.into()))
            }
        }
    }

    fn handle_cast(&mut self, request: Cast) -> NoReply<String> {
        match request {
            Cast::Record(text) => {
                self.event(format!("cast:{text}"));
                NoReply::ok()
            }
            Cast::Panic => panic!("handle_cast panicked on purpose"),
            Cast::Stop(reason) => NoReply::Stop(reason.reason()),
        }
    }

    /// Migrates as `extra` ([`Upgrade`]) says, and logs `code_change <old>-><new>`.
    fn code_change(change: CodeChange<'_>) -> Result<Self, String> {
        let how: Upgrade = change.extra().unwrap_or_default();
        let mut probe: Probe = change.old_state()?;
        let old_vsn = change.old_vsn();
        match how {
            Upgrade::Ok => {}
            Upgrade::Error(why) => return Err(why),
            Upgrade::Trap => trap(),
            Upgrade::Loop =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            Upgrade::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(core::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            Upgrade::FailTag(tag) if probe.tag.as_deref() == Some(tag.as_str()) => {
                return Err(format!("refused for tag {tag}"));
            }
            Upgrade::FailTag(_) => {}
        }
        probe.event(format!("code_change {old_vsn}->{}", Self::VSN));
        Ok(probe)
    }

    fn handle_info(&mut self, msg: Info<Msg>) -> NoReply<String> {
        match msg {
            Info::Message(Msg::Text(text)) => self.event(format!("info:{text}")),
            Info::Message(Msg::Late {
                server,
                caller,
                tag,
            }) => {
                self.event("late-reply".into());
                otter_guest::reply(
                    ReplyTo {
                        server,
                        caller,
                        tag,
                    },
                    &Value::Str("late".into()),
                );
            }
            Info::Timeout => self.event("timeout".into()),
            Info::Down { pid, reason, .. } => self.event(format!("down:{pid}:{reason}")),
            Info::Exit { from, reason } => self.event(format!("exit:{from}:{reason}")),
            Info::Timer { timer, .. } => self.event(format!("timer:{timer}")),
        }
        NoReply::ok()
    }

    fn handle_continue(&mut self, tag: String) -> NoReply<String> {
        self.event(format!("continue:{tag}"));
        // `chain-N` continues N more times before yielding to the mailbox.
        if let Some(n) = tag
            .strip_prefix("chain-")
            .and_then(|n| n.parse::<u32>().ok())
            && n > 0
        {
            return NoReply::NoReply(Next::Continue(format!("chain-{}", n - 1)));
        }
        NoReply::ok()
    }

    fn terminate(&mut self, reason: ExitReason) {
        log::debug("terminating", &[("reason", &reason.to_string())]);
        self.event(format!("terminate:{reason}"));
    }
}

otter_guest::export_genserver!(Probe);

/// A wasm `unreachable` trap (natively, where unit tests run, an abort).
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// See [`Request::ForeignGrow`]: whether `pages` wasm pages grown outside the heap keep their
/// bytes while the heap grows.
#[cfg(target_arch = "wasm32")]
fn foreign_grow(pages: usize) -> bool {
    const WASM_PAGE: usize = 65536;
    let old = core::arch::wasm32::memory_grow(0, pages);
    if old == usize::MAX {
        return false;
    }
    let (start, len) = (old * WASM_PAGE, pages * WASM_PAGE);
    // SAFETY: the pages were just grown and nothing else knows of them.
    let grown = unsafe { core::slice::from_raw_parts_mut(start as *mut u8, len) };
    grown.fill(0xa5);
    let heap = vec![0x5a_u8; 4 * len];
    let kept = grown.iter().all(|&b| b == 0xa5);
    kept && heap.iter().all(|&b| b == 0x5a)
}

/// A native build (the unit tests) has no linear memory to grow.
#[cfg(not(target_arch = "wasm32"))]
fn foreign_grow(_pages: usize) -> bool {
    false
}

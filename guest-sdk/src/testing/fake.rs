//! The host's imports, faked: each function records what the callback asked for and answers
//! from the test's script or a small model (names, timers, registries) kept per thread.
//!
//! Every function here has the signature of its generated counterpart in
//! `crate::bindings::otter::genserver`, so `crate::imports` can swap one for the other.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{HostCall, LogLevel, Term};
use crate::bindings::otter::genserver::types as wit;
use crate::types::{CallError, Dest, ExitReason, Pid, ReplyTo, WitReason};

/// A scripted answer to `call`.
pub(super) type CallAnswer = Box<dyn FnMut(&Dest, &Term) -> Result<Term, CallError>>;
/// A scripted answer to `spawn::start`, `start-link` and `start-monitor`.
pub(super) type StartAnswer =
    Box<dyn FnMut(&str, &Term) -> Result<Option<Pid>, crate::spawn::StartError>>;
/// A scripted answer to `supervisor::start-child`.
pub(super) type StartChildAnswer =
    Box<dyn FnMut(&Dest, &Term) -> Result<Option<Pid>, crate::supervisor::SupervisorError>>;

/// A registry entry list's place: (registry, key as CBOR).
type RegistryKey = (String, Vec<u8>);

/// What the fake host knows on this thread.
pub(super) struct Fake {
    pub(super) record: Vec<HostCall>,
    pub(super) self_pid: Pid,
    pub(super) message_queue_len: u32,
    pub(super) trap_exit: bool,
    pub(super) names: BTreeMap<String, Pid>,
    /// Pending timers and their delays (what `cancel-timer` reports as left).
    pub(super) timers: BTreeMap<u64, u32>,
    pub(super) next_ref: u64,
    /// (registry, key) → entries, in registration order.
    pub(super) registries: BTreeMap<RegistryKey, Vec<(Pid, Vec<u8>)>>,
    pub(super) on_call: Option<CallAnswer>,
    pub(super) on_start_child: Option<StartChildAnswer>,
    pub(super) on_start: Option<StartAnswer>,
    /// The fake monotonic clock, in nanoseconds: moved by `sleep` and `testing::advance`.
    pub(super) monotonic_ns: u64,
    /// What the system clock read when the monotonic clock read 0, in nanoseconds since the
    /// Unix epoch.
    pub(super) system_base_ns: u64,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            record: Vec::new(),
            self_pid: super::SELF_PID,
            message_queue_len: 0,
            trap_exit: false,
            names: BTreeMap::new(),
            timers: BTreeMap::new(),
            next_ref: 1,
            registries: BTreeMap::new(),
            on_call: None,
            on_start_child: None,
            on_start: None,
            monotonic_ns: 0,
            system_base_ns: super::SYSTEM_TIME_BASE_NS,
        }
    }
}

thread_local! {
    static FAKE: RefCell<Fake> = RefCell::new(Fake::default());
}

/// Run `f` on this thread's fake host.
pub(super) fn with<T>(f: impl FnOnce(&mut Fake) -> T) -> T {
    FAKE.with(|fake| f(&mut fake.borrow_mut()))
}

fn record(call: HostCall) {
    with(|fake| fake.record.push(call));
}

fn new_ref() -> u64 {
    with(|fake| {
        let r = fake.next_ref;
        fake.next_ref += 1;
        r
    })
}

fn dest(to: &wit::Dest) -> Dest {
    match to {
        wit::Dest::Pid(p) => Dest::Pid(*p),
        wit::Dest::Name(n) => Dest::Name(n.clone()),
        wit::Dest::Via((registry, key)) => Dest::Via(registry.clone(), key.clone()),
    }
}

fn call_error_to_wit(e: CallError) -> wit::CallError {
    match e {
        CallError::Timeout => wit::CallError::Timeout,
        CallError::NoProc => wit::CallError::Noproc,
        CallError::CallingSelf => wit::CallError::CallingSelf,
        CallError::Exited(r) => wit::CallError::Exited(r.to_wit()),
        CallError::Badarg(m) | CallError::BadReply(m) => wit::CallError::Badarg(m),
        CallError::Registry(e) => wit::CallError::Registry(registry_error_to_wit(e)),
        CallError::Busy => wit::CallError::Busy,
    }
}

fn registry_error_to_wit(e: crate::registry::RegistryError) -> wit::RegistryError {
    use crate::registry::RegistryError as E;
    match e {
        E::UnknownRegistry(r) => wit::RegistryError::UnknownRegistry(r),
        E::AlreadyRegistered(p) => wit::RegistryError::AlreadyRegistered(p),
        E::NotUnique(r) | E::BadValue(r) => wit::RegistryError::NotUnique(r),
    }
}

/// The `process` interface.
pub(crate) mod process {
    use super::*;

    pub(crate) fn self_() -> Pid {
        with(|fake| fake.self_pid)
    }

    pub(crate) fn send(to: &wit::Dest, msg: &[u8]) -> Result<(), wit::CallError> {
        let to = dest(to);
        let known = match &to {
            Dest::Name(n) => with(|fake| fake.names.contains_key(n)),
            _ => true,
        };
        record(HostCall::Send {
            to,
            msg: Term::from_bytes(msg),
        });
        if known {
            Ok(())
        } else {
            Err(wit::CallError::Noproc)
        }
    }

    pub(crate) fn call(
        to: &wit::Dest,
        request: &[u8],
        timeout_ms: Option<u32>,
    ) -> Result<Vec<u8>, wit::CallError> {
        let to = dest(to);
        let request = Term::from_bytes(request);
        record(HostCall::Call {
            to: to.clone(),
            request: request.clone(),
            timeout_ms,
        });
        // The answer runs outside the borrow, so that it may itself log or record.
        let Some(mut answer) = with(|fake| fake.on_call.take()) else {
            return Err(wit::CallError::Noproc);
        };
        let result = answer(&to, &request);
        with(|fake| {
            fake.on_call.get_or_insert(answer);
        });
        result
            .map(|t| t.into_bytes())
            .map_err(super::call_error_to_wit)
    }

    pub(crate) fn cast(to: &wit::Dest, msg: &[u8]) {
        record(HostCall::Cast {
            to: dest(to),
            msg: Term::from_bytes(msg),
        });
    }

    pub(crate) fn reply(to: wit::ReplyTo, msg: &[u8]) {
        record(HostCall::Reply {
            to: ReplyTo::from_wit(to),
            msg: Term::from_bytes(msg),
        });
    }

    pub(crate) fn send_after(to: &wit::Dest, msg: &[u8], ms: u32) -> u64 {
        let timer = new_ref();
        with(|fake| fake.timers.insert(timer, ms));
        record(HostCall::SendAfter {
            to: dest(to),
            msg: Term::from_bytes(msg),
            ms,
            timer,
        });
        timer
    }

    pub(crate) fn start_timer(to: &wit::Dest, msg: &[u8], ms: u32) -> u64 {
        let timer = new_ref();
        with(|fake| fake.timers.insert(timer, ms));
        record(HostCall::StartTimer {
            to: dest(to),
            msg: Term::from_bytes(msg),
            ms,
            timer,
        });
        timer
    }

    pub(crate) fn cancel_timer(timer: u64) -> Option<u32> {
        record(HostCall::CancelTimer { timer });
        with(|fake| fake.timers.remove(&timer))
    }

    pub(crate) fn register(name: &str) -> Result<(), wit::RegisterError> {
        record(HostCall::Register {
            name: name.to_owned(),
        });
        with(|fake| {
            let me = fake.self_pid;
            if let Some(&holder) = fake.names.get(name) {
                return Err(wit::RegisterError::AlreadyRegistered(holder));
            }
            if let Some((mine, _)) = fake.names.iter().find(|(_, p)| **p == me) {
                return Err(wit::RegisterError::AlreadyNamed(mine.clone()));
            }
            fake.names.insert(name.to_owned(), me);
            Ok(())
        })
    }

    pub(crate) fn unregister() {
        record(HostCall::Unregister);
        with(|fake| {
            let me = fake.self_pid;
            fake.names.retain(|_, p| *p != me);
        });
    }

    pub(crate) fn whereis(name: &str) -> Option<Pid> {
        with(|fake| fake.names.get(name).copied())
    }

    pub(crate) fn monitor(target: &wit::Dest) -> u64 {
        let monitor = new_ref();
        record(HostCall::Monitor {
            target: dest(target),
            monitor,
        });
        monitor
    }

    pub(crate) fn demonitor(monitor: u64) {
        record(HostCall::Demonitor { monitor });
    }

    pub(crate) fn message_queue_len() -> u32 {
        with(|fake| fake.message_queue_len)
    }

    pub(crate) fn link(target: Pid) {
        record(HostCall::Link { target });
    }

    pub(crate) fn unlink(target: Pid) {
        record(HostCall::Unlink { target });
    }

    pub(crate) fn exit(target: Pid, reason: &wit::ExitReason) {
        record(HostCall::Exit {
            target,
            reason: ExitReason::from_wit(reason.clone()),
        });
    }

    pub(crate) fn trap_exit(enable: bool) -> bool {
        record(HostCall::TrapExit { enable });
        with(|fake| std::mem::replace(&mut fake.trap_exit, enable))
    }

    #[expect(dead_code, reason = "natively the test harness reports panics itself")]
    pub(crate) fn panicking(message: &str) -> String {
        format!("panic: {message}")
    }

    #[expect(dead_code, reason = "natively the test harness reports panics itself")]
    pub(crate) fn terminated_after_panic() {}
}

/// The `registry` interface: every registry exists and allows duplicate keys.
pub(crate) mod registry {
    use super::*;

    pub(crate) fn register(
        registry: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), wit::RegistryError> {
        record(HostCall::RegistryRegister {
            registry: registry.to_owned(),
            key: Term::from_bytes(key),
            value: Term::from_bytes(value),
        });
        with(|fake| {
            let me = fake.self_pid;
            fake.registries
                .entry((registry.to_owned(), key.to_vec()))
                .or_default()
                .push((me, value.to_vec()));
        });
        Ok(())
    }

    pub(crate) fn unregister(registry: &str, key: &[u8]) -> Result<(), wit::RegistryError> {
        record(HostCall::RegistryUnregister {
            registry: registry.to_owned(),
            key: Term::from_bytes(key),
        });
        with(|fake| {
            let me = fake.self_pid;
            if let Some(entries) = fake
                .registries
                .get_mut(&(registry.to_owned(), key.to_vec()))
            {
                entries.retain(|(p, _)| *p != me);
            }
        });
        Ok(())
    }

    pub(crate) fn lookup(
        registry: &str,
        key: &[u8],
    ) -> Result<Vec<(Pid, Vec<u8>)>, wit::RegistryError> {
        Ok(with(|fake| {
            fake.registries
                .get(&(registry.to_owned(), key.to_vec()))
                .cloned()
                .unwrap_or_default()
        }))
    }

    pub(crate) fn dispatch(
        registry: &str,
        key: &[u8],
        msg: &[u8],
    ) -> Result<u32, wit::RegistryError> {
        record(HostCall::Dispatch {
            registry: registry.to_owned(),
            key: Term::from_bytes(key),
            msg: Term::from_bytes(msg),
        });
        let reached = with(|fake| {
            fake.registries
                .get(&(registry.to_owned(), key.to_vec()))
                .map_or(0, Vec::len)
        });
        Ok(u32::try_from(reached).unwrap_or(u32::MAX))
    }
}

/// The `supervisor` interface: no supervisor exists unless the test scripts `start-child`;
/// `which-children`, `count-children` and `get-childspec` answer `noproc`.
pub(crate) mod supervisor {
    use super::*;
    pub(crate) use crate::bindings::otter::genserver::supervisor::{
        Child, ChildCounts, ChildRef, ChildSpec, Restart, Shutdown, SupervisorError,
    };

    fn to_wit(e: crate::supervisor::SupervisorError) -> SupervisorError {
        use crate::supervisor::SupervisorError as E;
        match e {
            E::NoProc => SupervisorError::Noproc,
            E::WrongStrategy => SupervisorError::WrongStrategy,
            E::AlreadyStarted(p) => SupervisorError::AlreadyStarted(p),
            E::Failed(m) => SupervisorError::Failed(m),
            E::NotFound => SupervisorError::NotFound,
        }
    }

    pub(crate) fn start_child(
        supervisor: &wit::Dest,
        args: &[u8],
    ) -> Result<Option<Pid>, SupervisorError> {
        let supervisor = dest(supervisor);
        let args = Term::from_bytes(args);
        record(HostCall::StartChild {
            supervisor: supervisor.clone(),
            args: args.clone(),
        });
        let Some(mut answer) = with(|fake| fake.on_start_child.take()) else {
            return Err(SupervisorError::Noproc);
        };
        let result = answer(&supervisor, &args);
        with(|fake| {
            fake.on_start_child.get_or_insert(answer);
        });
        result.map_err(to_wit)
    }

    pub(crate) fn terminate_child(
        supervisor: &wit::Dest,
        child: Pid,
    ) -> Result<(), SupervisorError> {
        record(HostCall::TerminateChild {
            supervisor: dest(supervisor),
            child,
        });
        if with(|fake| fake.on_start_child.is_some()) {
            Ok(())
        } else {
            Err(SupervisorError::Noproc)
        }
    }

    pub(crate) fn which_children(_supervisor: &wit::Dest) -> Result<Vec<Child>, SupervisorError> {
        Err(SupervisorError::Noproc)
    }

    pub(crate) fn count_children(_supervisor: &wit::Dest) -> Result<ChildCounts, SupervisorError> {
        Err(SupervisorError::Noproc)
    }

    pub(crate) fn get_childspec(
        _supervisor: &wit::Dest,
        _child: &ChildRef,
    ) -> Result<ChildSpec, SupervisorError> {
        Err(SupervisorError::Noproc)
    }
}

/// The `spawn` interface: no module is loaded unless the test scripts `start`.
pub(crate) mod spawn {
    use super::*;
    pub(crate) use crate::bindings::otter::genserver::spawn::{
        MailboxBound, Overflow, StartError, StartOptions,
    };
    use crate::testing::StartKind;

    fn start_error_to_wit(e: crate::spawn::StartError) -> StartError {
        use crate::spawn::StartError as E;
        match e {
            E::UnknownModule(m) => StartError::UnknownModule(m),
            E::AlreadyStarted(p) => StartError::AlreadyStarted(p),
            E::Stopped(r) => StartError::Stopped(r.to_wit()),
            E::Timeout => StartError::Timeout,
            E::Badarg(m) => StartError::Badarg(m),
            E::Registry(e) => StartError::Registry(registry_error_to_wit(e)),
            E::SystemLimit => StartError::SystemLimit,
            E::Instantiate(m) => StartError::Instantiate(m),
        }
    }

    fn run(
        kind: StartKind,
        module: &str,
        args: &[u8],
        options: &StartOptions,
    ) -> Result<Option<Pid>, StartError> {
        let args = Term::from_bytes(args);
        record(HostCall::Start {
            kind,
            module: module.to_owned(),
            args: args.clone(),
            options: crate::spawn::StartOptions::from_wit(options),
        });
        let Some(mut answer) = with(|fake| fake.on_start.take()) else {
            return Err(StartError::UnknownModule(module.to_owned()));
        };
        let result = answer(module, &args);
        with(|fake| {
            fake.on_start.get_or_insert(answer);
        });
        result.map_err(start_error_to_wit)
    }

    pub(crate) fn start(
        module: &str,
        args: &[u8],
        options: &StartOptions,
    ) -> Result<Option<Pid>, StartError> {
        run(StartKind::Start, module, args, options)
    }

    pub(crate) fn start_link(
        module: &str,
        args: &[u8],
        options: &StartOptions,
    ) -> Result<Option<Pid>, StartError> {
        run(StartKind::Link, module, args, options)
    }

    pub(crate) fn start_monitor(
        module: &str,
        args: &[u8],
        options: &StartOptions,
    ) -> Result<Option<(Pid, u64)>, StartError> {
        Ok(run(StartKind::Monitor, module, args, options)?.map(|pid| (pid, new_ref())))
    }
}

/// The `clock` interface: a fake clock that moves only when the test or `sleep` moves it.
pub(crate) mod clock {
    use super::*;

    pub(crate) fn monotonic_time() -> u64 {
        with(|fake| fake.monotonic_ns)
    }

    pub(crate) fn system_time() -> u64 {
        with(|fake| fake.system_base_ns.saturating_add(fake.monotonic_ns))
    }

    pub(crate) fn sleep(ms: u32) {
        record(HostCall::Sleep { ms });
        with(|fake| {
            fake.monotonic_ns = fake.monotonic_ns.saturating_add(u64::from(ms) * 1_000_000);
        });
    }
}

/// The `log` interface: recorded, and printed to stderr (which the test harness shows for a
/// failing test).
pub(crate) mod log {
    use super::*;
    pub(crate) use crate::bindings::otter::genserver::log::Level;

    pub(crate) fn log(level: Level, message: &str, fields: &[(String, String)]) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        eprintln!("{level:?} {message} {fields:?}");
        record(HostCall::Log {
            level,
            message: message.to_owned(),
            fields: fields.to_vec(),
        });
    }
}

/// The `sql` interface: no database is granted in a unit test, so `open` fails
/// `not-granted` and no connection exists to call.
pub(crate) mod sql {
    pub(crate) use crate::bindings::otter::genserver::sql::{Error, Rows, Value};

    /// Stands in for the resource; never made.
    pub(crate) enum Connection {}

    impl Connection {
        pub(crate) fn open(name: &str) -> Result<Connection, Error> {
            Err(Error::NotGranted(name.to_owned()))
        }

        pub(crate) fn execute(&self, _: &str, _: &[Value]) -> Result<u64, Error> {
            match *self {}
        }

        pub(crate) fn query(&self, _: &str, _: &[Value]) -> Result<Rows, Error> {
            match *self {}
        }

        pub(crate) fn execute_many(&self, _: &str, _: &[Vec<Value>]) -> Result<u64, Error> {
            match *self {}
        }
    }
}

/// The `telemetry` interface: recorded.
pub(crate) mod telemetry {
    use super::*;
    pub(crate) use crate::bindings::otter::genserver::telemetry::Measurement;

    pub(crate) fn execute(
        event: &[String],
        measurements: &[(String, Measurement)],
        metadata: &[(String, String)],
    ) {
        record(HostCall::Telemetry {
            event: event.to_vec(),
            measurements: measurements
                .iter()
                .map(|(k, m)| {
                    let m = match *m {
                        Measurement::Int(i) => crate::telemetry::Measurement::Int(i),
                        Measurement::Float(f) => crate::telemetry::Measurement::Float(f),
                    };
                    (k.clone(), m)
                })
                .collect(),
            metadata: metadata.to_vec(),
        });
    }
}

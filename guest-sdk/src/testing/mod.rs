//! Unit-testing a server natively: the host's imports go to a recording fake.
//!
//! A guest crate is built for `wasm32-unknown-unknown` to run on Otter, but its callbacks are
//! plain Rust: `cargo test` builds the crate for the machine it runs on, where every host
//! call the SDK makes ([`crate::call`], [`crate::cast`], [`crate::send_after`],
//! [`crate::log`], [`crate::registry`], [`crate::supervisor`], ...) goes to an in-process fake
//! host instead. The fake records what the callbacks asked for ([`take`], [`record`]),
//! answers from a small model (names, timers, registries, shared tables, whose keys it orders
//! by their CBOR bytes rather than the host's term order) and lets a test script the answers
//! that come from other processes ([`on_call`], [`on_start_child`]).
//!
//! A test drives the callbacks directly, or through [`call`], [`cast`] and [`info`], which
//! first round-trip the message through CBOR as the host delivers it (so a misspelt serde
//! name fails the test, not the deployment):
//!
//! ```
//! use otter_guest::testing::{self, HostCall, Term};
//! use otter_guest::{Dest, GenServer, Init, NoReply, Reply, ReplyTo};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Default)]
//! struct Greeter {
//!     greeted: u32,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "snake_case")]
//! enum Req {
//!     Greet(String),
//! }
//!
//! impl GenServer for Greeter {
//!     type Args = ();
//!     type Call = Req;
//!     type Reply = String;
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!
//!     fn init(_: ()) -> Init<Self> {
//!         Init::ok(Greeter::default())
//!     }
//!
//!     fn handle_call(&mut self, req: Req, _from: ReplyTo) -> Reply<String> {
//!         let Req::Greet(who) = req;
//!         self.greeted += 1;
//!         // Ask another server for a title; tell an audit server about it.
//!         let title: String = otter_guest::call("titles", &who).unwrap_or_default();
//!         otter_guest::cast("audit", &("greeted", &who));
//!         Reply::ok(format!("hello, {title}{who}"))
//!     }
//! }
//!
//! // In a guest crate this is `#[test] fn greets_with_a_title() { ... }`.
//! testing::on_call(|to: &Dest, who: String| {
//!     assert_eq!(to, &Dest::from("titles"));
//!     Ok(if who == "ada" { "Countess " } else { "" })
//! });
//! let mut server: Greeter = testing::init(());
//! // What `otter call greeter '{"greet":"ada"}'` sends.
//! let request = std::collections::BTreeMap::from([("greet", "ada")]);
//! let reply = testing::call(&mut server, &request).unwrap();
//! assert!(matches!(reply, Reply::Reply(ref r, _) if r == "hello, Countess ada"));
//! assert_eq!(server.greeted, 1);
//! assert_eq!(
//!     testing::take()[1],
//!     HostCall::Cast { to: "audit".into(), msg: Term::of(&("greeted", "ada")) },
//! );
//! ```
//!
//! The fake is per thread, and the test harness runs each test on its own thread, so tests
//! do not see each other's records; [`reset`] starts over within one test. The process's
//! pid is [`SELF_PID`] unless [`set_self`] says otherwise.
//!
//! This module exists only in a native build; a wasm build talks to the real host.

pub(crate) mod fake;
pub(crate) mod fake_table;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::supervisor::SupervisorError;
use crate::types::{CallError, Dest, ExitReason, Info, MonitorRef, Pid, ReplyTo, TimerRef};
use crate::{GenServer, Init, NoReply, Reply};

/// The pid the fake gives the process under test, until [`set_self`].
pub const SELF_PID: Pid = 1;

/// The caller [`call`] passes to `handle_call`: pid 2, tag 1, this process as the server.
pub fn caller() -> ReplyTo {
    ReplyTo {
        server: fake::with(|f| f.self_pid),
        caller: 2,
        tag: 1,
    }
}

/// A CBOR term as it crossed the fake host: compare it with [`Term::of`], read it with
/// [`Term::decode`].
#[derive(Clone, PartialEq, Eq)]
pub struct Term(Vec<u8>);

impl Term {
    /// The term a value encodes to, as the SDK encodes it for the host.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Term {
        Term(crate::encode(value))
    }

    /// Decode the term as `T`.
    ///
    /// # Errors
    /// Where the bytes and `T` disagree.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        crate::decode(&self.0)
    }

    /// The CBOR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Term {
        Term(bytes.to_vec())
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Term(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

pub use otter_common::LogLevel;

/// One thing a callback asked of the host. Questions that change nothing (`self_pid`,
/// `whereis`, `message_queue_len`, `registry::lookup`, listing children) are answered and
/// not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCall {
    /// [`crate::send`].
    Send {
        /// Destination.
        to: Dest,
        /// Message.
        msg: Term,
    },
    /// [`crate::call`] or [`crate::call_timeout`].
    Call {
        /// Destination.
        to: Dest,
        /// Request.
        request: Term,
        /// `None` for the default (5000 ms).
        timeout_ms: Option<u32>,
    },
    /// [`crate::cast`].
    Cast {
        /// Destination.
        to: Dest,
        /// Request.
        msg: Term,
    },
    /// [`crate::reply`].
    Reply {
        /// The caller answered.
        to: ReplyTo,
        /// The reply.
        msg: Term,
    },
    /// [`crate::send_after`].
    SendAfter {
        /// Destination.
        to: Dest,
        /// Message.
        msg: Term,
        /// Delay.
        ms: u32,
        /// The reference returned.
        timer: TimerRef,
    },
    /// [`crate::start_timer`].
    StartTimer {
        /// Destination.
        to: Dest,
        /// Message.
        msg: Term,
        /// Delay.
        ms: u32,
        /// The reference returned.
        timer: TimerRef,
    },
    /// [`crate::cancel_timer`].
    CancelTimer {
        /// The timer.
        timer: TimerRef,
    },
    /// [`crate::register`].
    Register {
        /// The name.
        name: String,
    },
    /// [`crate::unregister`].
    Unregister,
    /// [`crate::monitor`].
    Monitor {
        /// The monitored process.
        target: Dest,
        /// The reference returned.
        monitor: MonitorRef,
    },
    /// [`crate::demonitor`].
    Demonitor {
        /// The reference.
        monitor: MonitorRef,
    },
    /// [`crate::link`].
    Link {
        /// The other process.
        target: Pid,
    },
    /// [`crate::unlink`].
    Unlink {
        /// The other process.
        target: Pid,
    },
    /// [`crate::exit`].
    Exit {
        /// The target.
        target: Pid,
        /// The reason sent.
        reason: ExitReason,
    },
    /// [`crate::trap_exit`].
    TrapExit {
        /// The new setting.
        enable: bool,
    },
    /// [`crate::registry::register`].
    RegistryRegister {
        /// The registry.
        registry: String,
        /// The key.
        key: Term,
        /// The value.
        value: Term,
    },
    /// [`crate::registry::unregister`].
    RegistryUnregister {
        /// The registry.
        registry: String,
        /// The key.
        key: Term,
    },
    /// [`crate::registry::dispatch`].
    Dispatch {
        /// The registry.
        registry: String,
        /// The key.
        key: Term,
        /// The message.
        msg: Term,
    },
    /// [`crate::supervisor::start_child`].
    StartChild {
        /// The supervisor.
        supervisor: Dest,
        /// The args appended to the template's.
        args: Term,
    },
    /// [`crate::supervisor::terminate_child`].
    TerminateChild {
        /// The supervisor.
        supervisor: Dest,
        /// The child.
        child: Pid,
    },
    /// [`crate::start`], [`crate::start_link`] or [`crate::start_monitor`].
    Start {
        /// Which of the three.
        kind: StartKind,
        /// The module.
        module: String,
        /// The args for its `init`.
        args: Term,
        /// The options given.
        options: crate::StartOptions,
    },
    /// [`crate::clock::sleep`], in whole milliseconds; the fake clock moved that much.
    Sleep {
        /// The milliseconds slept.
        ms: u32,
    },
    /// A log record ([`crate::log`]).
    Log {
        /// Severity.
        level: LogLevel,
        /// Message.
        message: String,
        /// Key/value fields.
        fields: Vec<(String, String)>,
    },
    /// A telemetry event ([`crate::telemetry`]).
    Telemetry {
        /// The event's segments.
        event: Vec<String>,
        /// Its measurements.
        measurements: Vec<(String, crate::telemetry::Measurement)>,
        /// Its metadata.
        metadata: Vec<(String, String)>,
    },
}

/// How a process was started ([`HostCall::Start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// [`crate::start`].
    Start,
    /// [`crate::start_link`].
    Link,
    /// [`crate::start_monitor`].
    Monitor,
}

/// What the fake system clock reads at the start of a test: 2026-01-01T00:00:00Z.
pub const SYSTEM_TIME_BASE_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// Move the fake clocks forward ([`crate::clock::sleep`] moves them too; nothing else does).
pub fn advance(by: std::time::Duration) {
    let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
    fake::with(|f| f.monotonic_ns = f.monotonic_ns.saturating_add(ns));
}

/// Answer every [`crate::start`], [`crate::start_link`] and [`crate::start_monitor`] from
/// now on with `answer(module, args)` (a monitor's reference is made up). Without a script,
/// each fails with [`crate::StartError::UnknownModule`].
pub fn on_start<A: DeserializeOwned>(
    mut answer: impl FnMut(&str, A) -> Result<Option<Pid>, crate::StartError> + 'static,
) {
    fake::with(|f| {
        f.on_start = Some(Box::new(move |module, args| {
            let args = args
                .decode()
                .map_err(|e| crate::StartError::Badarg(e.to_string()))?;
            answer(module, args)
        }));
    });
}

/// Everything recorded on this thread so far, oldest first.
pub fn record() -> Vec<HostCall> {
    fake::with(|f| f.record.clone())
}

/// Everything recorded on this thread so far, oldest first, clearing the record.
pub fn take() -> Vec<HostCall> {
    fake::with(|f| std::mem::take(&mut f.record))
}

/// Forget everything: the record, the script, names, timers, registries, tables, the pid.
pub fn reset() {
    fake::with(|f| *f = fake::Fake::default());
    fake_table::reset();
}

/// The pid [`crate::self_pid`] returns (default [`SELF_PID`]).
pub fn set_self(pid: Pid) {
    fake::with(|f| f.self_pid = pid);
}

/// What [`crate::message_queue_len`] returns (default 0).
pub fn set_message_queue_len(len: u32) {
    fake::with(|f| f.message_queue_len = len);
}

/// Give a name to a pid, as if that process had registered it: [`crate::whereis`] finds it,
/// [`crate::send`] to it succeeds, [`crate::register`] of it fails.
pub fn set_name(name: &str, pid: Pid) {
    fake::with(|f| {
        f.names.insert(name.to_owned(), pid);
    });
}

/// Answer every [`crate::call`] from now on with `answer(destination, request)`. The request
/// is decoded as `Req`; one that does not decode is answered [`CallError::Badarg`], as a
/// server would. Without a script, a call fails with [`CallError::NoProc`].
pub fn on_call<Req, R>(mut answer: impl FnMut(&Dest, Req) -> Result<R, CallError> + 'static)
where
    Req: DeserializeOwned,
    R: Serialize,
{
    fake::with(|f| {
        f.on_call = Some(Box::new(move |to, request| {
            let request = request.decode().map_err(CallError::Badarg)?;
            answer(to, request).map(|r| Term::of(&r))
        }));
    });
}

/// Answer every [`crate::supervisor::start_child`] from now on with `answer(supervisor,
/// args)`; [`crate::supervisor::terminate_child`] then succeeds. Without a script, both fail
/// with [`SupervisorError::NoProc`].
pub fn on_start_child<A: DeserializeOwned>(
    mut answer: impl FnMut(&Dest, A) -> Result<Option<Pid>, SupervisorError> + 'static,
) {
    fake::with(|f| {
        f.on_start_child = Some(Box::new(move |to, args| {
            let args = args
                .decode()
                .map_err(|e| SupervisorError::Failed(format!("badarg: {e}")))?;
            answer(to, args)
        }));
    });
}

/// Run `init` and return the state.
///
/// # Panics
/// If `init` returns anything but [`Init::Ok`].
pub fn init<S: GenServer>(args: S::Args) -> S {
    match S::init(args) {
        Init::Ok(state, _) => state,
        Init::Ignore => panic!("init returned Ignore"),
        Init::Stop(reason) => panic!("init returned Stop({reason})"),
    }
}

/// Encode `request` as the host would deliver it, decode it as the server's `Call` type and
/// run `handle_call` with [`caller`].
///
/// # Errors
/// The decoding error, where the host would answer the caller `badarg`.
pub fn call<S: GenServer, Req: Serialize + ?Sized>(
    server: &mut S,
    request: &Req,
) -> Result<Reply<S::Reply, S::Continue>, String> {
    let request = crate::decode(&crate::encode(request))?;
    Ok(server.handle_call(request, caller()))
}

/// Encode `request` as the host would deliver it, decode it as the server's `Cast` type and
/// run `handle_cast`.
///
/// # Errors
/// The decoding error, where the host would log and drop the cast.
pub fn cast<S: GenServer, M: Serialize + ?Sized>(
    server: &mut S,
    msg: &M,
) -> Result<NoReply<S::Continue>, String> {
    let msg = crate::decode(&crate::encode(msg))?;
    Ok(server.handle_cast(msg))
}

/// Encode `msg` as the host would deliver a plain message, decode it as the server's `Info`
/// type and run `handle_info` with [`Info::Message`].
///
/// # Errors
/// The decoding error, where the host would log and drop the message.
pub fn info<S: GenServer, M: Serialize + ?Sized>(
    server: &mut S,
    msg: &M,
) -> Result<NoReply<S::Continue>, String> {
    let msg = crate::decode(&crate::encode(msg))?;
    Ok(server.handle_info(Info::Message(msg)))
}

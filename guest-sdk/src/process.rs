//! Typed wrappers over the host's `process` interface.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::otter::genserver::types::RegisterError as WitRegisterError;
use crate::imports::process as host;
use crate::types::{
    CallError, Dest, ExitReason, MonitorRef, Pid, RegisterError, ReplyTo, TimerRef, WitReason,
};
use crate::{decode, encode};

/// This process's pid.
pub fn self_pid() -> Pid {
    host::self_()
}

/// Call a server and wait up to 5 seconds for its reply (OTP's default).
///
/// Only this process waits: the host goes on running every other process.
///
/// # Errors
/// [`CallError::Timeout`] (a late reply is dropped), [`CallError::NoProc`],
/// [`CallError::CallingSelf`], [`CallError::Exited`] if the server died first,
/// [`CallError::Badarg`] if it could not decode the request, [`CallError::BadReply`] if the
/// reply does not decode as `R`.
pub fn call<Req: Serialize + ?Sized, R: DeserializeOwned>(
    to: impl Into<Dest>,
    request: &Req,
) -> Result<R, CallError> {
    call_raw(to.into(), request, None)
}

/// [`call`] with a timeout in milliseconds.
///
/// # Errors
/// As [`call`].
pub fn call_timeout<Req: Serialize + ?Sized, R: DeserializeOwned>(
    to: impl Into<Dest>,
    request: &Req,
    timeout_ms: u32,
) -> Result<R, CallError> {
    call_raw(to.into(), request, Some(timeout_ms))
}

fn call_raw<Req: Serialize + ?Sized, R: DeserializeOwned>(
    to: Dest,
    request: &Req,
    timeout_ms: Option<u32>,
) -> Result<R, CallError> {
    let bytes =
        host::call(&to.to_wit(), &encode(request), timeout_ms).map_err(CallError::from_wit)?;
    decode(&bytes).map_err(CallError::BadReply)
}

/// Send a request to a server's `handle_cast`. Never fails, even if nobody is there.
pub fn cast<M: Serialize + ?Sized>(to: impl Into<Dest>, msg: &M) {
    host::cast(&to.into().to_wit(), &encode(msg));
}

/// Send a plain message to a process's `handle_info`.
///
/// # Errors
/// [`CallError::NoProc`] if `to` is a name nobody holds; a dead pid is not an error.
pub fn send<M: Serialize + ?Sized>(to: impl Into<Dest>, msg: &M) -> Result<(), CallError> {
    host::send(&to.into().to_wit(), &encode(msg)).map_err(CallError::from_wit)
}

/// Answer a call that this server (or the one that passed `from` on) left pending.
/// Answering a caller that gave up or died is a no-op.
pub fn reply<R: Serialize + ?Sized>(from: ReplyTo, msg: &R) {
    host::reply(from.to_wit(), &encode(msg));
}

/// Send `msg` to `to`'s `handle_info` after `ms` milliseconds.
pub fn send_after<M: Serialize + ?Sized>(to: impl Into<Dest>, msg: &M, ms: u32) -> TimerRef {
    host::send_after(&to.into().to_wit(), &encode(msg), ms)
}

/// Erlang's `erlang:start_timer`: after `ms` milliseconds `to` receives
/// [`crate::Info::Timer`] with this timer's reference and `msg`, so a server with several
/// timers knows which one fired (and can ignore one it has since replaced). [`cancel_timer`]
/// cancels it. Timers count against the node's `max_timers` as [`send_after`]'s do.
///
/// ```no_run
/// use otter_guest::{Info, TimerRef};
/// // In a callback: retry in one second, remembering which timer is current.
/// let retry: TimerRef = otter_guest::start_timer(otter_guest::self_pid(), &"retry", 1000);
/// // Later, in handle_info:
/// # let info: Info<String> = Info::Timeout;
/// if let Info::Timer { timer, msg } = info {
///     if timer == retry { /* msg == "retry" */ }
/// }
/// ```
pub fn start_timer<M: Serialize + ?Sized>(to: impl Into<Dest>, msg: &M, ms: u32) -> TimerRef {
    host::start_timer(&to.into().to_wit(), &encode(msg), ms)
}

/// Cancel a timer: the milliseconds that were left, or `None` if it already fired.
pub fn cancel_timer(timer: TimerRef) -> Option<u32> {
    host::cancel_timer(timer)
}

/// Register this process under a local name, freed the moment it exits.
///
/// # Errors
/// [`RegisterError::AlreadyRegistered`] with the holder's pid, or
/// [`RegisterError::AlreadyNamed`] if this process has a name already.
pub fn register(name: &str) -> Result<(), RegisterError> {
    host::register(name).map_err(|e| match e {
        WitRegisterError::AlreadyRegistered(p) => RegisterError::AlreadyRegistered(p),
        WitRegisterError::AlreadyNamed(n) => RegisterError::AlreadyNamed(n),
    })
}

/// Remove this process's registered name, if any.
pub fn unregister() {
    host::unregister();
}

/// The pid registered under `name`.
pub fn whereis(name: &str) -> Option<Pid> {
    host::whereis(name)
}

/// Monitor a process: [`crate::Info::Down`] arrives when it exits, at once (`noproc`) if it
/// is not alive.
pub fn monitor(target: impl Into<Dest>) -> MonitorRef {
    host::monitor(&target.into().to_wit())
}

/// Remove a monitor; a `Down` for it that has not been handled is dropped.
pub fn demonitor(monitor: MonitorRef) {
    host::demonitor(monitor);
}

/// How many messages wait in this process's mailbox.
pub fn message_queue_len() -> u32 {
    // Messages handed over in the current batch but not handled yet are still queued.
    host::message_queue_len().saturating_add(crate::export::batch_remaining())
}

/// Link this process with `target`: when either exits abnormally, the other gets an exit
/// signal. Linking a process that is not alive sends this process an exit signal `noproc`.
pub fn link(target: Pid) {
    host::link(target);
}

/// Remove the link with `target`, in both directions.
pub fn unlink(target: Pid) {
    host::unlink(target);
}

/// Send `target` an exit signal. [`ExitReason::Killed`] cannot be trapped and ends the
/// target without `terminate`. [`ExitReason::Normal`] is ignored by a target that does not
/// trap exits. Any other reason ends a target that does not trap exits (without
/// `terminate`), and reaches one that does as [`crate::Info::Exit`].
pub fn exit(target: Pid, reason: ExitReason) {
    host::exit(target, &reason.to_wit());
}

/// Trap exits: exit signals from links (and [`exit`]) arrive as [`crate::Info::Exit`]
/// instead of ending this process. Returns the previous setting.
pub fn trap_exit(enable: bool) -> bool {
    host::trap_exit(enable)
}

//! The `GenServer` trait and what its callbacks return.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CodeChange;
use crate::types::{ExitReason, Info, ReplyTo};

/// What the process does after a callback: wait, time out, hibernate or continue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Next<C = ()> {
    /// Wait for the next message.
    #[default]
    None,
    /// Deliver [`Info::Timeout`] if no message arrives within this many milliseconds.
    /// Any message, signal or call that arrives first cancels it.
    Timeout(u32),
    /// Serialize the state and drop the instance: the process keeps only its state bytes
    /// until the next message re-creates it and restores the state.
    Hibernate,
    /// Run [`GenServer::handle_continue`] with this value before any queued message.
    Continue(C),
}

/// What [`GenServer::init`] returns.
#[derive(Debug)]
pub enum Init<S, C = ()> {
    /// Started with this state; `start` returns the pid.
    Ok(S, Next<C>),
    /// Not started: `start` returns `ignore` and the process exits `normal`.
    Ignore,
    /// Not started: `start` fails with this reason.
    Stop(ExitReason),
}

impl<S, C> Init<S, C> {
    /// Started with this state, waiting for messages.
    pub fn ok(state: S) -> Self {
        Init::Ok(state, Next::None)
    }
}

/// What [`GenServer::handle_call`] returns.
#[derive(Debug)]
pub enum Reply<R, C = ()> {
    /// Answer the caller with `R`, then go on as [`Next`] says.
    Reply(R, Next<C>),
    /// Do not answer now: answer later with [`crate::reply`], from this server or another.
    NoReply(Next<C>),
    /// Answer the caller, then run `terminate` and exit with the reason.
    StopReply(ExitReason, R),
    /// Exit with the reason without answering; the caller gets `CallError::Exited`.
    Stop(ExitReason),
}

impl<R, C> Reply<R, C> {
    /// Answer the caller now and wait for the next message.
    pub fn ok(reply: R) -> Self {
        Reply::Reply(reply, Next::None)
    }
}

/// What [`GenServer::handle_cast`], [`GenServer::handle_info`] and
/// [`GenServer::handle_continue`] return.
#[derive(Debug)]
pub enum NoReply<C = ()> {
    /// Go on as [`Next`] says.
    NoReply(Next<C>),
    /// Run `terminate` and exit with the reason.
    Stop(ExitReason),
}

impl<C> NoReply<C> {
    /// Go on, waiting for the next message.
    pub fn ok() -> Self {
        NoReply::NoReply(Next::None)
    }
}

/// A server: its state is `Self`, its messages are the associated types.
///
/// Every message type is decoded with serde from the CBOR the host delivers. A call whose
/// request does not decode is answered with `badarg` and the server goes on; a cast or info
/// that does not decode is logged and dropped, as OTP logs an unexpected message.
pub trait GenServer: Sized + Serialize + DeserializeOwned + 'static {
    /// The start arguments `init` receives.
    type Args: DeserializeOwned;
    /// Requests to [`GenServer::handle_call`].
    type Call: DeserializeOwned;
    /// Replies to calls.
    type Reply: Serialize;
    /// Requests to [`GenServer::handle_cast`].
    type Cast: DeserializeOwned;
    /// Plain messages to [`GenServer::handle_info`] (from `send`, `send_after`).
    type Info: DeserializeOwned;
    /// The value a [`Next::Continue`] carries to [`GenServer::handle_continue`].
    type Continue: Serialize + DeserializeOwned;

    /// This module's version, reported to the host and given to `code_change` of the next one.
    const VSN: &'static str = "0";

    /// Whether a panic in `handle_call`, `handle_cast`, `handle_info` or `handle_continue`
    /// runs [`GenServer::terminate`] before the process ends, on the state as it stood before
    /// the failing callback (as OTP runs `terminate/2` when a callback raises). Off unless a
    /// server sets it:
    ///
    /// ```ignore
    /// const TERMINATE_ON_PANIC: bool = true;
    /// ```
    ///
    /// It costs one CBOR encoding of the state after every callback, kept beside the state
    /// (the panicking callback's own `&mut self` may be torn, so `terminate` gets a state
    /// decoded from those bytes): tens of nanoseconds a message for a small state, but as
    /// much as the state is large (about 15 µs a message for a thousand short strings; see
    /// BENCHMARKS.md). A server that holds a resource to flush or close (a file, a buffer of
    /// unwritten items) turns it on; one with a large state it would slow down every message
    /// of, to no use, leaves it off. See [`GenServer::terminate`] for what ends a process
    /// without `terminate` even so.
    const TERMINATE_ON_PANIC: bool = false;

    /// Build the state. Returning [`Init::Ok`] makes `start` return the pid; nothing
    /// queued is handled before `init` returns.
    fn init(args: Self::Args) -> Init<Self, Self::Continue>;

    /// Answer a call. The default crashes the server, as an Elixir server without the
    /// clause does, so that a call to a server that takes none is never silently dropped.
    fn handle_call(
        &mut self,
        request: Self::Call,
        from: ReplyTo,
    ) -> Reply<Self::Reply, Self::Continue> {
        let _ = (request, from);
        Reply::Stop(ExitReason::Error("handle_call not implemented".into()))
    }

    /// Handle a cast. The default logs it and goes on.
    fn handle_cast(&mut self, request: Self::Cast) -> NoReply<Self::Continue> {
        let _ = request;
        crate::log::warn("unhandled cast", &[]);
        NoReply::ok()
    }

    /// Handle any other message. The default logs it and goes on.
    fn handle_info(&mut self, msg: Info<Self::Info>) -> NoReply<Self::Continue> {
        crate::log::warn("unhandled info", &[("kind", msg.kind())]);
        NoReply::ok()
    }

    /// Continue work from a previous callback before any queued message.
    fn handle_continue(&mut self, arg: Self::Continue) -> NoReply<Self::Continue> {
        let _ = arg;
        NoReply::ok()
    }

    /// The process is stopping: a stop result, `otter stop`, its supervisor's shutdown, an
    /// exit signal from its parent, or a panic in a callback.
    ///
    /// With [`GenServer::TERMINATE_ON_PANIC`] set, after a panic in `handle_call`,
    /// `handle_cast`, `handle_info` or `handle_continue`, `terminate` runs on the state as it
    /// stood before that callback (the changes the failing callback made are lost), with the
    /// reason `panic: <message>`, the reason the process then exits with; its callers,
    /// monitors and links learn of the exit after `terminate` returns.
    ///
    /// It does not run when the process:
    /// - is killed (`kill`, a `brutal_kill` shutdown or an overrun shutdown timeout), or
    ///   gets an exit signal from a linked process other than its parent while not trapping
    ///   exits, as in OTP;
    /// - traps without a panic: `unreachable`, an out-of-bounds access, a stack overflow
    ///   (wasm's stack or the host's), a callback past its time limit (`timeout`);
    /// - runs out of memory (`memory_limit`): a failed allocation aborts without a panic;
    /// - panics in a callback without [`GenServer::TERMINATE_ON_PANIC`] set;
    /// - panics in `init` (nothing to terminate, as in OTP), in `terminate` itself, in
    ///   `code_change` (the upgrade fails and the process goes on with its old code) or while
    ///   its state is encoded;
    /// - panics again, or runs out of time or memory, inside the `terminate` a panic runs.
    fn terminate(&mut self, reason: ExitReason) {
        let _ = reason;
    }

    /// Build this version's state from the state another version exported, when the host
    /// swaps this server's module (`otter upgrade`): decode it as that version's state type
    /// with [`CodeChange::old_state`] and convert. An error (or a panic) fails the upgrade and
    /// the process goes on with the old version and its state.
    ///
    /// The default decodes the old state as this version's state type, which is right when
    /// the shape did not change, or only lost fields.
    fn code_change(change: CodeChange<'_>) -> Result<Self, String> {
        change.old_state()
    }
}

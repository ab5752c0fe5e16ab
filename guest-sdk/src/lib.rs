//! Write Erlang/OTP-style GenServers in Rust and run them as WebAssembly processes on Otter.
//!
//! A server is a serde-serializable state type that implements [`GenServer`], exported with
//! [`export_genserver!`] and compiled for `wasm32-unknown-unknown`. The host runs each process
//! in its own sandbox: a panic or trap ends that process alone and its callers get an error.
//!
//! # Example
//!
//! A counter that answers `"ping"` with a count and takes `"reset"` as a cast:
//!
//! ```
//! use otter_guest::{GenServer, Init, Reply, NoReply, ReplyTo};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Default)]
//! struct Counter {
//!     count: u64,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "snake_case")]
//! enum Req {
//!     Ping,
//! }
//!
//! #[derive(Serialize)]
//! struct Pong {
//!     count: u64,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "snake_case")]
//! enum Note {
//!     Reset,
//! }
//!
//! impl GenServer for Counter {
//!     type Args = ();
//!     type Call = Req;
//!     type Reply = Pong;
//!     type Cast = Note;
//!     type Info = ();
//!     type Continue = ();
//!     const VSN: &'static str = "1";
//!
//!     fn init(_args: ()) -> Init<Self> {
//!         Init::ok(Counter::default())
//!     }
//!
//!     fn handle_call(&mut self, req: Req, _from: ReplyTo) -> Reply<Pong> {
//!         match req {
//!             Req::Ping => {
//!                 self.count += 1;
//!                 Reply::ok(Pong { count: self.count })
//!             }
//!         }
//!     }
//!
//!     fn handle_cast(&mut self, note: Note) -> NoReply {
//!         match note {
//!             Note::Reset => self.count = 0,
//!         }
//!         NoReply::ok()
//!     }
//! }
//!
//! # #[cfg(target_family = "wasm")]
//! otter_guest::export_genserver!(Counter);
//! ```
//!
//! With the host running it under the name `counter`:
//!
//! ```text
//! $ otter call counter '"ping"'
//! {"count":1}
//! $ otter cast counter '"reset"'
//! ```
//!
//! # What each return does
//!
//! - [`Init::Ok`] with [`Next::None`]: `start` returns the pid and the server waits.
//!   [`Init::Ignore`]: `start` returns `ignore`, the process exits `normal`, no name is
//!   registered. [`Init::Stop`]: `start` fails with the reason.
//! - [`Reply::Reply`]: the caller gets the reply now. [`Reply::NoReply`]: the caller keeps
//!   waiting until someone calls [`reply`] with its [`ReplyTo`] (or its timeout fires).
//!   [`Reply::StopReply`]: the caller gets the reply, then `terminate` runs and the process
//!   exits. [`Reply::Stop`]: the caller gets `CallError::Exited(reason)`.
//! - [`NoReply::NoReply`]: go on. [`NoReply::Stop`]: `terminate(reason)` runs, then the
//!   process exits with that reason.
//! - [`Next::Timeout`]: [`Info::Timeout`] arrives after that many idle milliseconds; any
//!   message cancels it. [`Next::Continue`]: [`GenServer::handle_continue`] runs before any
//!   queued message, even those the callback sent to itself. [`Next::Hibernate`]: the state is
//!   serialized and the instance dropped until the next message wakes the process.
//!
//! A callback that panics or traps crashes the process with an `error` reason: pending callers
//! get [`CallError::Exited`], monitors get [`Info::Down`]. The reason is one short line:
//! `panic: <message>` (the SDK installs a panic hook that tells the host the message),
//! `trap: unreachable` and the like, `memory_limit` when the process ran out of its memory,
//! `stack_overflow`. In a server that sets [`GenServer::TERMINATE_ON_PANIC`], a panic in
//! `handle_call`, `handle_cast`, `handle_info` or `handle_continue` first runs `terminate` on
//! the state from before that callback, as OTP does when a callback raises; a trap that is
//! not a panic does not (see [`GenServer::terminate`] for every case).
//!
//! # Testing a server
//!
//! `cargo test` in a guest crate builds it natively, where every host call goes to the
//! recording fake host of the `testing` module (it exists only in a native build): a unit
//! test runs `init`, `handle_call` and the rest directly, scripts the answers of other
//! servers, and asserts on the returned values and on what the callbacks asked of the host
//! (sends, casts, calls, replies, timers, links, names, registry and supervisor requests,
//! logs). Build the crate for wasm with `--target wasm32-unknown-unknown` (not a default
//! `[build] target` in `.cargo/config.toml`, which would make `cargo test` build the tests
//! for wasm too).
//!
//! # The heap
//!
//! On `wasm32-unknown-unknown` the SDK installs the guest's `#[global_allocator]`: `dlmalloc`
//! (the allocator the standard library uses there) behind a break that takes the free end of
//! the module's initial memory before it grows the memory, 4 KiB at a time, so an idle
//! server keeps fewer pages resident. In front of it, freed blocks of up to 256 bytes are
//! kept (64 a size class) for the next allocation of their size, which a server makes for
//! every message. A guest that brings its own global allocator depends on
//! the SDK with `default-features = false` (the default feature `allocator`).
//!
//! # Registries and supervisors
//!
//! [`registry`] registers this process under any serde key in a named registry (Elixir's
//! `Registry`): a unique key is an address ([`Dest::via`]), a duplicate key a pub/sub topic
//! ([`registry::dispatch`]). [`supervisor`] starts children under a dynamic supervisor
//! by its name and lists a supervisor's children.
//!
//! # Starting processes, and time
//!
//! [`start`], [`start_link`] and [`start_monitor`] start a process of a loaded module from a
//! callback and return once its `init` has (OTP's `gen_server:start_link`), with a name, a
//! `via` key, a start timeout or `hibernate_after` in [`StartOptions`]. [`clock`] reads the
//! node's monotonic and system clocks and sleeps without a message; [`start_timer`] arms a
//! timer whose [`Info::Timer`] carries its reference.
#![warn(missing_docs, unreachable_pub)]

extern crate self as otter_guest;

#[doc(hidden)]
pub mod bindings;
pub mod clock;
mod code_change;
mod export;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(all(
    feature = "allocator",
    target_arch = "wasm32",
    target_os = "unknown",
    not(target_feature = "atomics")
))]
mod heap;
mod imports;
pub mod log;
mod panic;
mod process;
pub mod registry;
mod server;
#[cfg(any(
    test,
    all(
        feature = "allocator",
        target_arch = "wasm32",
        target_os = "unknown",
        not(target_feature = "atomics")
    )
))]
mod small_blocks;
mod spawn;
pub mod sql;
pub mod supervisor;
pub mod table;
pub mod telemetry;
mod term;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod types;

pub use code_change::CodeChange;
pub use process::{
    call, call_timeout, cancel_timer, cast, demonitor, exit, link, message_queue_len, monitor,
    register, reply, self_pid, send, send_after, start_timer, trap_exit, unlink, unregister,
    whereis,
};
pub use server::{GenServer, Init, Next, NoReply, Reply};
pub use spawn::{Overflow, StartError, StartOptions, start, start_link, start_monitor};
pub use term::{decode, encode};
pub use types::{
    CallError, Dest, ExitReason, Info, MonitorRef, Pid, RegisterError, ReplyTo, TimerRef,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::exports::otter::genserver::server::{
        BatchResult, CallResult, Envelope, ExitReason as WitExitReason, Guest, Info as WitInfo,
        InitResult, NoreplyResult, ReplyTo as WitFrom,
    };
    pub use crate::bindings::otter::genserver::types::Outcome;
    pub use crate::export::*;
    pub use otter_common::process_local;
    pub use wit_bindgen;
}

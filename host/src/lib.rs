//! Otter: Erlang/OTP's GenServer model on WebAssembly.
//!
//! Every process is one wasm component instance in its own store, driven by one tokio task.
//! A [`Node`] loads modules, spawns processes and talks to them; the `otter` binary wraps it
//! in a CLI that runs a manifest and serves a local control socket.
//!
//! # Architecture
//!
//! One concept per module; the crate root re-exports the public types in one list.
//!
//! | module | what it holds |
//! |---|---|
//! | `otter_common` (crate) | what the guest SDK shares: the term codec, the non-recursive term walker and display, [`ExitReason`], [`Pid`] |
//! | `term` | the host's side of terms: the depth check before decoding, JSON, canonical registry keys, merging child args |
//! | `limits`, `guest_text`, `trust` | the bounds on what guests and files hand the host; guest text made safe to print |
//! | `engine`, `cache`, `pools` | the wasmtime engine and epoch clock, compiling and checking modules (and reading their version), the compiled-module cache, the stack and memory pools |
//! | `bindings`, `host/` | the code generated from `wit/`, and one module per imported WIT interface (`process`, `registry`, `supervisor`, `log`) on one store data type, `ProcessCtx` |
//! | `mailbox`, `timer` | a process's queue of messages and signals with its reply slots; `send-after` timers |
//! | `process/` | one process: its store and its tokio task (`serve`: the message loop, `batch`: several queued messages in one guest entry) |
//! | `upgrade/` | hot code upgrade: [`Node::upgrade`] across a module's processes, `change_code`, `modules` (each process's own swap is in `process/`) |
//! | `node/` | the [`Node`]: the process table, loading and spawning, routing calls, casts, messages, exit signals and monitors (`routing`) |
//! | `registry/` | local names and keyed registries, as data |
//! | `supervisor/` | supervisors as host tasks: specs, restart strategies, child administration |
//! | `manifest/` | the application a TOML file describes, checked with its lines |
//! | `control/` | the control endpoint: requests and responses, connections and their limits, the typed `ps`/`tree` answers |
//! | `cli/` (binary) | the `otter` commands: `run` and the clients of the control endpoint |
//!
//! ## One call, from `otter call echo '"ping"'` to the guest and back
//!
//! 1. `cli/client.rs` turns the JSON into a [`control::Request::Call`] and writes it as one
//!    line to the node's socket ([`control::request`]).
//! 2. In the node, `control/endpoint.rs` accepts the connection within its limits,
//!    `control/connection.rs` reads the line, and `control/mod.rs` carries out the request:
//!    the JSON message becomes a term ([`from_json`]) and goes to [`Node::call_term`].
//! 3. `node/routing.rs` checks the term's size, resolves the destination (a pid, a name in
//!    `registry/names.rs`, a `via` key in `registry/keyed.rs`), makes a reply slot and
//!    queues `Message::Call` in the process's mailbox (`mailbox.rs`).
//! 4. The process's task (`process/serve.rs`) takes it after any signals, with the
//!    messages queued behind it when the guest can take a batch (`process/batch.rs`), and
//!    enters the guest's `handle-call` through `bindings`. The guest may call host imports
//!    meanwhile (`host/process.rs` and the other interfaces), on the process's fiber.
//! 5. A reply (now, or later through the `reply` import) is checked against the size limit
//!    and sent through the reply slot; a crash instead ends the process, and the slot's
//!    closing gives the caller the exit reason.
//! 6. `Node::call_term` returns the term; the endpoint converts it to JSON ([`to_json`],
//!    bounded) and writes `{"ok": …}`; the CLI prints the value.
#![warn(missing_docs, unreachable_pub)]

mod bindings;
mod cache;
pub mod control;
mod dest;
mod embedded;
mod engine;
mod error;
mod exit;
mod guest_text;
mod host;
mod limits;
mod mailbox;
pub mod manifest;
mod node;
mod pools;
mod process;
mod registry;
mod supervisor;
mod term;
mod timer;
mod trap;
mod trust;
mod upgrade;

pub use dest::Dest;
pub use embedded::{
    EmbeddedProcess, IncomingCall, MonitorRef, ProcessError, ReceiveError, Received,
};
pub use engine::{DEFAULT_LOAD_TIMEOUT, EngineConfig, Module};
pub use error::{
    CallError, GetStateError, LoadError, ReplaceStateError, ResumeError, SendError, StartError,
    StopError, SuspendError,
};
pub use exit::ExitReason;
pub use guest_text::escaped;
pub use node::{DEFAULT_CALL_TIMEOUT, Node, NodeConfig, ProcessInfo, SpawnOptions};
pub use otter_common::Pid;
pub use registry::{Keys, RegisterError, RegistryError, RegistryExists};
pub use supervisor::{
    ChildCounts, ChildError, ChildFailure, ChildInfo, ChildKind, ChildSpec, ChildStart,
    DEFAULT_SHUTDOWN_TIMEOUT, Restart, Shutdown, SpecError, Strategy, Supervisor, SupervisorError,
    SupervisorSpec,
};
pub use term::{MAX_TERM_DEPTH, Term, TermError, decode, encode, from_json, to_json};
pub use upgrade::{
    DEFAULT_UPGRADE_TIMEOUT, MAX_MODULE_BYTES, ModuleInfo, ProcessFailure, UpgradeError,
    UpgradeOptions, UpgradePolicy, UpgradeReport,
};

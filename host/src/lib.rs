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
//! | `descriptors` | the node's budget of OS descriptors guests may hold open (`host/open_files.rs` and `host/open_sockets.rs` count WASI's files and sockets in it, `sql` its connections), and the node's open-file limit |
//! | `engine`, `cache`, `pools`, `memory` | the wasmtime engine and epoch clock, compiling and checking modules (and reading their version), the compiled-module cache, the stack and memory pools, a process's memory cap |
//! | `trap` | what ended a guest call, as one short exit reason |
//! | `grants` | what a module's processes may reach through WASI ([`ModuleGrants`]); `host/wasi.rs` turns them into each process's WASI context |
//! | `bindings`, `host/` | the code generated from `wit/`, and one module per imported WIT interface (`process`, `registry`, `spawn`, `supervisor`, `clock`, `log`, `sql`, `table`, `telemetry`) and the linker that installs them; `wasi` (WASI preview 2 for the modules that import it, from their grants) and `stdio` (a WASI guest's stdout and stderr into the log, bounded) |
//! | `mailbox`, `timer` | a process's queue of messages and signals with its reply slots; `send-after` timers |
//! | `entry` | a process as the rest of the node sees it: its entry in the process table, who is told when it exits, what `ps` shows |
//! | `process/` | one process's task: `serve` (the message loop, hibernation), `batch` (several queued messages in one guest entry), `flow` (what a callback's result does next), `calls` (the calls it has not answered: tags, bounds, exit), `ctx` (its store data) |
//! | `node/` | the [`Node`]: the process table and loaded modules, `spawn` and the `exit` sequence, `routing` (calls, casts, messages, exit signals, monitors), `names` (resolving destinations, registering names and keys), `supervisors` (the node's supervisor API) |
//! | `upgrade/` | hot code upgrade: [`Node::upgrade`] across a module's processes, `change_code`, `modules` (each process's own swap is in `process/`) |
//! | `registry/` | local names and keyed registries, as data |
//! | `table/` | shared tables (ETS) as data: the node's index of tables, their objects in term order (`order`: a term as bytes that sort as its value), the node's bounds on them |
//! | `supervisor/` | supervisors as host tasks: specs, restart strategies, child administration |
//! | `manifest/` | the application a TOML file describes, checked with its lines |
//! | `telemetry/` | the metrics recorder ([`telemetry::Metrics`]), the node's per-process figures read at scrape time, the Prometheus endpoint |
//! | `metering/` | what the runtime records as it runs: guests' telemetry events as metrics (naming rule, series budget and each module's share of it), callback durations, supervisor restarts |
//! | `control/` | the control endpoint: requests and responses, connections and their limits, the typed `ps`/`tree` answers; it uses the node's API only |
//! | `cli/` (binary) | the `otter` commands: `run` and the clients of the control endpoint |
//!
//! ## Import layers
//!
//! Imports flow one way, from the top down: the CLI; `control`, `manifest` and `release`; `embedded`;
//! `telemetry`; the runtime (`node`, `supervisor`, `host`, `process`, `engine`, `entry`); then what it is
//! built on (`metering`, `descriptors`, `mailbox`, `timer`, `registry`, `table`, `pools`, `memory`, `trap`, `cache`, `error`,
//! `dest`, `exit`, `term`, `limits`, `guest_text`, `trust`, `bindings`), none of which
//! imports anything above it. Inside `process/`, `serve` uses `batch`, both use `flow`, and
//! `calls` and `ctx` are below all three. The test in `layers.rs` fails on any import cycle
//! but two knots, kept on purpose:
//!
//! - The runtime: a process's store data (`process::ProcessCtx`) holds the node, because
//!   every import a guest calls (send, call, spawn, register, ...) is the node's work; the
//!   node in turn starts process tasks and links their imports. A module's `InstancePre` is
//!   typed by that store data, and the process table's entries keep their module, so
//!   `engine` and `entry` close the loop too. Guests reach supervisors (`host/supervisor.rs`),
//!   which start processes through the node, which keeps its running supervisors so that
//!   names and shutdown find them. Untying it would need the node behind a trait object in
//!   the store data.
//! - `control`, `manifest` and `release`: the manifest sets the endpoint's limits
//!   (`control::Limits`), the endpoint's `tree` shows the manifest's supervision tree, and
//!   its `reload` moves the node between releases, each a manifest.
//!
//! ## One call, from `otter call echo '"ping"'` to the guest and back
//!
//! 1. `cli/client.rs` turns the JSON into a [`control::Request::Call`] and writes it as one
//!    line to the node's socket ([`control::request`]).
//! 2. In the node, `control/endpoint.rs` accepts the connection within its limits,
//!    `control/connection.rs` reads the line, and `control/mod.rs` carries out the request:
//!    the JSON message becomes a term ([`from_json`]) and goes to [`Node::call_term`].
//! 3. `node/routing.rs` checks the term's size, resolves the destination (`node/names.rs`:
//!    a pid, a name in `registry/names.rs`, a `via` key in `registry/keyed.rs`), makes a
//!    reply slot and queues `Message::Call` in the process's mailbox (`mailbox.rs`).
//! 4. The process's task (`process/serve.rs`) takes it after any signals, with the
//!    messages queued behind it when the guest can take a batch (`process/batch.rs`), gives
//!    the call a tag in its open-call table (`process/calls.rs`) and enters the guest's
//!    `handle-call` through `bindings`. The guest may call host imports meanwhile
//!    (`host/process.rs` and the other interfaces), on the process's fiber.
//! 5. `process/flow.rs` acts on the result: a reply (now, or later through the `reply`
//!    import, which finds the call by its tag) is checked against the size limit and sent
//!    through the reply slot; `noreply` leaves the call open; a crash ends the process, and
//!    the exit sequence (`node/exit.rs`) answers every open call with the exit reason.
//! 6. `Node::call_term` returns the term; the endpoint converts it to JSON ([`to_json`],
//!    bounded) and writes `{"ok": …}`; the CLI prints the value.
#![warn(missing_docs, unreachable_pub)]

pub mod allocator;
mod bindings;
mod cache;
#[doc(hidden)]
pub mod call_floor;
mod callbacks;
pub mod control;
mod descriptors;
mod dest;
mod embedded;
mod engine;
mod entry;
mod error;
mod exit;
mod file;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod grants;
mod guest_text;
mod host;
#[cfg(test)]
mod layers;
mod limits;
mod mailbox;
pub mod manifest;
mod memory;
mod metering;
mod node;
mod pools;
mod process;
mod process_limits;
mod registry;
pub mod release;
pub mod runtime;
mod sql;
mod supervisor;
mod table;
pub mod telemetry;
mod term;
mod timer;
mod trap;
mod trust;
mod upgrade;

pub use descriptors::raise_open_file_limit;
pub use dest::Dest;
pub use embedded::{
    EmbeddedProcess, IncomingCall, MonitorRef, ProcessError, ReceiveError, Received,
};
pub use engine::{CONTRACT_VERSION, DEFAULT_LOAD_TIMEOUT, EngineConfig, Module};
pub use error::{
    CallError, GetStateError, LoadError, ReplaceStateError, ResumeError, SendError, StartError,
    StopError, SuspendError,
};
pub use exit::ExitReason;
pub use grants::{DatabaseGrant, DirGrant, DirMode, GrantError, ModuleGrants};
pub use guest_text::{escaped, json_line};
pub use node::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_SPARE_INSTANCES, GuestLogLine, LogLevel, MAX_SPARE_INSTANCES,
    Node, NodeConfig, PoolResidency, ProcessInfo, SpareInstances, SpawnOptions,
};
pub use otter_common::Pid;
pub use process_limits::{DEFAULT_CALLBACK_TIMEOUT, MailboxBound, Overflow, ProcessLimits};
pub use registry::{Keys, RegisterError, RegistryError, RegistryExists};
pub use supervisor::{
    ChildCounts, ChildError, ChildFailure, ChildInfo, ChildKind, ChildRef, ChildSpec, ChildStart,
    DEFAULT_SHUTDOWN_TIMEOUT, Restart, Shutdown, SpecError, Strategy, Supervisor, SupervisorError,
    SupervisorSpec,
};
pub use term::{MAX_TERM_DEPTH, Term, TermError, decode, encode, from_json, to_json};
pub use upgrade::{
    DEFAULT_UPGRADE_TIMEOUT, MAX_MODULE_BYTES, ModuleInfo, ProcessFailure, UpgradeError,
    UpgradeOptions, UpgradePolicy, UpgradeReport,
};

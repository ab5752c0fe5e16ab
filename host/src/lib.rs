//! Otter: Erlang/OTP's GenServer model on WebAssembly.
//!
//! Every process is one wasm component instance in its own store, driven by one tokio task.
//! A [`Node`] loads modules, spawns processes and talks to them; the `otter` binary wraps it
//! in a CLI that runs a manifest and serves a local control socket.
#![warn(missing_docs, unreachable_pub)]

mod bindings;
mod cache;
pub mod control;
mod dest;
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

pub use dest::Dest;
pub use engine::{DEFAULT_LOAD_TIMEOUT, EngineConfig, Module};
pub use error::{CallError, LoadError, ReplaceStateError, StartError, StopError};
pub use exit::ExitReason;
pub use guest_text::escaped;
pub use node::{DEFAULT_CALL_TIMEOUT, Node, NodeConfig, ProcessInfo, SpawnOptions};
pub use process::Pid;
pub use registry::{Keys, RegisterError, RegistryError, RegistryExists};
pub use supervisor::{
    ChildCounts, ChildError, ChildFailure, ChildInfo, ChildKind, ChildSpec, ChildStart,
    DEFAULT_SHUTDOWN_TIMEOUT, Restart, Shutdown, SpecError, Strategy, Supervisor, SupervisorError,
    SupervisorSpec,
};
pub use term::{MAX_TERM_DEPTH, Term, TermError, decode, encode, from_json, to_json};

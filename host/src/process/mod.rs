//! One process: a component instance in its own store, driven by one tokio task.
//!
//! The task takes signals before messages, runs one callback at a time, honours what each
//! callback returns next (continue before any queued message, idle timeout, hibernate), and
//! on exit hands its pending callers to the exit sequence (`node/exit.rs`), which frees its
//! name, notifies its monitors and links and answers the callers. A trap ends the process
//! alone; a kill aborts the task, which drops the store wherever it was.
//!
//! `serve` is the message loop, `batch` hands several queued messages to the guest at once,
//! `flow` acts on what a callback returned, `calls` keeps the calls the process has not
//! answered yet, `ctx` is the store data all of them (and the imports in `host/`) work on,
//! and `resources` what that data holds for one instance only (kept through an upgrade).

mod batch;
mod calls;
mod ctx;
mod flow;
mod monitors;
mod resources;
mod serve;
mod upgrade;
mod wait_timer;

pub(crate) use upgrade::{Prepared, Refusal, UpgradeOrder};

pub(crate) use ctx::{Instantiation, ProcessCtx, adopt, can_adopt, new_store};
pub(crate) use serve::run;
pub(crate) use wait_timer::WaitTimer;

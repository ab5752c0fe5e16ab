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
//! answered yet, and `ctx` is the store data all of them (and the imports in `host/`) work on.

mod batch;
mod calls;
mod ctx;
mod flow;
mod serve;
mod upgrade;

pub(crate) use upgrade::{Prepared, Refusal, UpgradeOrder};

pub(crate) use ctx::ProcessCtx;
pub(crate) use serve::run;

#[cfg(test)]
mod tests {
    /// The size of what `f` returns, without calling it.
    fn returned_size<A, B, C, D, E, F, R>(_: fn(A, B, C, D, E, F) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every live process pays for its task's future, and a future keeps room for its
    /// largest state for life: what only starting needs (instantiating, `init`, the
    /// arguments) must not count. The message loop's state is about 600 bytes.
    #[test]
    fn the_process_task_keeps_only_the_message_loops_state() {
        let size = returned_size(super::run);
        assert!(size <= 1024, "a process's task future is {size} bytes");
    }
}

//! The process task's outline: start (instantiate, `init`, tell the starter), then serve
//! until the process exits, then the exit sequence. Starting is boxed and freed once the
//! process serves, so that a live process's task keeps only the message loop's state.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Instance, Process, Served, Woken};
use crate::Pid;
use crate::bindings::{InitResult, WitNext};
use crate::engine::Module;
use crate::error::StartError;
use crate::exit::{ExitReason, WitReason};
use crate::node::ExitGuard;
use crate::process::ctx::{Instantiation, crash, new_store};
use crate::term::Term;

/// The process task: instantiate, `init`, tell the starter, then serve until the process
/// exits; `guard` runs the exit sequence however the task ends.
///
/// Not an `async fn`: its arguments would stay in the task for life (an async fn keeps the
/// space of its arguments beside that of its locals). Starting is boxed instead, and freed
/// once the process serves, so the task holds only the message loop's state.
pub(crate) fn run(
    guard: ExitGuard,
    module: Arc<Module>,
    instance: Instantiation,
    args: Term,
    hibernate_after: Option<Duration>,
    started: oneshot::Sender<Result<Pid, StartError>>,
) -> impl Future<Output = ()> + Send + 'static {
    serve_until_exit(Box::pin(start(
        guard,
        module,
        instance,
        args,
        hibernate_after,
        started,
    )))
}

/// The process task after `start` (passed boxed): serve until the process exits.
async fn serve_until_exit(
    start: std::pin::Pin<Box<impl Future<Output = Option<(ExitGuard, Process, WitNext)>>>>,
) {
    let Some((guard, mut process, mut next)) = start.await else {
        return;
    };
    let mut woken = None;
    let reason = loop {
        // Boxed, and dropped while hibernating: a hibernating process's task keeps only the
        // small future that waits for its next event (boxed too: it is the task's largest).
        match Box::pin(process.serve(next, woken.take())).await {
            Served::Exit(reason) => break reason,
            Served::Hibernated => match Box::pin(process.next_event(None)).await {
                Woken::Event(event) => {
                    next = WitNext::None;
                    woken = Some(event);
                }
                Woken::Exit { reason, terminate } => {
                    break Box::pin(process.exit(reason, terminate)).await;
                }
            },
        }
    };
    // What its instance holds ends before its exit is seen: an unfinished last line of
    // its output is logged first, its files and connections are closed.
    if let Instance::Awake { store, .. } = &mut process.instance {
        store.data_mut().close_instance_resources();
    }
    // The exit first, then the mailbox: a call still queued is dropped with it, and its
    // caller reads the exit reason, which must be set by then.
    guard.exit(reason, std::mem::take(&mut process.pending));
    drop(process);
}

/// Instantiate (unless the instance was made ahead) and run `init`, then tell the starter:
/// the process and what `init` said comes next, or `None` when it did not start (the starter
/// has been told why, and the exit has run).
async fn start(
    mut guard: ExitGuard,
    module: Arc<Module>,
    instance: Instantiation,
    args: Term,
    hibernate_after: Option<Duration>,
    started: oneshot::Sender<Result<Pid, StartError>>,
) -> Option<(ExitGuard, Process, WitNext)> {
    let (mut store, server) = match instance {
        Instantiation::Made(store, server) => (store, server),
        Instantiation::Make(ctx) => {
            let engine = ctx.node.engine.clone();
            let mut store = new_store(&engine, ctx);
            match module.pre.instantiate_async(&mut store).await {
                Ok(server) => (store, server),
                Err(e) => {
                    let reason = crash(store.data(), e);
                    guard.set_reason(reason.clone());
                    drop(guard);
                    let _ = started.send(Err(StartError::Instantiate(reason.to_string())));
                    return None;
                }
            }
        }
    };
    let pid = store.data().pid;
    let init = server.call_init(&mut store, &args).await;
    let next = match init {
        Ok(InitResult::Ok(next)) => next,
        other => {
            let (reason, err) = match other {
                Ok(InitResult::Ignore) => (ExitReason::Normal, StartError::Ignore),
                Ok(InitResult::Stop(r)) => {
                    let r = ExitReason::from_wit(r);
                    (r.clone(), StartError::Stopped(r))
                }
                Err(e) => {
                    let r = crash(store.data(), e);
                    (r.clone(), StartError::Stopped(r))
                }
                Ok(InitResult::Ok(_)) => unreachable!(),
            };
            // Exit (freeing the name) before the starter sees the result, and before the
            // mailbox goes, so that callers still queued read the exit reason.
            store.data_mut().close_instance_resources();
            guard.set_reason(reason);
            drop(guard);
            drop(store);
            let _ = started.send(Err(err));
            return None;
        }
    };
    let _ = started.send(Ok(pid));
    let process = Process {
        module,
        entry: guard.entry().clone(),
        instance: Instance::Awake { store, server },
        pending: Vec::new(),
        suspended: false,
        hibernate_after,
        migration: None,
    };
    Some((guard, process, next))
}

#[cfg(test)]
mod tests {
    /// The size of what `f` returns, without calling it.
    fn returned_size<A, B, C, D, E, F, R>(_: fn(A, B, C, D, E, F) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every live process pays for its task's future, and a future keeps room for its
    /// largest state for life: what only starting needs (instantiating, `init`, the
    /// arguments) must not count. The message loop's state is about 600 bytes in a release
    /// build; tests build without optimisation, with more room, hence the bound.
    #[test]
    fn the_process_task_keeps_only_the_message_loops_state() {
        let size = returned_size(super::run);
        assert!(size <= 1024, "a process's task future is {size} bytes");
    }
}

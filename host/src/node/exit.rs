//! The exit sequence: what happens in the node when a process ends, however it ends.

use std::sync::Arc;

use super::NodeInner;
use crate::Pid;
use crate::entry::{ProcessEntry, Watcher};
use crate::error::CallError;
use crate::exit::ExitReason;
use crate::mailbox::ReplySlot;

/// Runs the exit sequence when the process task ends, however it ends (a kill drops it).
pub(crate) struct ExitGuard {
    node: Arc<NodeInner>,
    entry: Arc<ProcessEntry>,
    reason: Option<ExitReason>,
    /// Callers to answer with the exit reason once the name is free.
    pending: Vec<ReplySlot>,
}

impl ExitGuard {
    pub(crate) fn new(node: Arc<NodeInner>, entry: Arc<ProcessEntry>) -> Self {
        ExitGuard {
            node,
            entry,
            reason: None,
            pending: Vec::new(),
        }
    }

    /// Run the exit sequence now: the process exits `reason`, and `pending` callers learn it.
    pub(crate) fn exit(mut self, reason: ExitReason, pending: Vec<ReplySlot>) {
        self.reason = Some(reason);
        self.pending = pending;
    }

    /// The process's entry.
    pub(crate) fn entry(&self) -> &Arc<ProcessEntry> {
        &self.entry
    }

    /// The process will exit `reason` (killed if never set) when the guard drops.
    pub(crate) fn set_reason(&mut self, reason: ExitReason) {
        self.reason = Some(reason);
    }
}

/// Tell one watcher that process `pid` exited `reason`.
fn tell(node: &NodeInner, pid: Pid, w: Watcher, reason: &ExitReason) {
    match w {
        Watcher::Monitor { mref, watcher } => node.deliver_down(watcher, mref, pid, reason.clone()),
        Watcher::Waiter(tx) => {
            let _ = tx.send(reason.clone());
        }
        Watcher::Channel(tx) => {
            let _ = tx.send((pid, reason.clone()));
        }
    }
}

/// Ends the announcement of an exit, also if telling someone panicked: the watchers that
/// came while the others were told are told now, after them, as they would have been had
/// they come a moment later (a `wait_exit` that returns has the supervisor told already),
/// and the process is no longer watchable.
struct Announcing<'a> {
    node: &'a NodeInner,
    entry: &'a ProcessEntry,
    reason: &'a ExitReason,
}

impl Drop for Announcing<'_> {
    fn drop(&mut self) {
        for w in self.entry.set_announced() {
            tell(self.node, self.entry.pid, w, self.reason);
        }
        self.node.announced(self.entry.pid);
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = self.reason.take().unwrap_or(ExitReason::Killed);
        let (watchers, links) = self.entry.set_exited(reason.clone());
        // Watchable until everyone is told, though out of the table first.
        self.node.exiting(&self.entry);
        let announcing = Announcing {
            node: &self.node,
            entry: &self.entry,
            reason: &reason,
        };
        self.node.remove(&self.entry);
        for w in watchers {
            tell(&self.node, self.entry.pid, w, &reason);
        }
        for other in links {
            if let Some(entry) = self.node.entry(other) {
                entry.remove_link(self.entry.pid);
                let _ = entry.mailbox.exit(self.entry.pid, reason.clone());
            }
        }
        for slot in self.pending.drain(..) {
            let _ = slot.send(Err(CallError::Exited(reason.clone())));
        }
        drop(announcing);
        let pid = self.entry.pid;
        let module = self.entry.module_name();
        if reason.is_clean() {
            tracing::debug!(pid, module, %reason, "process exited");
        } else {
            tracing::error!(pid, module, %reason, "process crashed");
        }
    }
}

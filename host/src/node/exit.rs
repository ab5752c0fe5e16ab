//! The exit sequence: what happens in the node when a process ends, however it ends.

use std::sync::Arc;

use super::NodeInner;
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

    /// Tell one watcher that the process exited `reason`.
    fn tell(&self, w: Watcher, reason: &ExitReason) {
        match w {
            Watcher::Monitor { mref, watcher } => {
                self.node
                    .deliver_down(watcher, mref, self.entry.pid, reason.clone())
            }
            Watcher::Waiter(tx) => {
                let _ = tx.send(reason.clone());
            }
            Watcher::Channel(tx) => {
                let _ = tx.send((self.entry.pid, reason.clone()));
            }
        }
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = self.reason.take().unwrap_or(ExitReason::Killed);
        let (watchers, links) = self.entry.set_exited(reason.clone());
        self.node.remove(&self.entry);
        for w in watchers {
            self.tell(w, &reason);
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
        // Watchers that came while the others were told: after them, as they would have
        // been had they come a moment later (a `wait_exit` that returns has the
        // supervisor told already).
        for w in self.entry.set_announced() {
            self.tell(w, &reason);
        }
        let pid = self.entry.pid;
        let module = self.entry.module_name();
        if reason.is_clean() {
            tracing::debug!(pid, module, %reason, "process exited");
        } else {
            tracing::error!(pid, module, %reason, "process crashed");
        }
    }
}

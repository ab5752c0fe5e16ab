//! What an embedded process receives: messages in their senders' order, and calls to answer.

use std::sync::Arc;

use super::{Core, MonitorRef};
use crate::Pid;
use crate::exit::ExitReason;
use crate::mailbox::ReplySlot;
use crate::term::Term;

/// What an embedded process receives, in the order its senders sent it.
#[derive(Debug)]
pub enum Received {
    /// A plain message (`send`), as CBOR.
    Message(Term),
    /// A cast, as CBOR.
    Cast(Term),
    /// A call, to answer with [`IncomingCall::reply`].
    Call(IncomingCall),
    /// A monitored process exited (`noproc` if it was not alive when monitored).
    Down {
        /// What [`EmbeddedProcess::monitor`](crate::EmbeddedProcess::monitor) returned.
        monitor: MonitorRef,
        /// The process that exited.
        pid: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A timer armed with `start-timer` by another process fired, aimed at this one.
    Timer {
        /// The timer's reference.
        timer: u64,
        /// Its message, as CBOR.
        msg: Term,
    },
    /// An exit signal, received as a message because this process traps exits.
    Exit {
        /// Who sent it: a linked process that exited, or the caller of `exit` (0 when not a
        /// process).
        from: Pid,
        /// Its reason.
        reason: ExitReason,
    },
}

/// A call made to an embedded process. Answer it with [`IncomingCall::reply`]; dropped
/// unanswered, it stays pending until the caller times out or this process exits.
pub struct IncomingCall {
    pub(super) request: Term,
    pub(super) caller: Pid,
    pub(super) slot: Option<ReplySlot>,
    pub(super) core: Arc<Core>,
}

impl IncomingCall {
    /// The request, as CBOR.
    pub fn request(&self) -> &Term {
        &self.request
    }

    /// The calling process (0 when the caller is not a process).
    pub fn caller(&self) -> Pid {
        self.caller
    }

    /// Answer with a CBOR reply. A caller that gave up is skipped.
    pub fn reply(mut self, reply: Term) {
        if let Some(slot) = self.slot.take() {
            let _ = slot.send(self.core.node.check_reply(reply));
        }
    }
}

impl std::fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingCall")
            .field("caller", &self.caller)
            .field(
                "request",
                &format_args!("{}", crate::term::shown(&self.request)),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for IncomingCall {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.core.keep_pending(slot);
        }
    }
}

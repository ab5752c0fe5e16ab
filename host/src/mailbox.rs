//! A process's mailbox: messages in arrival order, and signals that overtake them.
//!
//! Signals (stop, a reply passed on from another process, state inspection) travel on their
//! own channel and are taken first, like BEAM's system messages. Every call carries its own
//! reply slot, so the server never scans its mailbox for a reply.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::error::CallError;
use crate::exit::ExitReason;
use crate::process::Pid;
use crate::term::Term;

/// Where a call's answer goes: the caller waits on the other end.
pub(crate) type ReplySlot = oneshot::Sender<Result<Term, CallError>>;

/// A message, handled in arrival order.
pub(crate) enum Message {
    /// A call; `caller` is 0 when the caller is not a process.
    Call {
        request: Term,
        caller: Pid,
        reply: ReplySlot,
    },
    /// A cast.
    Cast(Term),
    /// A plain message.
    Info(Term),
    /// A monitored process exited.
    Down {
        monitor: u64,
        pid: Pid,
        reason: ExitReason,
    },
}

/// A signal, handled before any message.
pub(crate) enum Signal {
    /// Run `terminate(reason)` and exit.
    Stop(ExitReason),
    /// Answer a call this process left pending (sent by whoever holds its `reply-to`).
    Reply { tag: u64, reply: Term },
    /// Export the state.
    GetState(oneshot::Sender<Result<Term, String>>),
    /// Handle only signals until `Resume`; messages queue meanwhile.
    Suspend,
    /// Handle messages again, in the order they arrived.
    Resume,
    /// An exit signal: from a link that exited, or from `exit`. `kill` is the untrappable
    /// kind (`exit(pid, kill)`).
    Exit {
        from: Pid,
        reason: ExitReason,
        kill: bool,
    },
}

/// The sending side, kept in the process table.
pub(crate) struct MailboxSender {
    messages: mpsc::UnboundedSender<Message>,
    signals: mpsc::UnboundedSender<Signal>,
    /// Messages queued and not yet taken, visible to operators (`ps`).
    queued: Arc<AtomicUsize>,
}

/// The receiving side, owned by the process.
pub(crate) struct Mailbox {
    pub(crate) messages: mpsc::UnboundedReceiver<Message>,
    pub(crate) signals: mpsc::UnboundedReceiver<Signal>,
    /// Messages taken for a batch and not handled: they come before anything in `messages`.
    stash: VecDeque<Message>,
    queued: Arc<AtomicUsize>,
}

pub(crate) fn mailbox() -> (MailboxSender, Mailbox) {
    let (mtx, mrx) = mpsc::unbounded_channel();
    let (stx, srx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        MailboxSender {
            messages: mtx,
            signals: stx,
            queued: queued.clone(),
        },
        Mailbox {
            messages: mrx,
            signals: srx,
            stash: VecDeque::new(),
            queued,
        },
    )
}

impl MailboxSender {
    /// Queue a message; gives it back if the process has exited.
    pub(crate) fn send(&self, msg: Message) -> Result<(), Message> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.messages.send(msg).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }

    /// Messages waiting, as far as the senders know.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queue a signal; gives it back if the process has exited.
    pub(crate) fn signal(&self, sig: Signal) -> Result<(), Signal> {
        self.signals.send(sig).map_err(|e| e.0)
    }
}

impl Message {
    /// Whether `handle-batch` may carry it. A `DOWN` may not: whether it is delivered depends
    /// on `demonitor` calls made by the messages before it.
    pub(crate) fn batchable(&self) -> bool {
        !matches!(self, Message::Down { .. })
    }
}

impl Mailbox {
    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.stash.len() + self.messages.len()
    }

    /// Whether a message waits, without taking it.
    pub(crate) fn has_message(&self) -> bool {
        !self.stash.is_empty() || !self.messages.is_empty()
    }

    /// Count a message taken from the channel.
    pub(crate) fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// The oldest message put back, if any.
    pub(crate) fn unstash(&mut self) -> Option<Message> {
        let msg = self.stash.pop_front()?;
        self.taken();
        Some(msg)
    }

    /// The next message if it is already queued and may join a batch.
    pub(crate) fn next_batchable(&mut self) -> Option<Message> {
        let msg = match self.unstash() {
            Some(m) => m,
            None => {
                let m = self.messages.try_recv().ok()?;
                self.taken();
                m
            }
        };
        if msg.batchable() {
            Some(msg)
        } else {
            self.put_back(std::iter::once(msg));
            None
        }
    }

    /// Put messages a batch did not handle back at the front, in their order.
    pub(crate) fn put_back(&mut self, msgs: impl DoubleEndedIterator<Item = Message>) {
        for msg in msgs.rev() {
            self.queued.fetch_add(1, Ordering::Relaxed);
            self.stash.push_front(msg);
        }
    }
}

//! A process's mailbox: messages and exit signals in arrival order, and signals that overtake
//! them.
//!
//! What one process sends another that may become a message keeps the order it was sent in,
//! as on the BEAM: plain messages, casts, calls, `DOWN`, and exit signals. An exit signal
//! travels in the message queue, in its sender's order, and is *taken* as soon as the process
//! next looks at its mailbox, however many messages wait before it (as the BEAM processes its
//! signal queue before its message queue). Taken, it becomes an `EXIT` message in that very
//! place if the process traps exits at that moment, and is handed to the process at once
//! otherwise, so a process that does not trap exits still dies promptly behind a long queue.
//!
//! Other signals (stop, kill, a reply passed on from another process, state inspection,
//! suspend and resume) wait in their own queue and are taken first, like BEAM's system
//! messages. Every call carries its own reply slot, so the server never scans its mailbox for
//! a reply.
//!
//! A mailbox may be bounded ([`MailboxBound`]): the messages that may be dropped (calls,
//! casts, plain and timer messages) are counted against the bound and, once it is reached,
//! what arrives is refused or dropped by its policy (see [`crate::Overflow`]). Signals and
//! what stands for one in the message queue (exit signals, `DOWN`) are never dropped nor
//! counted. A bounded mailbox hands its messages over one at a time, so that all waiting
//! messages stay where senders see them and `drop_oldest` can drop the oldest; an unbounded
//! one pays a single branch for all this.
//!
//! Both queues sit behind one short-held lock. A channel per queue would cost each process
//! two preallocated blocks (about 4 KiB, more than a hibernated process needs for everything
//! else), whereas an empty queue costs nothing; and the lock lets the process take every
//! waiting message at once, so a burst of messages costs it one lock, not one per message.
//! The message queues are kept in chunks ([`queue`]): a long queue is never copied to grow,
//! and gives its memory back as the process takes its messages.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::oneshot;

use crate::Pid;
use crate::error::CallError;
use crate::exit::ExitReason;
use crate::process_limits::{MailboxBound, Overflow};
use crate::term::{QueuedTerm, Term};
use queue::Queue;

mod queue;

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
    Cast(QueuedTerm),
    /// A plain message.
    Info(QueuedTerm),
    /// A `start-timer` timer fired.
    Timer { timer: u64, msg: QueuedTerm },
    /// A monitored process exited.
    Down {
        monitor: u64,
        pid: Pid,
        reason: ExitReason,
    },
    /// An exit signal (any but the untrappable kill). Still in transit, it keeps its place
    /// among its sender's messages; once taken by a process that traps exits, it is that
    /// process's `EXIT` message.
    Exit { from: Pid, reason: ExitReason },
}

/// A signal, handled before any message.
pub(crate) enum Signal {
    /// Run `terminate(reason)` and exit.
    Stop(ExitReason),
    /// Answer a call this process left pending (sent by whoever holds its `reply-to`).
    Reply { tag: u64, reply: Term },
    /// Export the state.
    GetState(oneshot::Sender<Result<Term, String>>),
    /// Replace the state (`restore-state`); answers the state the process then holds.
    ReplaceState {
        state: Term,
        reply: oneshot::Sender<Result<Term, crate::error::ReplaceStateError>>,
    },
    /// Handle only signals until `Resume`; messages queue meanwhile.
    Suspend,
    /// Handle messages again, in the order they arrived.
    Resume,
    /// The untrappable exit signal (`exit(pid, kill)`): exit `killed`, without `terminate`.
    Kill,
    /// Change to another version of the module's code, between two callbacks. The order
    /// (`process::UpgradeOrder`) is opaque here, so that the mailbox stays below the process
    /// and the code it runs.
    Upgrade(Box<dyn std::any::Any + Send>),
}

/// What both sides share.
struct Shared {
    queues: Mutex<Queues>,
    /// Messages and exit signals handed to the process, less those it put back (wrapping):
    /// what was queued and is no longer, for operators (`ps`) with `Queues::sent`. Only the
    /// process writes it (from its `Mailbox`), so a load and a store, not an atomic
    /// read-modify-write, which would cost each message as much as the queue's lock does.
    taken: AtomicUsize,
    /// The bound, if any: boxed, so that an unbounded mailbox pays one word for it.
    bounded: Option<Box<Bounded>>,
}

/// A bounded mailbox's bound and counters.
struct Bounded {
    bound: MailboxBound,
    /// Droppable messages waiting (sent and not yet handed to the process).
    held: AtomicUsize,
    /// Messages refused by `reject`.
    rejected: AtomicU64,
    /// Messages dropped by `drop_oldest` or `drop_newest`.
    dropped: AtomicU64,
    /// The reply slots of calls `drop_newest` dropped: their callers wait until their own
    /// timeout, as for a server that never answers; slots whose caller gave up are pruned.
    /// Taken only under the queues' lock, so never contended.
    unanswered: Mutex<Vec<ReplySlot>>,
}

/// What a bounded mailbox refused or dropped since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Overflowed {
    pub(crate) rejected: u64,
    pub(crate) dropped: u64,
}

#[derive(Default)]
struct Queues {
    messages: Queue<Message>,
    signals: VecDeque<Signal>,
    /// Exit signals among `messages`, not yet taken.
    exits: usize,
    /// Messages and exit signals ever queued (wrapping), counted under the lock.
    sent: usize,
    /// The process waiting for either queue.
    waker: Option<Waker>,
    /// The process has exited: nothing more is accepted.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Nothing panics while the lock is held, so the queues are consistent even if poisoned.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side, kept in the process table.
pub(crate) struct MailboxSender {
    shared: Arc<Shared>,
}

/// The receiving side, owned by the process. Dropping it closes the mailbox: what is still
/// queued is dropped, so waiting callers learn that the process is gone.
pub(crate) struct Mailbox {
    shared: Arc<Shared>,
    /// Messages taken from the shared queue (or put back by a batch), ahead of it.
    taken: Queue<Message>,
}

/// A mailbox, bounded by `bound` if given.
pub(crate) fn mailbox(bound: Option<MailboxBound>) -> (MailboxSender, Mailbox) {
    let shared = Arc::new(Shared {
        queues: Mutex::new(Queues::default()),
        taken: AtomicUsize::new(0),
        bounded: bound.map(|bound| {
            Box::new(Bounded {
                // At least 1, however the bound was built (its fields are public).
                bound: MailboxBound::new(bound.bound, bound.policy),
                held: AtomicUsize::new(0),
                rejected: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                unanswered: Mutex::new(Vec::new()),
            })
        }),
    });
    (
        MailboxSender {
            shared: shared.clone(),
        },
        Mailbox {
            shared,
            taken: Queue::default(),
        },
    )
}

/// What [`Mailbox::recv`] returns.
pub(crate) enum Received {
    Signal(Signal),
    Message(Message),
    /// An exit signal the process did not trap when it took it: it acts on it now.
    Exit {
        from: Pid,
        reason: ExitReason,
    },
}

impl MailboxSender {
    /// Queue a message; gives it back if the process has exited. A bounded mailbox that is
    /// full may refuse or drop it (or an older one) instead, by its policy: that is not an
    /// error to the sender.
    pub(crate) fn send(&self, msg: Message) -> Result<(), Message> {
        if let Some(bounded) = &self.shared.bounded
            && msg.droppable()
        {
            return self.send_bounded(bounded, msg);
        }
        self.push(msg, |queues, msg| {
            queues.messages.push_back(msg);
            queues.sent = queues.sent.wrapping_add(1);
        })
    }

    /// [`MailboxSender::send`] of a droppable message to a bounded mailbox.
    fn send_bounded(&self, bounded: &Bounded, msg: Message) -> Result<(), Message> {
        let mut victim = None;
        let r = self.push(msg, |queues, msg| {
            if bounded.held.load(Ordering::Relaxed) < bounded.bound.bound {
                bounded.held.fetch_add(1, Ordering::Relaxed);
                queues.sent = queues.sent.wrapping_add(1);
                queues.messages.push_back(msg);
                return;
            }
            match bounded.bound.policy {
                Overflow::Reject => {
                    bounded.rejected.fetch_add(1, Ordering::Relaxed);
                    victim = Some(msg);
                }
                Overflow::DropNewest => {
                    bounded.dropped.fetch_add(1, Ordering::Relaxed);
                    match msg {
                        Message::Call { reply, .. } => bounded.leave_unanswered(reply),
                        msg => victim = Some(msg),
                    }
                }
                Overflow::DropOldest => {
                    bounded.dropped.fetch_add(1, Ordering::Relaxed);
                    let oldest = queues.messages.iter().position(Message::droppable);
                    match oldest {
                        Some(i) => {
                            victim = queues.messages.remove(i);
                            queues.messages.push_back(msg);
                        }
                        // All the waiting ones are already in the process's hands (a batch
                        // put back, messages behind an exit signal): the newest goes.
                        None => victim = Some(msg),
                    }
                }
            }
        });
        // Answered outside the lock: the caller wakes at once.
        if let Some(Message::Call { reply, .. }) = victim {
            let _ = reply.send(Err(CallError::Busy));
        }
        r
    }

    /// The bound, if any.
    pub(crate) fn bound(&self) -> Option<usize> {
        self.shared.bounded.as_ref().map(|b| b.bound.bound)
    }

    /// What this mailbox refused or dropped; `None` when it is unbounded.
    pub(crate) fn overflowed(&self) -> Option<Overflowed> {
        self.shared.bounded.as_ref().map(|b| Overflowed {
            rejected: b.rejected.load(Ordering::Relaxed),
            dropped: b.dropped.load(Ordering::Relaxed),
        })
    }

    /// Queue an exit signal behind what its sender sent before; gives it back if the process
    /// has exited.
    pub(crate) fn exit(&self, from: Pid, reason: ExitReason) -> Result<(), (Pid, ExitReason)> {
        self.push((from, reason), |queues, (from, reason)| {
            queues.messages.push_back(Message::Exit { from, reason });
            queues.exits += 1;
            queues.sent = queues.sent.wrapping_add(1);
        })
    }

    /// Messages waiting, as far as the senders know.
    pub(crate) fn queued(&self) -> usize {
        // Read before `sent`, so it counts only what `sent` has counted: never more.
        let taken = self.shared.taken.load(Ordering::Relaxed);
        self.shared.lock().sent.wrapping_sub(taken)
    }

    /// Queue a signal; gives it back if the process has exited.
    pub(crate) fn signal(&self, sig: Signal) -> Result<(), Signal> {
        self.push(sig, |queues, sig| queues.signals.push_back(sig))
    }

    /// Queue `item` with `enqueue` unless the process has exited, then wake the process
    /// (outside the lock, which it will take at once).
    fn push<T>(&self, item: T, enqueue: impl FnOnce(&mut Queues, T)) -> Result<(), T> {
        let mut queues = self.shared.lock();
        if queues.closed {
            return Err(item);
        }
        enqueue(&mut queues, item);
        let waker = queues.waker.take();
        drop(queues);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

/// A message with a larger term enters the guest alone: batching would copy it twice for
/// nothing.
pub(crate) const MAX_BATCHED_TERM: usize = 64 * 1024;

impl Bounded {
    /// Keep a dropped call's reply slot, so that its caller waits for its own timeout; the
    /// slots of callers that gave up are pruned as the list doubles.
    fn leave_unanswered(&self, reply: ReplySlot) {
        let mut slots = self
            .unanswered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slots.len() == slots.capacity() {
            slots.retain(|slot| !slot.is_closed());
        }
        slots.push(reply);
    }
}

impl Message {
    /// Whether a bounded mailbox counts it against its bound and may drop it: not a `DOWN`
    /// nor an exit signal, which stand for signals.
    pub(crate) fn droppable(&self) -> bool {
        !matches!(self, Message::Down { .. } | Message::Exit { .. })
    }

    /// Whether `handle-batch` may carry it. A `DOWN` may not: whether it is delivered depends
    /// on `demonitor` calls made by the messages before it. Nor may an `EXIT`, which has no
    /// envelope, or a large message.
    pub(crate) fn batchable(&self) -> bool {
        match self {
            Message::Call { request, .. } => request.len() <= MAX_BATCHED_TERM,
            Message::Cast(term) | Message::Info(term) => term.len() <= MAX_BATCHED_TERM,
            Message::Down { .. } | Message::Exit { .. } | Message::Timer { .. } => false,
        }
    }
}

impl Mailbox {
    /// Wait for the next signal, or message if `messages` (a suspended process takes only
    /// signals). Signals come first; then exit signals in transit, taken whether or not
    /// `messages`: one from `from` becomes an `EXIT` message in its place if `traps(from)`
    /// holds now, and is returned at once otherwise.
    pub(crate) async fn recv(&mut self, messages: bool, traps: impl Fn(Pid) -> bool) -> Received {
        poll_fn(|cx| self.poll_recv(cx, messages, &traps)).await
    }

    /// [`Mailbox::recv`] as a poll: registers `cx`'s waker, which any send wakes.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        messages: bool,
        traps: impl Fn(Pid) -> bool,
    ) -> Poll<Received> {
        let mut queues = self.shared.lock();
        let one = self.shared.bounded.is_some();
        if let Some(received) = take(&mut self.taken, &mut queues, messages, one, &traps) {
            self.count_out(&received);
            crate::runtime::worked();
            return Poll::Ready(received);
        }
        // Registered under the lock, so a sender that queues after this will wake it.
        match &mut queues.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// [`Mailbox::recv`] without waiting, and without touching the registered waker.
    pub(crate) fn try_recv(
        &mut self,
        messages: bool,
        traps: impl Fn(Pid) -> bool,
    ) -> Option<Received> {
        let mut queues = self.shared.lock();
        let one = self.shared.bounded.is_some();
        let received = take(&mut self.taken, &mut queues, messages, one, &traps)?;
        self.count_out(&received);
        Some(received)
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.taken.len() + self.shared.lock().messages.len()
    }

    /// Whether a message waits, without taking it.
    pub(crate) fn has_message(&self) -> bool {
        !self.taken.is_empty() || !self.shared.lock().messages.is_empty()
    }

    /// Count what was taken as no longer queued, unless it is a signal (never counted).
    fn count_out(&self, received: &Received) {
        match received {
            Received::Signal(_) => {}
            Received::Message(msg) => self.handed_out(msg),
            Received::Exit { .. } => self.count_taken(1),
        }
    }

    /// Add `n` (wrapping) to what the process has taken. Only `&mut self` methods of the
    /// process's own mailbox come here, so nothing else writes the count meanwhile.
    fn count_taken(&self, n: isize) {
        let taken = &self.shared.taken;
        taken.store(
            taken.load(Ordering::Relaxed).wrapping_add_signed(n),
            Ordering::Relaxed,
        );
    }

    /// Count a message handed to the process as no longer queued.
    fn handed_out(&self, msg: &Message) {
        self.count_taken(1);
        if let Some(bounded) = &self.shared.bounded
            && msg.droppable()
        {
            bounded.held.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The next message if it is already queued and may join a batch. An exit signal in
    /// transit ends the batch: the next `recv` takes it.
    pub(crate) fn next_batchable(&mut self) -> Option<Message> {
        if self.taken.is_empty() {
            let mut queues = self.shared.lock();
            if queues.exits > 0 {
                return None;
            }
            if self.shared.bounded.is_some() {
                // One at a time, as `take` does for a bounded mailbox.
                if !queues.messages.front()?.batchable() {
                    return None;
                }
                let msg = queues.messages.pop_front()?;
                drop(queues);
                self.handed_out(&msg);
                return Some(msg);
            }
            std::mem::swap(&mut self.taken, &mut queues.messages);
        }
        if !self.taken.front()?.batchable() {
            return None;
        }
        let msg = self.taken.pop_front()?;
        self.handed_out(&msg);
        Some(msg)
    }

    /// Put messages a batch did not handle back at the front, in their order.
    pub(crate) fn put_back(&mut self, msgs: impl DoubleEndedIterator<Item = Message>) {
        for msg in msgs.rev() {
            self.count_taken(-1);
            if let Some(bounded) = &self.shared.bounded
                && msg.droppable()
            {
                bounded.held.fetch_add(1, Ordering::Relaxed);
            }
            self.taken.push_front(msg);
        }
    }
}

/// The next signal, exit signal or (if `messages`) message; `one` (a bounded mailbox) takes
/// messages from the shared queue one at a time, instead of all that wait at once.
fn take(
    taken: &mut Queue<Message>,
    queues: &mut Queues,
    messages: bool,
    one: bool,
    traps: &impl Fn(Pid) -> bool,
) -> Option<Received> {
    if let Some(sig) = queues.signals.pop_front() {
        return Some(Received::Signal(sig));
    }
    if queues.exits > 0
        && let Some(exit) = take_in_transit(taken, queues, traps)
    {
        return Some(exit);
    }
    if messages {
        if taken.is_empty() {
            if one {
                return queues.messages.pop_front().map(Received::Message);
            }
            std::mem::swap(taken, &mut queues.messages);
        }
        if let Some(msg) = taken.pop_front() {
            return Some(Received::Message(msg));
        }
    }
    None
}

/// Move what is in transit behind the messages already `taken`, in order, taking each exit
/// signal on the way: trapped, it stays in its place as an `EXIT` message; otherwise it is
/// returned (no longer queued), and whatever came after it stays in transit.
fn take_in_transit(
    taken: &mut Queue<Message>,
    queues: &mut Queues,
    traps: &impl Fn(Pid) -> bool,
) -> Option<Received> {
    while let Some(msg) = queues.messages.pop_front() {
        match msg {
            Message::Exit { from, reason } => {
                queues.exits -= 1;
                if traps(from) {
                    taken.push_back(Message::Exit { from, reason });
                } else {
                    return Some(Received::Exit { from, reason });
                }
            }
            msg => taken.push_back(msg),
        }
    }
    None
}

#[cfg(test)]
impl Mailbox {
    /// Messages both queues have room for.
    fn slots(&self) -> usize {
        self.taken.capacity() + self.shared.lock().messages.capacity()
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let mut queues = self.shared.lock();
        queues.closed = true;
        let messages = std::mem::take(&mut queues.messages);
        let signals = std::mem::take(&mut queues.signals);
        let unanswered = self.shared.bounded.as_ref().map(|b| {
            std::mem::take(&mut *b.unanswered.lock().unwrap_or_else(PoisonError::into_inner))
        });
        queues.waker = None;
        drop(queues);
        // Dropped outside the lock: a call's reply slot wakes its caller.
        drop((messages, signals, unanswered));
    }
}

#[cfg(test)]
mod tests;

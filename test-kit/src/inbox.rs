//! A mailbox the test reads with selective receive: what a pattern does not match stays, in
//! arrival order, for a later assertion, as in Erlang's `receive`.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use otter::{EmbeddedProcess, ReceiveError};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::message::Message;

/// Anything [`assert_receive!`](crate::assert_receive) and
/// [`refute_receive!`](crate::refute_receive) read: a [`Probe`](crate::Probe) or a
/// [`Mock`](crate::Mock).
pub trait Mailbox {
    #[doc(hidden)]
    fn inbox(&self) -> &Inbox;
}

impl<M: Mailbox + ?Sized> Mailbox for &M {
    fn inbox(&self) -> &Inbox {
        (**self).inbox()
    }
}

/// The messages that arrived and were not taken, and where new ones come from.
#[doc(hidden)]
pub struct Inbox {
    /// How failures name it: `probe <5>`, ``mock `store` <6>``.
    owner: String,
    saved: Mutex<VecDeque<Message>>,
    source: Source,
}

enum Source {
    /// A probe's process, received from on demand.
    Process(EmbeddedProcess),
    /// A mock's task pushes into `saved` and notifies.
    Fed(Notify),
}

/// Why no message matched.
#[doc(hidden)]
pub enum Missed {
    /// Nothing matching arrived in time.
    Timeout,
    /// The probe's process exited (a linked process crashed, it was killed...).
    Exited(otter::ExitReason),
}

impl Inbox {
    pub(crate) fn process(owner: String, process: EmbeddedProcess) -> Inbox {
        Inbox {
            owner,
            saved: Mutex::default(),
            source: Source::Process(process),
        }
    }

    pub(crate) fn fed(owner: String) -> Inbox {
        Inbox {
            owner,
            saved: Mutex::default(),
            source: Source::Fed(Notify::new()),
        }
    }

    /// The probe's process (a fed inbox has none).
    pub(crate) fn embedded(&self) -> Option<&EmbeddedProcess> {
        match &self.source {
            Source::Process(p) => Some(p),
            Source::Fed(_) => None,
        }
    }

    /// The probe's process, taken out to end it.
    pub(crate) fn into_process(self) -> Option<EmbeddedProcess> {
        match self.source {
            Source::Process(p) => Some(p),
            Source::Fed(_) => None,
        }
    }

    /// Append a message a mock's task received.
    pub(crate) fn push(&self, message: Message) {
        self.saved().push_back(message);
        if let Source::Fed(notify) = &self.source {
            notify.notify_one();
        }
    }

    fn saved(&self) -> MutexGuard<'_, VecDeque<Message>> {
        // A panicking guard poisons the lock; the messages are still whole.
        self.saved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the first message, in arrival order, that `matches`, waiting up to `timeout` for
    /// one; the others stay.
    pub async fn take(
        &self,
        matches: impl Fn(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, Missed> {
        let deadline = Instant::now().checked_add(timeout);
        let mut checked = 0;
        loop {
            let notified = match &self.source {
                Source::Fed(notify) => Some(notify.notified()),
                Source::Process(_) => None,
            };
            {
                let mut saved = self.saved();
                while checked < saved.len() {
                    if matches(&saved[checked]) {
                        return Ok(saved.remove(checked).expect("index checked"));
                    }
                    checked += 1;
                }
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match &self.source {
                Source::Process(process) => match process.receive(left).await {
                    Ok(received) => self.saved().push_back(received.into()),
                    Err(ReceiveError::Timeout) => return Err(Missed::Timeout),
                    Err(ReceiveError::Exited(reason)) => return Err(Missed::Exited(reason)),
                },
                Source::Fed(_) => {
                    let notified = notified.expect("a fed inbox waits on its notify");
                    match left {
                        Some(left) => tokio::time::timeout(left, notified)
                            .await
                            .map_err(|_| Missed::Timeout)?,
                        None => notified.await,
                    }
                }
            }
        }
    }

    /// Every message waiting, in arrival order (taking in any that already arrived).
    pub(crate) fn snapshot(&self) -> Vec<Message> {
        if let Source::Process(process) = &self.source {
            while let Ok(Some(received)) = process.try_receive() {
                self.saved().push_back(received.into());
            }
        }
        self.saved().iter().cloned().collect()
    }

    /// The failure report of an assertion: what was looked for, then what is waiting.
    pub fn report(
        &self,
        headline: &str,
        mismatch: impl Fn(&Message) -> Option<String>,
        exited: Option<&otter::ExitReason>,
    ) -> String {
        let waiting = self.snapshot();
        let mut text = format!("{headline}\n");
        if let Some(reason) = exited {
            let _ = writeln!(text, "{} exited: {reason}", self.owner);
        }
        if waiting.is_empty() {
            let _ = write!(text, "{}'s mailbox is empty", self.owner);
        } else {
            let _ = write!(
                text,
                "{}'s mailbox holds {} message{}:",
                self.owner,
                waiting.len(),
                if waiting.len() == 1 { "" } else { "s" }
            );
            for (n, message) in waiting.iter().enumerate() {
                let _ = write!(text, "\n  {}. {message}", n + 1);
                if let Some(why) = mismatch(message) {
                    let _ = write!(text, "\n     ({why})");
                }
            }
        }
        text
    }

    /// How failures name it.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

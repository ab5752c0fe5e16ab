//! What one process may use, beside the node's limits: its linear memory, how long one
//! callback may run, and how many messages may wait in its mailbox.

use std::time::Duration;

/// The default [`crate::NodeConfig::callback_timeout`]: a callback that has run this long
/// is a runaway (OTP has no such limit; a BEAM process in an endless loop burns a scheduler
/// for ever).
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// One process's limits, each tighter than the node's or unset (the node's then applies).
///
/// ```
/// use std::time::Duration;
/// use otter::{MailboxBound, Overflow, ProcessLimits, SpawnOptions};
///
/// let limits = ProcessLimits::default()
///     .memory(4 << 20)
///     .callback_timeout(Duration::from_millis(500))
///     .mailbox(MailboxBound::new(1000, Overflow::Reject));
/// let opts = SpawnOptions::default().limits(limits);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessLimits {
    pub(crate) memory: Option<usize>,
    pub(crate) callback_timeout: Option<Duration>,
    pub(crate) mailbox: Option<MailboxBound>,
}

impl ProcessLimits {
    /// The most linear memory the process may have, in bytes; past it the process exits
    /// `memory_limit`. It can only lower the node's
    /// [`EngineConfig::max_memory`](crate::EngineConfig::max_memory), which sizes every
    /// process's memory slot: a larger value is cut to it. Default: the node's.
    pub fn memory(mut self, bytes: usize) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// How long one callback may run; past it the process exits `timeout`. Only time spent
    /// running the guest's code counts, measured in epoch ticks: time waiting in an import
    /// (a `call`, a `sleep`) does not. Default: the node's
    /// [`NodeConfig::callback_timeout`](crate::NodeConfig::callback_timeout).
    pub fn callback_timeout(mut self, limit: Duration) -> Self {
        self.callback_timeout = Some(limit);
        self
    }

    /// Bound the mailbox. Default: unbounded, as in OTP.
    pub fn mailbox(mut self, bound: MailboxBound) -> Self {
        self.mailbox = Some(bound);
        self
    }

    /// The memory limit set, if any.
    pub fn memory_limit(&self) -> Option<usize> {
        self.memory
    }

    /// The callback timeout set, if any.
    pub fn callback_timeout_limit(&self) -> Option<Duration> {
        self.callback_timeout
    }

    /// The mailbox bound set, if any.
    pub fn mailbox_bound(&self) -> Option<MailboxBound> {
        self.mailbox
    }
}

/// How many messages may wait in a mailbox, and what happens to one more.
///
/// Signals, and what stands for one among the messages (exit signals, `DOWN`), are never
/// dropped nor counted against the bound: overload must not hide a death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxBound {
    /// The most messages that may wait.
    pub bound: usize,
    /// What happens to a message arriving at a full mailbox.
    pub policy: Overflow,
}

impl MailboxBound {
    /// A bound of `bound` messages (at least 1) with `policy`.
    pub fn new(bound: usize, policy: Overflow) -> Self {
        MailboxBound {
            bound: bound.max(1),
            policy,
        }
    }
}

/// What a full mailbox does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse it: a call is answered [`CallError::Busy`](crate::CallError::Busy) at once;
    /// a cast, plain message or timer message is dropped. Counted as rejected.
    Reject,
    /// Drop the oldest waiting message to make room (a dropped call's caller gets
    /// [`CallError::Busy`](crate::CallError::Busy) at once). Counted as dropped.
    DropOldest,
    /// Drop the arriving message silently, a call included: its caller waits until its
    /// timeout, as the caller of an overloaded OTP server does. Counted as dropped.
    DropNewest,
}

impl Overflow {
    /// The manifest's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::Reject => "reject",
            Overflow::DropOldest => "drop_oldest",
            Overflow::DropNewest => "drop_newest",
        }
    }
}

impl std::str::FromStr for Overflow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reject" => Ok(Overflow::Reject),
            "drop_oldest" => Ok(Overflow::DropOldest),
            "drop_newest" => Ok(Overflow::DropNewest),
            _ => Err(format!(
                "unknown policy `{s}` (reject | drop_oldest | drop_newest)"
            )),
        }
    }
}

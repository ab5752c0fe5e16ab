//! What a process is told when its module is upgraded, and what it answers.
//!
//! An upgrade is two-phase, so that a module's processes change version all together or not
//! at all. The process takes the [`UpgradeOrder`] between two callbacks (a process inside a
//! callback, or blocked in a `call` or `sleep` there, finishes it first), migrates its state
//! into an instance of the new version, answers [`Prepared`] or a [`Refusal`], and then
//! handles nothing until the decision arrives: commit (run the new instance) or not (resume
//! the old one, kept for this, with its state as it was). Its mailbox fills meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::engine::Module;
use crate::term::Term;

/// Change a process to `to`'s code.
pub(crate) struct UpgradeOrder {
    pub(crate) to: Arc<Module>,
    /// The `extra` argument of `code-change`.
    pub(crate) extra: Term,
    /// How long `code-change` (with the new instance's instantiation) may take.
    pub(crate) timeout: Duration,
    /// Migrate a hibernating process now instead of when it wakes.
    pub(crate) eager: bool,
    /// Refuse unless the process is suspended (OTP's `sys:change_code`).
    pub(crate) only_if_suspended: bool,
    pub(crate) prepared: oneshot::Sender<Result<Prepared, Refusal>>,
    /// `true`: commit. `false` or dropped: resume on the old version.
    pub(crate) decision: oneshot::Receiver<bool>,
}

/// The process is ready to run the new version once the upgrade commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Its state went through the new version's `code-change`.
    Migrated,
    /// It hibernates: its state goes through `code-change` when it wakes.
    Deferred,
}

/// Why a process stays on its old version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `change_code` on a process that is not suspended.
    NotSuspended,
    /// `code-change` refused, trapped, ran out of memory or time; or the old instance
    /// trapped exporting its state (the process then exits).
    Failed(String),
}

/// The state of a hibernating process, written by `from` and not migrated yet: the
/// process's module's `code-change` migrates it when the process wakes.
pub(crate) struct Migration {
    pub(crate) from: Arc<Module>,
    pub(crate) extra: Term,
    pub(crate) timeout: Duration,
}

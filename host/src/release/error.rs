//! Why a reload or rollback did not happen.

use super::Step;
use crate::manifest::ManifestError;

/// Why [`super::ReleaseHandler::reload`] or [`super::ReleaseHandler::rollback`] failed.
/// In every case the node runs the release it ran before.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new manifest does not parse or check: its file, line and field.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A reload, rollback or module upgrade is running.
    #[error("{0}; try again when it ends")]
    Busy(String),
    /// No release to roll back to.
    #[error("no previous release to roll back to")]
    NoPrevious,
    /// The plan cannot be made (a module that is not a server, the same vsn without
    /// force, the root supervisor gone); nothing changed.
    #[error("{0}")]
    Refused(String),
    /// A step failed; the steps before it were undone in reverse order.
    #[error("{}", failed(*.index, *.count, .step, .reason, .undo_failures))]
    StepFailed {
        /// The failed step's index in the plan (from 0).
        index: usize,
        /// How many steps the plan has.
        count: usize,
        /// The step.
        step: Box<Step>,
        /// Why it failed.
        reason: String,
        /// Undo steps that failed in turn, with why (empty when all went back).
        undo_failures: Vec<String>,
    },
}

fn failed(index: usize, count: usize, step: &Step, reason: &str, undo: &[String]) -> String {
    let mut text = format!("step {} of {count} ({step}) failed: {reason}; ", index + 1);
    if undo.is_empty() {
        text.push_str(&format!(
            "the {index} step(s) before it were undone: the node runs the release it ran before"
        ));
    } else {
        text.push_str(&format!(
            "undoing the steps before it failed too: {}",
            undo.join("; ")
        ));
    }
    text
}

//! Why an upgrade did not happen, or did not happen everywhere.

use std::path::PathBuf;

use super::UpgradeReport;
use crate::Pid;
use crate::error::LoadError;

/// Why [`crate::Node::upgrade`] or [`crate::Node::change_code`] failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// No module is loaded under that name.
    #[error("no module {0} is loaded")]
    UnknownModule(String),
    /// The new code's file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The new code is larger than [`super::MAX_MODULE_BYTES`].
    #[error("the module is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The new code is not a valid Otter server; nothing changed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The new code is byte for byte the code the module runs: nothing to do.
    #[error("module {module} already runs these exact bytes (vsn {vsn}): nothing to do")]
    Unchanged {
        /// The module.
        module: String,
        /// Its version.
        vsn: String,
    },
    /// Other bytes with the running `vsn`: refused unless forced.
    #[error(
        "module {module}: the new code reports the running vsn {vsn:?}; bump its vsn, or force the upgrade"
    )]
    SameVsn {
        /// The module.
        module: String,
        /// The version both report.
        vsn: String,
    },
    /// The module is being upgraded already.
    #[error("module {0} is being upgraded already; try again when that upgrade ends")]
    InProgress(String),
    /// A release is being installed ([`crate::release::ReleaseHandler::reload`] or
    /// `rollback`), which upgrades the modules it changes itself.
    #[error("a reload or rollback is running; try again when it ends")]
    Reloading,
    /// `extra` is over the node's maximum message size.
    #[error("badarg: {0}")]
    Badarg(String),
    /// No such process.
    #[error("no such process")]
    NoProc,
    /// `change_code` on a process that is not suspended.
    #[error("process {0} is not suspended (suspend it first)")]
    NotSuspended(Pid),
    /// Some processes stay on the old version: the report lists them with their reasons.
    #[error("{}", failed(.0))]
    Failed(Box<UpgradeReport>),
}

fn failed(r: &UpgradeReport) -> String {
    let mut text = format!(
        "upgrade of {} from vsn {} to {} failed in {} process(es); {}",
        r.module,
        r.from_vsn,
        r.to_vsn,
        r.failed.len(),
        if r.committed {
            format!(
                "{} others run vsn {}",
                r.upgraded.len() + r.deferred.len(),
                r.to_vsn
            )
        } else {
            format!("every process stays on vsn {}", r.from_vsn)
        }
    );
    for f in &r.failed {
        text.push_str(&format!("; pid {}: {}", f.pid, f.reason));
    }
    text
}

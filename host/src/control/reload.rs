//! `reload` and `rollback`: releases through the control endpoint.

use std::time::Duration;

use serde_json::Value;

use super::{ControlError, ErrorKind, Request};
use crate::release::{ReleaseHandler, ReloadError, ReloadOptions};
use crate::term::from_json;

pub(super) async fn handle(
    releases: Option<&ReleaseHandler>,
    request: Request,
) -> Result<Value, ControlError> {
    let releases = releases.ok_or_else(|| {
        ControlError::new(
            ErrorKind::Noproc,
            "this node was not started from a manifest: it has no release to reload",
        )
    })?;
    let options = |dry_run, extra: &Value, force, timeout_ms: Option<u64>| ReloadOptions {
        dry_run,
        extra: from_json(extra),
        force,
        timeout: timeout_ms.map_or(crate::DEFAULT_UPGRADE_TIMEOUT, Duration::from_millis),
    };
    let report = match request {
        Request::Reload {
            path,
            dry_run,
            extra,
            force,
            timeout_ms,
        } => {
            super::absolute("manifest", &path)?;
            releases
                .reload(&path, options(dry_run, &extra, force, timeout_ms))
                .await?
        }
        Request::Rollback {
            dry_run,
            extra,
            timeout_ms,
        } => {
            releases
                .rollback(options(dry_run, &extra, false, timeout_ms))
                .await?
        }
        _ => unreachable!("only release requests come here"),
    };
    Ok(serde_json::to_value(report).expect("a report is JSON"))
}

impl From<ReloadError> for ControlError {
    fn from(e: ReloadError) -> Self {
        let kind = match e {
            ReloadError::Busy(_) => ErrorKind::Busy,
            ReloadError::StepFailed { .. } => ErrorKind::Failed,
            ReloadError::Manifest(_) | ReloadError::NoPrevious | ReloadError::Refused(_) => {
                ErrorKind::Badarg
            }
        };
        ControlError::new(kind, e.to_string())
    }
}

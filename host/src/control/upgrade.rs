//! `upgrade` and `change_code`: hot code upgrade through the control endpoint.

use std::time::Duration;

use serde_json::Value;

use super::{ControlError, ErrorKind, Request};
use crate::Node;
use crate::term::from_json;

pub(super) async fn handle(node: &Node, request: Request) -> Result<Value, ControlError> {
    match request {
        Request::Upgrade {
            module,
            path,
            extra,
            policy,
            force,
            eager,
            timeout_ms,
        } => {
            super::absolute("new code's", &path)?;
            let opts = crate::UpgradeOptions {
                extra: from_json(&extra),
                policy,
                force,
                eager,
                timeout: timeout_ms.map_or(crate::DEFAULT_UPGRADE_TIMEOUT, Duration::from_millis),
            };
            let report = node.upgrade(&module, &path, opts).await?;
            Ok(serde_json::to_value(report).expect("a report is JSON"))
        }
        Request::ChangeCode {
            dest,
            extra,
            timeout_ms,
        } => {
            let timeout = timeout_ms.map_or(crate::DEFAULT_UPGRADE_TIMEOUT, Duration::from_millis);
            let report = node.change_code(dest, from_json(&extra), timeout).await?;
            Ok(serde_json::to_value(report).expect("a report is JSON"))
        }
        _ => unreachable!("only upgrade requests come here"),
    }
}

impl From<crate::UpgradeError> for ControlError {
    fn from(e: crate::UpgradeError) -> Self {
        use crate::UpgradeError as E;
        let kind = match e {
            E::Failed(_) => ErrorKind::Failed,
            E::InProgress(_) | E::Reloading => ErrorKind::Busy,
            E::NoProc => ErrorKind::Noproc,
            E::UnknownModule(_)
            | E::Io { .. }
            | E::TooLarge { .. }
            | E::Load(_)
            | E::Unchanged { .. }
            | E::SameVsn { .. }
            | E::NotSuspended(_)
            | E::Badarg(_) => ErrorKind::Badarg,
        };
        ControlError::new(kind, e.to_string())
    }
}

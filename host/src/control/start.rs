//! `start` and `start_child`: a process started from the control socket, unsupervised or
//! under a dynamic supervisor.

use serde_json::Value;

use super::{ControlError, ErrorKind};
use crate::dest::Dest;
use crate::error::StartError;
use crate::node::{Node, SpawnOptions};
use crate::supervisor::{ChildError, ChildFailure, SupervisorError};
use crate::term::from_json;

/// OTP's `gen_server:start`: a process of `module`, nobody's child; its pid, or `null` if its
/// `init` returned `ignore`.
pub(super) async fn start(
    node: &Node,
    module: &str,
    args: &Value,
    name: Option<String>,
) -> Result<Value, ControlError> {
    let mut opts = SpawnOptions::default();
    if let Some(name) = name {
        opts = opts.name(name);
    }
    match node.spawn(module, from_json(args), opts).await {
        Ok(pid) => Ok(Value::from(pid)),
        Err(StartError::Ignore) => Ok(Value::Null),
        Err(e) => Err(start_error(e)),
    }
}

/// OTP's `supervisor:start_child/2` on a dynamic supervisor.
pub(super) async fn start_child(
    node: &Node,
    supervisor: Dest,
    args: &Value,
) -> Result<Value, ControlError> {
    let Some(sup) = node.supervisor(&supervisor) else {
        return Err(ControlError::new(ErrorKind::Noproc, "no such supervisor"));
    };
    match sup.start_child_with(from_json(args)).await {
        Ok(pid) => Ok(pid.map_or(Value::Null, Value::from)),
        Err(ChildError::WrongStrategy) => Err(ControlError::new(
            ErrorKind::Badarg,
            "only a dynamic (simple_one_for_one) supervisor starts children from args",
        )),
        Err(e @ ChildError::Badarg(_)) => Err(ControlError::new(ErrorKind::Badarg, e.to_string())),
        Err(ChildError::NoProc) => Err(ControlError::new(
            ErrorKind::Noproc,
            "the supervisor has exited",
        )),
        Err(ChildError::Start(SupervisorError::Child {
            reason: ChildFailure::Worker(e),
            ..
        })) => Err(start_error(e)),
        Err(e) => Err(ControlError::new(ErrorKind::Failed, e.to_string())),
    }
}

fn start_error(e: StartError) -> ControlError {
    let kind = match e {
        StartError::AlreadyStarted(_) => ErrorKind::AlreadyStarted,
        StartError::UnknownModule(_)
        | StartError::Badarg(_)
        | StartError::Registry(_)
        | StartError::Grants(_) => ErrorKind::Badarg,
        StartError::Ignore
        | StartError::Stopped(_)
        | StartError::Timeout
        | StartError::SystemLimit
        | StartError::Instantiate(_) => ErrorKind::Failed,
    };
    ControlError::new(kind, e.to_string())
}

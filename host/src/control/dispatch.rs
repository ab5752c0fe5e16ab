//! Carrying out a request on the node: each operation's handling, or the module that has
//! it.

use std::time::Duration;

use serde_json::Value;

use super::tree::{self, App};
use super::{
    ControlError, DEFAULT_STOP_TIMEOUT, ErrorKind, Request, Response, reload, start, upgrade,
};
use crate::dest::Dest;
use crate::error::CallError;
use crate::exit::ExitReason;
use crate::guest_text::one_line;
use crate::limits::{MAX_REASON, MAX_SHUTDOWN_TERM, check_term};
use crate::node::{DEFAULT_CALL_TIMEOUT, Node};
use crate::term::{from_json, to_json};

/// Carry out one request on `node`.
///
/// # Cancel safety
/// Dropping the future during a `call` abandons the call (the reply is dropped); during a
/// `stop`, the stop goes on without anyone waiting.
pub async fn handle(node: &Node, request: Request) -> Response {
    handle_app(node, None, request).await
}

/// [`handle`], for a node serving `app`.
pub(super) async fn handle_app(node: &Node, app: Option<&App>, request: Request) -> Response {
    let result = match (request, app) {
        (Request::Tree {}, Some(app)) => tree::tree(node, app).await,
        (Request::Tree {}, None) => Err(ControlError::new(
            ErrorKind::Noproc,
            "this node runs no application",
        )),
        (request @ (Request::Reload { .. } | Request::Rollback { .. }), app) => {
            reload::handle(app.and_then(|a| a.releases.as_ref()), request).await
        }
        (Request::StartChild { supervisor, args }, app) => {
            start::start_child(node, root_by_id(node, app, supervisor), &args).await
        }
        (
            Request::Stop {
                dest,
                reason,
                timeout_ms,
            },
            app,
        ) => {
            let stop = Request::Stop {
                dest: root_by_id(node, app, dest),
                reason,
                timeout_ms,
            };
            run(node, stop).await
        }
        (request, _) => run(node, request).await,
    };
    match result {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e),
    }
}

/// The root supervisor's pid for its manifest id (as `otter tree` shows it), when no process
/// or supervisor is registered under that name; `dest` otherwise.
fn root_by_id(node: &Node, app: Option<&App>, dest: Dest) -> Dest {
    match (app, &dest) {
        (Some(app), Dest::Name(id))
            if *id == app.spec().id
                && node.whereis(id).is_none()
                && node.supervisor(&dest).is_none() =>
        {
            Dest::Pid(app.supervisor.pid())
        }
        _ => dest,
    }
}

async fn run(node: &Node, request: Request) -> Result<Value, ControlError> {
    match request {
        Request::Start { module, args, name } => start::start(node, &module, &args, name).await,
        Request::StartChild { supervisor, args } => {
            start::start_child(node, supervisor, &args).await
        }
        Request::Call {
            dest,
            msg,
            timeout_ms,
        } => {
            let timeout = timeout_ms.map_or(DEFAULT_CALL_TIMEOUT, Duration::from_millis);
            let reply = node.call_term(dest, from_json(&msg), Some(timeout)).await?;
            reply_json(&reply)
        }
        Request::Cast { dest, msg } => {
            let pid = alive(node, &dest)?;
            let msg = from_json(&msg);
            // Nobody waits for a cast: the log is where an operator sees one that the
            // server could not decode (the server logs that, with its pid).
            tracing::info!(
                target: "otter::control",
                to = %crate::guest_text::one_line(&dest.to_string(), 256),
                pid,
                msg = %crate::term::shown(&msg),
                "cast from the control socket"
            );
            node.cast(dest, msg);
            Ok(Value::Null)
        }
        Request::Send { dest, msg } => {
            alive(node, &dest)?;
            node.send(dest, from_json(&msg))?;
            Ok(Value::Null)
        }
        Request::Stop {
            dest,
            reason,
            timeout_ms,
        } => {
            let timeout = timeout_ms.map_or(DEFAULT_STOP_TIMEOUT, Duration::from_millis);
            if node.supervisor(&dest).is_some() {
                return stop_supervisor(node, dest, reason.as_ref(), timeout).await;
            }
            match parse_reason(reason.as_ref())? {
                None => {
                    let pid = alive(node, &dest)?;
                    node.kill(pid);
                    node.wait_exit(pid).await;
                }
                Some(reason) => node.stop(dest, reason, Some(timeout)).await?,
            }
            Ok(Value::Null)
        }
        Request::Whereis { name } => Ok(node.whereis(&name).map_or(Value::Null, Value::from)),
        Request::Ps {} => Ok(serde_json::to_value(node.processes()).expect("process info is JSON")),
        Request::Tree {} => unreachable!("handled by handle_app"),
        Request::State { dest, set: None } => {
            let state = node.get_state(dest).await?;
            reply_json(&state)
        }
        Request::State {
            dest,
            set: Some(state),
        } => {
            let state = node.replace_state(dest, from_json(&state)).await?;
            reply_json(&state)
        }
        Request::Suspend { dest } => {
            node.suspend(dest)?;
            Ok(Value::Null)
        }
        Request::Resume { dest } => {
            node.resume(dest)?;
            Ok(Value::Null)
        }
        request @ (Request::Upgrade { .. } | Request::ChangeCode { .. }) => {
            upgrade::handle(node, request).await
        }
        Request::Reload { .. } | Request::Rollback { .. } => {
            unreachable!("handled by handle_app")
        }
        Request::Modules {} => {
            Ok(serde_json::to_value(node.modules()).expect("module info is JSON"))
        }
    }
}

/// `stop` for a supervisor: its subtree stops in reverse order, as
/// [`Node::stop_supervisor`] does. Only `shutdown` is a supervisor's stop reason. The stop
/// runs in its own task, so it goes on if it outlasts the timeout.
async fn stop_supervisor(
    node: &Node,
    dest: Dest,
    reason: Option<&Value>,
    timeout: Duration,
) -> Result<Value, ControlError> {
    if parse_reason(reason)? != Some(ExitReason::Shutdown) {
        return Err(ControlError::new(
            ErrorKind::Badarg,
            "a supervisor stops with reason shutdown (its children in reverse order)",
        ));
    }
    let stopping = tokio::spawn({
        let node = node.clone();
        async move { node.stop_supervisor(&dest).await }
    });
    match tokio::time::timeout(timeout, stopping).await {
        Ok(Ok(Ok(()))) => Ok(Value::Null),
        Ok(Ok(Err(e))) => Err(ControlError::new(ErrorKind::Noproc, e.to_string())),
        Ok(Err(e)) => Err(ControlError::new(ErrorKind::Exited, e.to_string())),
        Err(_) => Err(ControlError::new(
            ErrorKind::Timeout,
            "the supervisor is still stopping its children; the stop goes on",
        )),
    }
}

/// The pid `dest` stands for, if it is alive.
fn alive(node: &Node, dest: &Dest) -> Result<crate::Pid, ControlError> {
    let pid = node
        .resolve(dest)
        .map_err(|e| ControlError::from(CallError::Registry(e)))?;
    pid.ok_or_else(|| ControlError::from(CallError::NoProc))
}

/// A guest's term as the JSON an answer carries, if a client can read it back: JSON readers
/// stop at a nesting depth (serde_json's at 128), and the answer's `{"ok": ...}` is one more.
pub(super) fn reply_json(term: &[u8]) -> Result<Value, ControlError> {
    let value = to_json(term).map_err(|e| ControlError::new(ErrorKind::Badreply, e.to_string()))?;
    if json_depth(&value) > MAX_ANSWER_DEPTH {
        return Err(ControlError::new(
            ErrorKind::Badreply,
            format!("nested over {MAX_ANSWER_DEPTH} deep as JSON, past what a JSON reader takes"),
        ));
    }
    Ok(value)
}

/// The deepest a term shown in an answer may nest as JSON: serde_json reads 128 levels, one
/// of them the answer's own object.
const MAX_ANSWER_DEPTH: usize = 126;

/// How deep `value` nests (a scalar: 1), found without recursing.
fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// `None` means kill. A reason is held to what a guest's is: an error text is made one
/// line of at most `MAX_REASON` bytes (it is logged, and copied to every monitor, link and
/// waiting caller), and a shutdown term over `MAX_SHUTDOWN_TERM` is refused.
pub(super) fn parse_reason(reason: Option<&Value>) -> Result<Option<ExitReason>, ControlError> {
    let Some(reason) = reason else {
        return Ok(Some(ExitReason::Shutdown));
    };
    let error = |text: &str| ExitReason::Error(one_line(text, MAX_REASON));
    Ok(Some(match reason {
        Value::String(s) => match s.as_str() {
            "normal" => ExitReason::Normal,
            "shutdown" => ExitReason::Shutdown,
            "kill" => return Ok(None),
            other => error(other),
        },
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, v)) if k == "shutdown" => {
                let term = from_json(v);
                check_term("shutdown term", term.len(), MAX_SHUTDOWN_TERM)
                    .map_err(|why| ControlError::new(ErrorKind::Badarg, why))?;
                ExitReason::ShutdownWith(term)
            }
            Some((k, Value::String(text))) if k == "error" => error(text),
            _ => return Err(bad_reason()),
        },
        _ => return Err(bad_reason()),
    }))
}

fn bad_reason() -> ControlError {
    ControlError::new(
        ErrorKind::Badarg,
        r#"reason must be "normal", "shutdown", "kill", {"shutdown": term}, {"error": text} or a string"#,
    )
}

//! The control endpoint: a local Unix socket through which the `otter` CLI (or anything
//! else that speaks newline-delimited JSON) talks to a running node.
//!
//! Each line sent is one [`Request`]; each line back is its [`Response`], in order:
//!
//! ```text
//! → {"op":"call","dest":"echo","msg":"ping","timeout_ms":5000}
//! ← {"ok":{"pong":1}}
//! → {"op":"call","dest":42,"msg":"ping"}
//! ← {"error":{"kind":"noproc","message":"no such process"}}
//! ```
//!
//! `dest` is a registered name (a JSON string) or a pid (a JSON number). Messages are JSON
//! on the socket and CBOR inside the node ([`crate::from_json`], [`crate::to_json`]).
//!
//! ## Access
//!
//! The socket is created with mode 0600, so only its owner can connect. A missing
//! directory for it is created with mode 0700; the default directories
//! ([`default_socket_path`]) are always such. A socket file left by a node that died is
//! replaced; one a live node answers on is an error ([`BindError::AlreadyRunning`]).
//!
//! ## Limits
//!
//! No client can make the node buffer without end or stop serving others ([`Limits`]): a
//! request line longer than 1 MiB is answered `badrequest` and its connection closed; a
//! connection that takes more than 30 s to send a whole request is answered `timeout` and
//! closed; at most 256 connections are served at once, and a new one past that takes the
//! place of the one idle longest (which is answered `busy`), or is itself answered `busy`
//! when every connection is busy answering. A line that is not UTF-8 or not a request is
//! answered `badrequest` and the connection goes on; unknown fields are refused.
//!
//! ```no_run
//! # async fn demo(node: otter::Node) -> anyhow::Result<()> {
//! use otter::control::{Endpoint, Request, default_socket_path};
//! let endpoint = Endpoint::bind(default_socket_path("demo"))?;
//! tokio::spawn(async move { endpoint.serve(node).await });
//! // Elsewhere, blocking:
//! let reply = otter::control::request(
//!     &default_socket_path("demo"),
//!     &Request::Call { dest: "echo".into(), msg: "ping".into(), timeout_ms: None },
//! )?;
//! # Ok(()) }
//! ```

mod client;
mod connection;
mod endpoint;
mod limits;
mod reload;
mod slots;
mod start;
mod tree;
mod upgrade;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use client::{ClientError, request};
pub use endpoint::{
    BindError, Endpoint, default_socket_dir, default_socket_path, local_nodes, node_socket_path,
};
pub use limits::Limits;
pub use tree::{SupervisorNode, TreeNode, WorkerNode};

pub(crate) use tree::App;

use crate::dest::Dest;
use crate::error::{
    CallError, GetStateError, ReplaceStateError, ResumeError, SendError, StopError, SuspendError,
};
use crate::exit::ExitReason;
use crate::node::{DEFAULT_CALL_TIMEOUT, Node};
use crate::term::{from_json, to_json};

/// The environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "OTTER_SOCKET";

/// How long a `stop` request waits for `terminate` unless it says otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One request, as a JSON object whose `op` names the operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// `{"op":"call","dest":D,"msg":M,"timeout_ms":T}`: call and return the reply.
    /// `timeout_ms` defaults to 5000.
    Call {
        /// The server.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The request.
        msg: Value,
        /// How long to wait for the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"cast","dest":D,"msg":M}`: cast; `null` once queued. Unlike OTP's cast, a
    /// destination that is not alive is reported (`noproc`), for the operator's sake.
    Cast {
        /// The server.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The request.
        msg: Value,
    },
    /// `{"op":"send","dest":D,"msg":M}`: a plain message to `handle_info`; `null` once
    /// queued, `noproc` if the destination is not alive.
    Send {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The message.
        msg: Value,
    },
    /// `{"op":"stop","dest":D,"reason":R,"timeout_ms":T}`: stop a process and wait until
    /// it is gone; `null` then. The reason is `"normal"`, `"shutdown"` (the default),
    /// `{"shutdown": term}`, `"kill"` (no `terminate`), or any other string or
    /// `{"error": "text"}` for an error exit. If `terminate` is still running after
    /// `timeout_ms` (default 5000) the answer is `timeout` and the process is left running.
    ///
    /// A supervisor (by name or pid) is stopped with its subtree, as
    /// [`Node::stop_supervisor`] does: a nested one by its parent, which keeps its spec
    /// and does not restart it; the root, ending the application. Its reason must be
    /// `"shutdown"` (`badarg` otherwise); past `timeout_ms` the answer is `timeout` and the
    /// stop goes on.
    Stop {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// Why it stops.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Value>,
        /// How long `terminate` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"whereis","name":N}`: the pid registered under the name, or `null`.
    Whereis {
        /// The name.
        name: String,
    },
    /// `{"op":"ps"}`: every live process, as [`crate::ProcessInfo`] objects.
    // Braces, not a unit variant: serde refuses unknown fields only in struct variants.
    Ps {},
    /// `{"op":"tree"}`: the application's live supervision tree, a [`TreeNode`]: nested
    /// objects with `id`, `kind` (`supervisor` or `worker`), `pid` (or `null`), `module`,
    /// `name`, `via` (a worker's `[registry, key]`, or `null`), `restart`, `restarts` (how
    /// many times its supervisor restarted it), and for supervisors `strategy`,
    /// `intensity`, `period_ms` and `children`. A dynamic (`simple_one_for_one`)
    /// supervisor's children are its running children, each shown with the template's
    /// id. A `noproc` error on a node served without an application ([`Endpoint::serve`]).
    Tree {},
    /// `{"op":"state","dest":D}`: the process's state as JSON. With `"set":S`, first
    /// replace the state with `S` (OTP's `sys:replace_state`, [`Node::replace_state`]) and
    /// answer the state the process then holds; a state the process refuses is `badarg`,
    /// and its state is unchanged.
    State {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The new state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set: Option<Value>,
    },
    /// `{"op":"start","module":M,"args":A,"name":N}`: start a process of a loaded module,
    /// unsupervised (OTP's `gen_server:start`), and wait for its `init`; its pid, or `null`
    /// if `init` returned `ignore`. `args` (default `null`) is what `init` receives; `name`
    /// (optional) registers it. Errors: `badarg` (unknown module, args over the node's
    /// message size limit, a bad name), `already_started` (the name is held; the message
    /// names the pid), `failed` (`init` stopped, crashed or timed out).
    Start {
        /// The module, as loaded (the manifest's `[modules]`).
        module: String,
        /// The start arguments.
        #[serde(default)]
        args: Value,
        /// A name to register it under.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `{"op":"start_child","supervisor":D,"args":A}`: start a child of a dynamic
    /// (`simple_one_for_one`) supervisor, by name, pid or (the root) manifest id, with the
    /// template's args and `A` appended (OTP's `supervisor:start_child/2`; see
    /// [`Supervisor::start_child_with`](crate::Supervisor::start_child_with)); its pid, or `null` if its `init` returned
    /// `ignore`. Errors: `noproc`, `badarg` (a static supervisor, malformed args),
    /// `already_started`, `failed`.
    #[serde(rename = "start_child")]
    StartChild {
        /// The supervisor.
        #[serde(with = "dest_json")]
        supervisor: Dest,
        /// Appended to the template's args.
        #[serde(default)]
        args: Value,
    },
    /// `{"op":"suspend","dest":D}`: suspend the process (OTP's `sys:suspend`); `null`. Calls
    /// to it then time out and messages queue, until `resume`.
    Suspend {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
    },
    /// `{"op":"resume","dest":D}`: resume a suspended process, which then handles what
    /// queued, in order; `null`.
    Resume {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
    },
    /// `{"op":"upgrade","module":M,"path":P}`: upgrade (or downgrade) a loaded module to
    /// the code in the file `P` (read by the node; give an absolute path), as
    /// [`Node::upgrade`](crate::Node::upgrade); an [`crate::UpgradeReport`]. Optional:
    /// `extra` (JSON, `code-change`'s third argument, default `null`), `policy`
    /// (`all-or-nothing` or `per-process`), `force`, `eager`, `timeout_ms`. Errors:
    /// `failed` if any process stays on the old version (the message lists each pid and
    /// why), `badarg` (unknown module, unreadable or invalid code, same bytes, same vsn
    /// without `force`), `busy` (the module is being upgraded already).
    Upgrade {
        /// The module, as loaded.
        module: String,
        /// The new code's file.
        path: std::path::PathBuf,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// What happens to the others if a process fails.
        #[serde(default)]
        policy: crate::UpgradePolicy,
        /// Upgrade even if the vsn is the running one.
        #[serde(default)]
        force: bool,
        /// Migrate hibernating processes now.
        #[serde(default)]
        eager: bool,
        /// How long each `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"change_code","dest":D}`: migrate one suspended process to the code its
    /// module's name loads now (OTP's `sys:change_code`, [`Node::change_code`]); an
    /// [`crate::UpgradeReport`]. Optional `extra` and `timeout_ms` as for `upgrade`.
    #[serde(rename = "change_code")]
    ChangeCode {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// How long `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"reload","path":P}`: move the application to the release the manifest at `P`
    /// describes (read by the node; give an absolute path), as
    /// [`ReleaseHandler::reload`](crate::release::ReleaseHandler::reload); a
    /// [`crate::release::ReloadReport`]. Optional: `dry_run` (plan only), `extra` (JSON, for
    /// every upgraded module's `code-change`), `force`, `timeout_ms`. Errors: `badarg` (a
    /// manifest that does not check, with file, line and field; a plan that cannot be
    /// made), `busy` (a reload, rollback or upgrade is running), `failed` (a step failed
    /// and the steps before it were undone: the message names the step and why), `noproc`
    /// (a node served without a release).
    Reload {
        /// The new manifest.
        path: std::path::PathBuf,
        /// Plan only.
        #[serde(default)]
        dry_run: bool,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// Upgrade modules whose new code reports the running vsn.
        #[serde(default)]
        force: bool,
        /// How long each `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"rollback"}`: return to the release before the last reload, as `reload`
    /// does (same options but `path` and `force`); `badarg` when there is none.
    Rollback {
        /// Plan only.
        #[serde(default)]
        dry_run: bool,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// How long each `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"modules"}`: the loaded module versions and how many processes run each, as
    /// [`crate::ModuleInfo`] objects.
    Modules {},
}

/// One response: `{"ok": value}` or `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// The operation's result.
    Ok(Value),
    /// Why it failed.
    Error(ControlError),
}

/// A failed request, as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ControlError {
    /// What kind of failure, for programs.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub message: String,
}

/// The kinds of [`ControlError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// No process with that pid or name.
    Noproc,
    /// No answer in time; or no whole request in time ([`Limits::idle_timeout`]).
    Timeout,
    /// The server could not decode the message, or an argument is malformed.
    Badarg,
    /// The server exited before answering.
    Exited,
    /// The answer has no JSON form.
    Badreply,
    /// The request line is not a request (not UTF-8, not JSON, an unknown field, longer
    /// than [`Limits::max_request_bytes`]).
    Badrequest,
    /// The node serves as many control connections as [`Limits::max_connections`]
    /// allows, or the server's mailbox is full and refused the call
    /// ([`crate::CallError::Busy`]); try again.
    Busy,
    /// A start found the name taken (or the child running); the message names the pid.
    #[serde(rename = "already_started")]
    AlreadyStarted,
    /// A start failed: `init` stopped, crashed or timed out.
    Failed,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Noproc => "noproc",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Badarg => "badarg",
            ErrorKind::Exited => "exited",
            ErrorKind::Badreply => "badreply",
            ErrorKind::Badrequest => "badrequest",
            ErrorKind::Busy => "busy",
            ErrorKind::AlreadyStarted => "already_started",
            ErrorKind::Failed => "failed",
        })
    }
}

impl ControlError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ControlError {
            kind,
            message: message.into(),
        }
    }
}

impl From<CallError> for ControlError {
    fn from(e: CallError) -> Self {
        let kind = match e {
            CallError::Timeout => ErrorKind::Timeout,
            CallError::NoProc => ErrorKind::Noproc,
            CallError::Exited(_) => ErrorKind::Exited,
            CallError::Badarg(_)
            | CallError::Encode(_)
            | CallError::CallingSelf
            | CallError::Registry(_) => ErrorKind::Badarg,
            CallError::BadReply(_) => ErrorKind::Badreply,
            CallError::Busy => ErrorKind::Busy,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<SendError> for ControlError {
    fn from(e: SendError) -> Self {
        let kind = match e {
            SendError::NoProc => ErrorKind::Noproc,
            SendError::Badarg(_) | SendError::Registry(_) => ErrorKind::Badarg,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<ReplaceStateError> for ControlError {
    fn from(e: ReplaceStateError) -> Self {
        let kind = match e {
            ReplaceStateError::NoProc => ErrorKind::Noproc,
            ReplaceStateError::Refused(_) | ReplaceStateError::Badarg(_) => ErrorKind::Badarg,
            ReplaceStateError::Exited(_) => ErrorKind::Exited,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<GetStateError> for ControlError {
    fn from(e: GetStateError) -> Self {
        let kind = match e {
            GetStateError::NoProc => ErrorKind::Noproc,
            GetStateError::Exited(_) => ErrorKind::Exited,
        };
        ControlError::new(kind, e.to_string())
    }
}

impl From<SuspendError> for ControlError {
    fn from(e: SuspendError) -> Self {
        ControlError::new(ErrorKind::Noproc, e.to_string())
    }
}

impl From<ResumeError> for ControlError {
    fn from(e: ResumeError) -> Self {
        ControlError::new(ErrorKind::Noproc, e.to_string())
    }
}

impl From<StopError> for ControlError {
    fn from(e: StopError) -> Self {
        match e {
            StopError::NoProc => ControlError::new(ErrorKind::Noproc, e.to_string()),
            StopError::Timeout => ControlError::new(
                ErrorKind::Timeout,
                "terminate is still running; the process was not killed",
            ),
        }
    }
}

/// `dest` on the wire: a number is a pid, a string a name, `{"via": [registry, key]}` a key
/// (any JSON value) in a unique registry.
mod dest_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::dest::Dest;
    use crate::term::{from_json, to_json};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire<'a> {
        Pid(u64),
        Name(std::borrow::Cow<'a, str>),
        Via { via: (String, Value) },
    }

    pub(super) fn serialize<S: Serializer>(dest: &Dest, s: S) -> Result<S::Ok, S::Error> {
        match dest {
            Dest::Pid(p) => Wire::Pid(*p),
            Dest::Name(n) => Wire::Name(n.as_str().into()),
            Dest::Via(registry, key) => Wire::Via {
                via: (
                    registry.clone(),
                    to_json(key).map_err(serde::ser::Error::custom)?,
                ),
            },
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dest, D::Error> {
        match Wire::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                r#"dest must be a registered name (string), a pid (number) or {"via": [registry, key]}"#,
            )
        })? {
            Wire::Pid(p) => Ok(Dest::Pid(p)),
            Wire::Name(n) => Ok(Dest::Name(n.into_owned())),
            Wire::Via {
                via: (registry, key),
            } => Ok(Dest::Via(registry, from_json(&key))),
        }
    }
}

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

fn reply_json(term: &[u8]) -> Result<Value, ControlError> {
    to_json(term).map_err(|e| ControlError::new(ErrorKind::Badreply, e.to_string()))
}

/// `None` means kill.
fn parse_reason(reason: Option<&Value>) -> Result<Option<ExitReason>, ControlError> {
    let Some(reason) = reason else {
        return Ok(Some(ExitReason::Shutdown));
    };
    Ok(Some(match reason {
        Value::String(s) => match s.as_str() {
            "normal" => ExitReason::Normal,
            "shutdown" => ExitReason::Shutdown,
            "kill" => return Ok(None),
            other => ExitReason::Error(other.to_owned()),
        },
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, v)) if k == "shutdown" => ExitReason::ShutdownWith(from_json(v)),
            Some((k, Value::String(text))) if k == "error" => ExitReason::Error(text.clone()),
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

#[cfg(test)]
mod tests;

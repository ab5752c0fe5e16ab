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

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use std::sync::Arc;

use crate::dest::Dest;
use crate::error::{CallError, StopError};
use crate::exit::ExitReason;
use crate::manifest::{ChildKind as ManifestChild, SupervisorSpec};
use crate::node::{DEFAULT_CALL_TIMEOUT, Node};
use crate::supervisor::{ChildInfo, Restart, Strategy, Supervisor};
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
    Ps,
    /// `{"op":"tree"}`: the application's live supervision tree, as nested objects with
    /// `id`, `kind` (`supervisor` or `worker`), `pid` (or `null`), `module`, `name`,
    /// `restart`, `restarts` (how many times its supervisor restarted it), and for
    /// supervisors `strategy` and `children`. A dynamic (`simple_one_for_one`)
    /// supervisor's children are its running children, each shown with the template's
    /// id. A `noproc` error on a node served without an application ([`Endpoint::serve`]).
    Tree,
    /// `{"op":"state","dest":D}`: the process's state as JSON.
    State {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
    },
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
    /// No answer in time.
    Timeout,
    /// The server could not decode the message, or an argument is malformed.
    Badarg,
    /// The server exited before answering.
    Exited,
    /// The answer has no JSON form.
    Badreply,
    /// The request line is not a request.
    Badrequest,
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
        })
    }
}

impl ControlError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
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
            CallError::Badarg(_) | CallError::CallingSelf | CallError::Registry(_) => {
                ErrorKind::Badarg
            }
            CallError::BadReply(_) => ErrorKind::Badreply,
        };
        ControlError::new(kind, e.to_string())
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

/// The application a node serves: its root supervisor and the manifest's tree, for the
/// `tree` request.
#[derive(Debug, Clone)]
pub struct App {
    /// The running root supervisor.
    pub supervisor: Supervisor,
    /// What the manifest says it is.
    pub spec: SupervisorSpec,
}

/// [`handle`], for a node serving `app`.
pub async fn handle_app(node: &Node, app: Option<&App>, request: Request) -> Response {
    let result = match (request, app) {
        (Request::Tree, Some(app)) => tree(app).await,
        (Request::Tree, None) => Err(ControlError::new(
            ErrorKind::Noproc,
            "this node runs no application",
        )),
        (request, _) => run(node, request).await,
    };
    match result {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e),
    }
}

async fn run(node: &Node, request: Request) -> Result<Value, ControlError> {
    match request {
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
            alive(node, &dest)?;
            node.cast(dest, from_json(&msg));
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
        Request::Ps => Ok(serde_json::to_value(node.processes()).expect("process info is JSON")),
        Request::Tree => unreachable!("handled by handle_app"),
        Request::State { dest } => {
            let state = node.get_state(dest).await?;
            reply_json(&state)
        }
    }
}

/// The live tree of `app` as JSON.
async fn tree(app: &App) -> Result<Value, ControlError> {
    let children = app.supervisor.which_children().await.map_err(|_| {
        ControlError::new(ErrorKind::Noproc, "the application's supervisor has exited")
    })?;
    let mut root = tree_node(&app.spec, &children);
    root["pid"] = Value::from(app.supervisor.pid());
    root["restart"] = Value::from("permanent");
    root["restarts"] = Value::from(0);
    Ok(root)
}

fn restart_name(r: Restart) -> &'static str {
    match r {
        Restart::Permanent => "permanent",
        Restart::Transient => "transient",
        Restart::Temporary => "temporary",
    }
}

fn tree_node(spec: &SupervisorSpec, live: &[ChildInfo]) -> Value {
    let strategy = match spec.strategy {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
        Strategy::SimpleOneForOne => "simple_one_for_one",
    };
    let child = |c: &crate::manifest::ChildSpec, info: Option<&ChildInfo>| {
        let restart = restart_name(c.restart);
        let pid = info.and_then(|i| i.pid).map_or(Value::Null, Value::from);
        let restarts = info.map_or(0, |i| i.restarts);
        match &c.kind {
            ManifestChild::Worker(w) => serde_json::json!({
                "id": c.id,
                "kind": "worker",
                "pid": pid,
                "module": w.module,
                "name": w.name,
                "restart": restart,
                "restarts": restarts,
            }),
            ManifestChild::Supervisor(s) => {
                let mut v = tree_node(s, info.map_or(&[][..], |i| &i.children));
                v["pid"] = pid;
                v["restart"] = Value::from(restart);
                v["restarts"] = Value::from(restarts);
                v
            }
        }
    };
    let children: Vec<Value> = match (spec.strategy, spec.children.first()) {
        // A dynamic supervisor's children all come from its one template.
        (Strategy::SimpleOneForOne, Some(template)) => {
            live.iter().map(|i| child(template, Some(i))).collect()
        }
        _ => spec
            .children
            .iter()
            .map(|c| child(c, live.iter().find(|i| i.id == c.id)))
            .collect(),
    };
    serde_json::json!({
        "id": spec.id,
        "name": spec.name,
        "kind": "supervisor",
        "pid": Value::Null,
        "module": "supervisor",
        "restart": Value::Null,
        "strategy": strategy,
        "intensity": spec.intensity,
        "period_ms": u64::try_from(spec.period.as_millis()).unwrap_or(u64::MAX),
        "children": children,
    })
}

/// The pid `dest` stands for, if it is alive.
fn alive(node: &Node, dest: &Dest) -> Result<crate::Pid, ControlError> {
    let pid = node
        .inner
        .pid_of(dest)
        .map_err(|e| ControlError::from(CallError::Registry(e)))?
        .filter(|p| node.is_alive(*p));
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

// ---- where the socket lives ----

/// The socket a node named `node` serves on by default: `$OTTER_SOCKET` if set, else
/// `$XDG_RUNTIME_DIR/otter/<node>.sock`, else `/tmp/otter-<uid>/<node>.sock`.
pub fn default_socket_path(node: &str) -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => node_socket_path(node),
    }
}

/// `<default_socket_dir>/<node>.sock`: where a node named `node` serves when neither
/// `$OTTER_SOCKET` nor anything else says otherwise.
pub fn node_socket_path(node: &str) -> PathBuf {
    default_socket_dir().join(format!("{node}.sock"))
}

/// The directory nodes' sockets are put in by default (ignoring `$OTTER_SOCKET`).
pub fn default_socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("otter"),
        _ => PathBuf::from(format!("/tmp/otter-{}", rustix::process::getuid().as_raw())),
    }
}

/// The names of the nodes with a socket in [`default_socket_dir`] (live or stale), sorted.
pub fn local_nodes() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(default_socket_dir()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".sock").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

// ---- the server ----

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A node answers on this socket already.
    #[error("a node is already running at {0}")]
    AlreadyRunning(PathBuf),
    /// The path is taken by something that is not a socket; it is left alone.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// The socket's directory belongs to another user.
    #[error("{0} belongs to another user; refusing to put the control socket there")]
    ForeignDir(PathBuf),
    /// The OS refused.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BindError + '_ {
    move |source| BindError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A bound control socket. Dropping it removes the socket file (if it is still this one).
#[derive(Debug)]
pub struct Endpoint {
    path: PathBuf,
    listener: UnixListener,
    /// (device, inode) of the socket file, so a newer node's socket is never removed.
    id: (u64, u64),
}

impl Endpoint {
    /// Bind the socket at `path` with mode 0600, creating its directory (mode 0700) if it
    /// is missing, and replacing a stale socket file no node answers on.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`BindError::AlreadyRunning`] if a node answers there; [`BindError::NotASocket`] if
    /// another kind of file is in the way; [`BindError::ForeignDir`] if the directory
    /// belongs to another user; [`BindError::Io`] for what the OS refuses.
    pub fn bind(path: impl AsRef<Path>) -> Result<Endpoint, BindError> {
        let path = std::path::absolute(path.as_ref()).map_err(io_err(path.as_ref()))?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
        prepare_dir(&dir)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                match std::os::unix::net::UnixStream::connect(&path) {
                    Ok(_) => return Err(BindError::AlreadyRunning(path)),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        tracing::info!(path = %path.display(), "replacing a stale control socket");
                        std::fs::remove_file(&path).map_err(io_err(&path))?;
                    }
                    Err(e) => return Err(io_err(&path)(e)),
                }
            }
            Ok(_) => return Err(BindError::NotASocket(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let listener = UnixListener::bind(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                BindError::AlreadyRunning(path.clone())
            } else {
                io_err(&path)(e)
            }
        })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(&path))?;
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        Ok(Endpoint {
            path,
            listener,
            id: (meta.dev(), meta.ino()),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer requests until the future is dropped; each connection is served by its own
    /// task, its requests one after another.
    ///
    /// # Cancel safety
    /// Dropping it stops accepting; connections already accepted are served until they
    /// close or the runtime ends.
    pub async fn serve(&self, node: Node) {
        self.serve_app(node, None).await;
    }

    /// [`Endpoint::serve`], for a node running `app` (which `tree` requests show).
    pub async fn serve_app(&self, node: Node, app: Option<App>) {
        let app = app.map(Arc::new);
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(node.clone(), app.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn prepare_dir(dir: &Path) -> Result<(), BindError> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            if meta.uid() != rustix::process::getuid().as_raw() {
                return Err(BindError::ForeignDir(dir.to_owned()));
            }
            if meta.mode() & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    "the control socket's directory is open to other users; the socket itself is 0600"
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
            // The umask may have taken bits away, never added: make it exactly 0700.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(dir))
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

async fn serve_connection(node: Node, app: Option<Arc<App>>, stream: tokio::net::UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "control connection: read failed");
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                tracing::debug!(?request, "control request");
                handle_app(&node, app.as_deref(), request).await
            }
            Err(e) => Response::Error(ControlError::new(ErrorKind::Badrequest, e.to_string())),
        };
        let mut out = serde_json::to_vec(&response).expect("responses are JSON");
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}

// ---- the client ----

/// Why a request made through [`request`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket.
    #[error("no node is running at {path} ({source})")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The node's answer was not a response.
    #[error("control socket: bad response: {0}")]
    Protocol(String),
    /// The node carried out the request and it failed.
    #[error(transparent)]
    Failed(#[from] ControlError),
}

/// Send one request to the node at `socket` and wait for its answer (blocking).
///
/// # Errors
/// [`ClientError::NotRunning`] if nothing answers there; [`ClientError::Failed`] with the
/// node's error; otherwise I/O or protocol trouble.
pub fn request(socket: &Path, request: &Request) -> Result<Value, ClientError> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|source| {
        ClientError::NotRunning {
            path: socket.to_owned(),
            source,
        }
    })?;
    let mut line = serde_json::to_vec(request).expect("requests are JSON");
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(ClientError::Protocol(
            "the node closed the connection".into(),
        ));
    }
    match serde_json::from_str(&answer) {
        Ok(Response::Ok(v)) => Ok(v),
        Ok(Response::Error(e)) => Err(ClientError::Failed(e)),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}

#[cfg(test)]
mod tests;

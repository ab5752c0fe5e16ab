//! The node's side of the control socket: where it lives, binding it safely, serving
//! requests.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;

use super::connection::{self, Admitted, Shared};
use super::slots::{Admission, Slots};
use super::{App, Limits, SOCKET_ENV};
use crate::manifest::SupervisorTable;
use crate::node::Node;
use crate::release::{Release, ReleaseHandler};
use crate::supervisor::Supervisor;

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
    /// The socket's directory is a symbolic link, or other users may write to it: either
    /// lets another user put their own socket where clients look for the node's.
    #[error("{dir}: {why}; refusing to put the control socket there")]
    UnsafeDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
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
    /// How many requests are being answered.
    in_flight: Arc<watch::Sender<usize>>,
    limits: Limits,
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
    /// belongs to another user; [`BindError::UnsafeDir`] if it is a symbolic link or other
    /// users may write to it; [`BindError::Io`] for what the OS refuses.
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
            in_flight: Arc::new(watch::Sender::new(0)),
            limits: Limits::default(),
        })
    }

    /// Serve clients within `limits` instead of [`Limits::default`].
    pub fn with_limits(mut self, limits: Limits) -> Endpoint {
        self.limits = limits;
        self
    }

    /// What clients are allowed.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer requests until the future is dropped; each connection is served by its own
    /// task, its requests one after another, within the endpoint's [`Limits`].
    ///
    /// # Cancel safety
    /// Dropping it stops accepting; connections already accepted are served until they
    /// close or the runtime ends.
    pub async fn serve(&self, node: Node) {
        self.serve_app(node, None).await;
    }

    /// [`Endpoint::serve`], for a node running an application: its root supervisor and the
    /// manifest's tree, which `tree` requests show.
    ///
    /// # Cancel safety
    /// As [`Endpoint::serve`].
    pub async fn serve_application(
        &self,
        node: Node,
        supervisor: Supervisor,
        spec: SupervisorTable,
    ) {
        let app = App {
            supervisor,
            spec,
            releases: None,
        };
        self.serve_app(node, Some(app)).await;
    }

    /// [`Endpoint::serve_application`], for a node running `release` under `supervisor`:
    /// `reload` and `rollback` requests move it between releases.
    ///
    /// # Cancel safety
    /// As [`Endpoint::serve`].
    pub async fn serve_release(&self, node: Node, supervisor: Supervisor, release: Release) {
        let app = App {
            spec: release.manifest().supervisor.clone(),
            releases: Some(ReleaseHandler::new(
                node.clone(),
                supervisor.clone(),
                release,
            )),
            supervisor,
        };
        self.serve_app(node, Some(app)).await;
    }

    async fn serve_app(&self, node: Node, app: Option<App>) {
        let slots = Slots::new(self.limits.max_connections);
        let shared = Arc::new(Shared {
            node,
            app: app.map(Arc::new),
            limits: self.limits,
            slots: slots.clone(),
            in_flight: self.in_flight.clone(),
        });
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => match slots.admit() {
                    Admission::Now(slot) => {
                        let admitted = Admitted::new(&slots, stream, slot);
                        tokio::spawn(connection::serve(shared.clone(), admitted));
                    }
                    Admission::Wait(waiting) => {
                        let shared = shared.clone();
                        tokio::spawn(async move {
                            match waiting.slot().await {
                                Some(slot) => {
                                    let admitted = Admitted::new(&shared.slots, stream, slot);
                                    connection::serve(shared, admitted).await;
                                }
                                None => refuse(&stream),
                            }
                        });
                    }
                    Admission::Busy => refuse(&stream),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Answer `busy` without waiting (a new socket's buffer has room for a line) and close.
fn refuse(stream: &tokio::net::UnixStream) {
    tracing::debug!("control socket: at the connection limit; refusing a client");
    let line = connection::answer_line(&connection::busy(
        "the node is at its limit of control connections, all busy answering; try again",
    ));
    let _ = stream.try_write(&line);
}

impl Endpoint {
    /// Wait until no request is being answered, so that the request which ended the
    /// application (a `stop` of its root supervisor) gets its answer before the node exits.
    /// Requests that keep coming can make this wait forever: bound it with a timeout.
    pub async fn finish_requests(&self) {
        let _ = self.in_flight.subscribe().wait_for(|n| *n == 0).await;
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
    let unsafe_dir = |why| BindError::UnsafeDir {
        dir: dir.to_owned(),
        why,
    };
    // The directory itself, not what a link there points to: whoever owns the link may
    // point it elsewhere once the node is bound, and clients would follow.
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(unsafe_dir("a symbolic link")),
        Ok(meta) => {
            if crate::trust::check_owner(&meta).is_err() {
                return Err(BindError::ForeignDir(dir.to_owned()));
            }
            // Without the sticky bit, anyone who may write to it may rename the socket
            // away and bind their own in its place.
            if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
                return Err(unsafe_dir("writable by other users"));
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

//! What a module's processes may reach through WASI: directories, environment variables,
//! clocks, randomness and outbound connections; and the SQLite databases they may open
//! through the `sql` interface. Nothing unless granted.
//!
//! A child may carry grants of its own, which narrow its module's: they are the child's
//! grants, and they must lie within the module's ([`ModuleGrants::check_within`]).
//!
//! The grants become a `wasmtime_wasi::WasiCtx` per process (see `host/wasi.rs`); this
//! module describes them, checks them once, when they are given to the node, and opens
//! their directories then ([`Pinned`]): every instance after opens the directory it was
//! granted, whatever has been renamed or replaced at its path since (a process with write
//! access to a directory's parent could otherwise swap it for a symlink leading out).

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Whether a granted directory may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirMode {
    /// Read files and list directories only.
    ReadOnly,
    /// Read, create, write, rename and remove under the directory.
    ReadWrite,
}

/// A host directory a guest sees under `guest` (e.g. `/log`), and nothing above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Its name in the guest.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: DirMode,
}

/// A SQLite database a guest opens by `name` through the `sql` interface: one file, and
/// nothing beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseGrant {
    /// The name the guest opens it by.
    pub name: String,
    /// The database file on the host (created at the first open if missing).
    pub path: PathBuf,
    /// Read-only or read-write.
    pub mode: DirMode,
    /// How long one statement may run before it is interrupted.
    pub timeout: Duration,
    /// The most bytes the file may grow to through this grant (`None`: no bound).
    pub max_bytes: Option<u64>,
}

impl DatabaseGrant {
    /// A statement's time limit unless the grant sets one.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
}

/// What the processes of one module (or of one child) may use through WASI, and the SQLite
/// databases they may open (`sql` interface). The default grants nothing: no directory, no
/// environment variable, clocks that stand still at the epoch, no random bytes, no sockets
/// and no database.
///
/// ```
/// use otter::{DirMode, ModuleGrants};
/// let mut grants = ModuleGrants::default();
/// grants
///     .dir("/var/log/app", "/log", DirMode::ReadWrite)
///     .inherit_env("TZ")
///     .env("MODE", "prod")
///     .clocks(true)
///     .random(true)
///     .connect("127.0.0.1:5432".parse().unwrap());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleGrants {
    pub(crate) dirs: Vec<DirGrant>,
    /// `dirs`, opened when the grants were given (empty until then).
    pub(crate) pinned: Pinned,
    pub(crate) inherit_env: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) clocks: bool,
    pub(crate) random: bool,
    pub(crate) connect: Vec<SocketAddr>,
    pub(crate) databases: Vec<DatabaseGrant>,
}

impl ModuleGrants {
    /// Preopen `host` as `guest`. Default: no directory. Paths the guest opens are resolved
    /// inside it: an absolute path, `..` or a symlink leading out is refused.
    pub fn dir(&mut self, host: impl Into<PathBuf>, guest: &str, mode: DirMode) -> &mut Self {
        self.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.to_owned(),
            mode,
        });
        self
    }

    /// Pass the node's own value of `name`, if it has one. Default: no variable.
    pub fn inherit_env(&mut self, name: &str) -> &mut Self {
        self.inherit_env.push(name.to_owned());
        self
    }

    /// Set `name` to `value` in the guest's environment. Default: no variable.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The host's wall and monotonic clocks. Default: `false`, both read zero (the wall
    /// clock says 1970-01-01) and never advance. Otter's own `clock` interface is always
    /// there; this is about WASI's.
    pub fn clocks(&mut self, granted: bool) -> &mut Self {
        self.clocks = granted;
        self
    }

    /// Random bytes from the host's generator. Default: `false`: asking for random bytes
    /// traps (the process exits), `get-random-u64` answers 0 and the insecure seed (what a
    /// Rust guest's `HashMap` is seeded from) is a constant.
    pub fn random(&mut self, granted: bool) -> &mut Self {
        self.random = granted;
        self
    }

    /// Allow TCP connections to `addr` (WASI sockets). Default: none; no listening, no UDP
    /// and no name lookup in any case.
    pub fn connect(&mut self, addr: SocketAddr) -> &mut Self {
        self.connect.push(addr);
        self
    }

    /// Let the guest open the SQLite database at `path` as `name` (`sql` interface), its
    /// statements interrupted after [`DatabaseGrant::DEFAULT_TIMEOUT`] (see
    /// [`ModuleGrants::database_timeout`]). Default: no database.
    pub fn database(&mut self, name: &str, path: impl Into<PathBuf>, mode: DirMode) -> &mut Self {
        self.databases.push(DatabaseGrant {
            name: name.to_owned(),
            path: path.into(),
            mode,
            timeout: DatabaseGrant::DEFAULT_TIMEOUT,
            max_bytes: None,
        });
        self
    }

    /// Let the database granted as `name` grow to at most `bytes` (rounded down to whole
    /// pages; default: no bound), past which a write fails `database or disk is full`.
    pub fn database_max_bytes(&mut self, name: &str, bytes: u64) -> &mut Self {
        if let Some(d) = self.databases.iter_mut().find(|d| d.name == name) {
            d.max_bytes = Some(bytes);
        }
        self
    }

    /// Interrupt a statement on the database granted as `name` after `timeout` (default 5 s).
    pub fn database_timeout(&mut self, name: &str, timeout: Duration) -> &mut Self {
        if let Some(d) = self.databases.iter_mut().find(|d| d.name == name) {
            d.timeout = timeout;
        }
        self
    }

    /// The databases granted.
    pub fn databases(&self) -> &[DatabaseGrant] {
        &self.databases
    }

    /// The directories granted.
    pub fn dirs(&self) -> &[DirGrant] {
        &self.dirs
    }

    /// Check each granted directory now: it exists, is a directory, and this node may read
    /// it (and write it, if granted read-write).
    ///
    /// # Errors
    /// [`GrantError`] naming the first directory that fails.
    pub fn check(&self) -> Result<(), GrantError> {
        self.dirs
            .iter()
            .try_for_each(|d| check_dir(&d.host, d.mode))?;
        self.databases.iter().try_for_each(|d| {
            check_database(&d.path)?;
            self.check_database_placement(&d.path)
        })
    }

    /// `path`, a database of these grants, is not below a subdirectory of a read-write
    /// directory they grant through WASI: a guest could swap that subdirectory for a
    /// symbolic link while a connection opens (SQLite checks the path, then opens it). A
    /// database directly in such a directory, or outside them all, is safe (see `sql`).
    pub(crate) fn check_database_placement(&self, path: &Path) -> Result<(), GrantError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let rw = self.dirs.iter().filter(|d| d.mode == DirMode::ReadWrite);
        for d in rw {
            if below(dir, &d.host).is_some_and(|rel| !rel.as_os_str().is_empty()) {
                return Err(GrantError::Database {
                    path: path.to_owned(),
                    reason: format!(
                        "lies in a subdirectory of {}, granted read-write through WASI: \
                         grant it directly in that directory or outside it",
                        d.host.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Check that these grants (a child's) give nothing that `module`'s do not: each
    /// directory is one of the module's or lies inside one (after symlinks are resolved),
    /// and is read-write only inside a read-write one; each inherited variable is inherited
    /// by the module; clocks, random bytes and each address only if the module has them.
    /// Variables set by value are the child's own: they tell the guest nothing of the host.
    ///
    /// # Errors
    /// [`GrantError::BeyondModule`] naming the first grant the module does not have.
    pub fn check_within(&self, module: &ModuleGrants) -> Result<(), GrantError> {
        let beyond = |what: String| Err(GrantError::BeyondModule(what));
        for d in &self.dirs {
            let covers = |m: &DirGrant| {
                (d.mode == DirMode::ReadOnly || m.mode == DirMode::ReadWrite)
                    && below(&d.host, &m.host).is_some()
            };
            if !module.dirs.iter().any(covers) {
                let mode = match d.mode {
                    DirMode::ReadOnly => "read-only",
                    DirMode::ReadWrite => "read-write",
                };
                return beyond(format!("directory {} ({mode})", d.host.display()));
            }
        }
        if let Some(name) = self
            .inherit_env
            .iter()
            .find(|n| !module.inherit_env.contains(n))
        {
            return beyond(format!("the node's variable {name}"));
        }
        if self.clocks && !module.clocks {
            return beyond("clocks".into());
        }
        if self.random && !module.random {
            return beyond("random".into());
        }
        if let Some(addr) = self.connect.iter().find(|a| !module.connect.contains(a)) {
            return beyond(format!("connect to {addr}"));
        }
        for d in &self.databases {
            let covers = |m: &DatabaseGrant| {
                m.name == d.name
                    && m.path == d.path
                    && (d.mode == DirMode::ReadOnly || m.mode == DirMode::ReadWrite)
                    && d.timeout <= m.timeout
                    && m.max_bytes
                        .is_none_or(|max| d.max_bytes.is_some_and(|b| b <= max))
            };
            if !module.databases.iter().any(covers) {
                return beyond(format!("database {} ({})", d.name, d.path.display()));
            }
        }
        Ok(())
    }
}

/// The granted directories, opened: one handle per [`DirGrant`], in order. Grants compare
/// by what they grant, not by their handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pinned(Arc<Vec<File>>);

impl PartialEq for Pinned {
    fn eq(&self, _: &Pinned) -> bool {
        true
    }
}

impl Eq for Pinned {}

impl ModuleGrants {
    /// Open each granted directory by its path, now: for grants given to the node (a
    /// module's), whose directories were just checked.
    pub(crate) fn pin(&mut self) -> Result<(), GrantError> {
        let opened = self
            .dirs
            .iter()
            .map(|d| open_dir(&d.host))
            .collect::<Result<_, _>>()?;
        self.pinned = Pinned(Arc::new(opened));
        Ok(())
    }

    /// Open each of these (a child's) directories through the one of `module`'s that holds
    /// it, beneath that handle: a path that leads out of it now, by `..` or a symlink,
    /// is refused. [`ModuleGrants::check_within`] has passed.
    pub(crate) fn pin_within(&mut self, module: &ModuleGrants) -> Result<(), GrantError> {
        let mut opened = Vec::with_capacity(self.dirs.len());
        for d in &self.dirs {
            let (beneath, handle) = module
                .dirs
                .iter()
                .zip(module.pinned.0.iter())
                .filter(|(m, _)| d.mode == DirMode::ReadOnly || m.mode == DirMode::ReadWrite)
                .find_map(|(m, h)| Some((below(&d.host, &m.host)?, h)))
                .ok_or_else(|| GrantError::Dir {
                    path: d.host.clone(),
                    reason: "not within an opened directory of its module".into(),
                })?;
            opened.push(open_beneath(handle, &beneath).map_err(|e| GrantError::Dir {
                path: d.host.clone(),
                reason: format!("cannot be opened within its module's: {e}"),
            })?);
        }
        self.pinned = Pinned(Arc::new(opened));
        Ok(())
    }

    /// The directories with the path that reopens each handle (`/proc/self/fd/N`), for
    /// a WASI context; a directory not opened is left out.
    pub(crate) fn pinned_dirs(&self) -> impl Iterator<Item = (&DirGrant, PathBuf)> {
        self.dirs.iter().zip(self.pinned.0.iter()).map(|(d, f)| {
            let path = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
            (d, path)
        })
    }
}

/// A directory, opened read-only (enough to reopen it with any permissions by its
/// `/proc/self/fd` path).
fn open_dir(path: &Path) -> Result<File, GrantError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::DIRECTORY.bits() as i32)
        .open(path)
        .map_err(|e| GrantError::Dir {
            path: path.to_owned(),
            reason: format!("cannot be opened: {e}"),
        })
}

/// `path` opened beneath `dir`, refusing any way out (`..`, absolute or magic links).
fn open_beneath(dir: &File, path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    if path.as_os_str().is_empty() {
        return dir.try_clone();
    }
    let fd = rustix::fs::openat2(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// Where `inner` lies below `outer`, as a relative path ("" for `outer` itself), both with
/// their symlinks resolved; `None` if it does not, or a path does not resolve.
fn below(inner: &Path, outer: &Path) -> Option<PathBuf> {
    let (inner, outer) = (
        std::fs::canonicalize(inner).ok()?,
        std::fs::canonicalize(outer).ok()?,
    );
    inner.strip_prefix(outer).ok().map(Path::to_path_buf)
}

/// Why a grant cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The directory cannot be used as granted.
    #[error("{}: {reason}", path.display())]
    Dir {
        /// The host directory.
        path: PathBuf,
        /// What is wrong: missing, not a directory, no permission.
        reason: String,
    },
    /// The database file cannot be used as granted.
    #[error("{}: {reason}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What is wrong: no such directory, not a regular file.
        reason: String,
    },
    /// A child's grants give what its module's do not (see
    /// [`ModuleGrants::check_within`]).
    #[error("{0}: not granted to its module")]
    BeyondModule(String),
}

/// `path` can be a database file: its directory exists, and it is a regular file if it
/// exists (SQLite creates a missing one at the first open).
pub(crate) fn check_database(path: &Path) -> Result<(), GrantError> {
    let fail = |reason: &str| GrantError::Database {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(fail("its directory does not exist"));
    }
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(fail("not a regular file")),
        _ => Ok(()),
    }
}

/// `path` is a directory this node can open, read (and write, for `ReadWrite`).
pub(crate) fn check_dir(path: &Path, mode: DirMode) -> Result<(), GrantError> {
    let fail = |reason: String| GrantError::Dir {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => "no such directory".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        })
    })?;
    if !meta.is_dir() {
        return Err(fail("not a directory".into()));
    }
    let access = match mode {
        DirMode::ReadOnly => rustix::fs::Access::READ_OK | rustix::fs::Access::EXEC_OK,
        DirMode::ReadWrite => {
            rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK
        }
    };
    rustix::fs::access(path, access).map_err(|_| {
        fail(match mode {
            DirMode::ReadOnly => "permission denied (cannot read it)".into(),
            DirMode::ReadWrite => "permission denied (cannot read and write it)".into(),
        })
    })?;
    // Open it the way a process's preopen will, so what fails here does not fail later.
    wasmtime_wasi::WasiCtxBuilder::new()
        .preopened_dir(path, "/", wasmtime_wasi::FsPerms::ReadOnly)
        .map(|_| ())
        .map_err(|e| fail(format!("cannot be opened: {e}")))
}

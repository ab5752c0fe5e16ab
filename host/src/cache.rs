//! The compiled-module cache: compiling a component takes tens of milliseconds, loading its
//! precompiled image a fraction of one, so compiled modules are kept on disk keyed by the
//! module's bytes and the engine's settings.
//!
//! ## Trust
//!
//! Loading a precompiled image runs its machine code, so the cache is used only when its
//! directory is ours alone (see [`crate::trust`]): owned by the effective uid, not a
//! symlink, writable by nobody else. Otherwise the node says why once and compiles every
//! time, writing nothing there. The directory is opened once and every entry is opened
//! relative to that handle without following links, so what was checked is what is used.
//!
//! ## Integrity
//!
//! An entry is a header (a magic number and the SHA-256 of the image) then the image. It is
//! read whole into memory, checked, and deserialized from those same bytes. An entry that
//! is missing its header, truncated, altered, not a regular file or not ours alone is
//! reported once and replaced by a fresh compile. The digest catches corruption; it does not
//! authenticate (whoever can write the directory could write a matching digest), which is
//! why the directory must be ours alone.
//!
//! Entries are written to a temporary file beside and renamed into place, so a reader never
//! sees half an entry; if writing fails (a full disk) the temporary file is removed.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::trust::{self, Kind};

/// The first bytes of every entry; changes whenever the layout does.
const MAGIC: &[u8; 8] = b"OTTRCW\x00\x01";
/// The magic number, then the SHA-256 digest of the image.
const HEADER_LEN: usize = MAGIC.len() + 32;

/// Where compiled modules are cached, if anywhere. Cheap to clone; clones share the
/// directory handle.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: Option<PathBuf>,
    /// The directory, opened and checked at first use; `None` if it is not to be used.
    dir: OnceLock<Option<OwnedFd>>,
}

/// Why an entry was not used.
#[derive(Debug, thiserror::Error)]
enum BadEntry {
    #[error("{0}")]
    Untrusted(#[from] trust::Untrusted),
    #[error("it has no Otter header (written by an older version?)")]
    NoHeader,
    #[error("its digest does not match its contents")]
    Digest,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("wasmtime refused it: {0}")]
    Deserialize(String),
}

impl CompileCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        CompileCache {
            inner: Arc::new(Inner {
                path: dir,
                dir: OnceLock::new(),
            }),
        }
    }

    /// `$OTTER_CACHE_DIR`, else `$XDG_CACHE_HOME/otter`, else `$HOME/.cache/otter`.
    pub(crate) fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("OTTER_CACHE_DIR") {
            return Some(d.into());
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(Path::new(&d).join("otter"));
        }
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/otter"))
    }

    /// The component for `bytes`, from the cache or compiled by `compile` (and then cached).
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<Component> {
        let (Some(path), Some(dir)) = (&self.inner.path, self.dir()) else {
            return compile();
        };
        let name = format!("{}.cwasm", key(engine, bytes));
        match read_entry(dir, &name) {
            Ok(None) => {}
            Ok(Some(entry)) => match deserialize(engine, &entry[HEADER_LEN..]) {
                Ok(component) => return Ok(component),
                Err(e) => warn_bad(path, &name, &e),
            },
            Err(e) => warn_bad(path, &name, &e),
        }
        let component = compile()?;
        if let Err(e) = write_entry(dir, &name, &component) {
            tracing::warn!(
                "compiled-module cache: {}: not written: {e}",
                path.join(&name).display()
            );
        }
        Ok(component)
    }

    /// The directory's handle, opened (and created if missing) and checked at first use.
    fn dir(&self) -> Option<&OwnedFd> {
        let path = self.inner.path.as_deref()?;
        self.inner
            .dir
            .get_or_init(|| match open_dir(path) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    tracing::warn!(
                        "compiled-module cache: {}: not used, compiling every module: {e}",
                        path.display()
                    );
                    None
                }
            })
            .as_ref()
    }
}

fn warn_bad(dir: &Path, name: &str, e: &BadEntry) {
    tracing::warn!(
        "compiled-module cache: {}: not used, recompiling: {e}",
        dir.join(name).display()
    );
}

/// Why the cache directory is not used.
#[derive(Debug, thiserror::Error)]
enum BadDir {
    #[error("{0}")]
    Untrusted(#[from] trust::Untrusted),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn open_dir(path: &Path) -> Result<OwnedFd, BadDir> {
    if std::fs::symlink_metadata(path).is_err() {
        // Missing: make it, owner-only (the umask can only take bits away).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // A link to a directory fails as "not a directory" (O_DIRECTORY sees the link).
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_symlink() => BadDir::Untrusted(trust::Untrusted::Symlink),
                _ => BadDir::Untrusted(trust::Untrusted::Kind("directory")),
            }
        }
        e => BadDir::Io(e.into()),
    })?;
    // Checked through the handle: a directory swapped in after opening is never used.
    let file = File::from(fd);
    trust::check(&file.metadata()?, Kind::Dir)?;
    Ok(file.into())
}

/// The whole entry, its digest checked (the image is what follows [`HEADER_LEN`]); `Ok(None)`
/// if there is no entry.
fn read_entry(dir: &OwnedFd, name: &str) -> Result<Option<Vec<u8>>, BadEntry> {
    // NONBLOCK: opening a FIFO planted in place of an entry must not wait for a writer.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err(trust::Untrusted::Symlink.into()),
        Err(e) => return Err(std::io::Error::from(e).into()),
    };
    let mut file = File::from(fd);
    trust::check(&file.metadata()?, Kind::File)?;
    let mut entry = Vec::new();
    file.read_to_end(&mut entry)?;
    if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
        return Err(BadEntry::NoHeader);
    }
    let (header, image) = entry.split_at(HEADER_LEN);
    if Sha256::digest(image).as_slice() != &header[MAGIC.len()..] {
        return Err(BadEntry::Digest);
    }
    Ok(Some(entry))
}

fn deserialize(engine: &Engine, image: &[u8]) -> Result<Component, BadEntry> {
    // SAFETY: these bytes are what `write_entry` wrote from `Component::serialize` with this
    // engine's configuration (the key covers it), in a directory only we can write to, and
    // their digest was just checked; wasmtime copies them, so nothing changes them after.
    unsafe { Component::deserialize(engine, image) }
        .map_err(|e| BadEntry::Deserialize(format!("{e}")))
}

fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    env!("CARGO_PKG_VERSION").hash(&mut engine_hash);
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}", engine_hash.finish())
}

/// Write the entry beside and rename it into place; on any failure remove what was written.
fn write_entry(dir: &OwnedFd, name: &str, component: &Component) -> Result<(), std::io::Error> {
    let image = component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e}")))?;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let fd = rustix::fs::openat(
        dir,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::RUSR | Mode::WUSR,
    )?;
    let written = (|| {
        let mut file = File::from(fd);
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(&image))?;
        file.write_all(&image)?;
        // No fsync: an entry torn by a crash fails its digest and is compiled again.
        rustix::fs::renameat(dir, &tmp, dir, name)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    }
    written
}

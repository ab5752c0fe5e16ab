//! Whether a file or directory is ours alone: owned by the effective user and writable by
//! nobody else. What the node runs or listens on from the file system (compiled modules, the
//! control socket's directory) must be, or another user could change it under us.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// Why a file or directory is not ours alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Untrusted {
    /// It is a symbolic link (which may point anywhere, and may be changed to).
    #[error("it is a symlink")]
    Symlink,
    /// It is not the kind of file expected.
    #[error("it is not a {0}")]
    Kind(&'static str),
    /// Another user owns it.
    #[error("it belongs to uid {owner}, not to uid {us}")]
    Owner {
        /// Its owner.
        owner: u32,
        /// The effective uid.
        us: u32,
    },
    /// Its group or others may write to it.
    #[error("it is writable by group or others (mode {0:03o})")]
    Writable(u32),
}

/// The kinds of file checked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Dir,
    File,
}

/// Check `meta` (from `lstat` or `fstat`, which never follow a link) describes a `kind` owned
/// by the effective uid that only it may write to.
pub(crate) fn check(meta: &Metadata, kind: Kind) -> Result<(), Untrusted> {
    let ty = meta.file_type();
    if ty.is_symlink() {
        return Err(Untrusted::Symlink);
    }
    match kind {
        Kind::Dir if !ty.is_dir() => return Err(Untrusted::Kind("directory")),
        Kind::File if !ty.is_file() => return Err(Untrusted::Kind("regular file")),
        _ => {}
    }
    check_owner(meta)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Untrusted::Writable(mode));
    }
    Ok(())
}

/// Check only that the effective uid owns what `meta` describes.
pub(crate) fn check_owner(meta: &Metadata) -> Result<(), Untrusted> {
    let us = rustix::process::geteuid().as_raw();
    if meta.uid() != us {
        return Err(Untrusted::Owner {
            owner: meta.uid(),
            us,
        });
    }
    Ok(())
}

//! The compiled-module cache: compiling a component takes tens of milliseconds, loading its
//! precompiled image a fraction of one, so compiled modules are kept on disk keyed by the
//! module's bytes and the engine's settings.
//!
//! The directory must be trusted: loading a precompiled image runs its machine code. It is
//! created owner-only (0700) and its files are written owner-only.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled modules are cached, if anywhere.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        CompileCache { dir }
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
        let Some(dir) = &self.dir else {
            return compile();
        };
        let path = dir.join(format!("{}.cwasm", key(engine, bytes)));
        if path.is_file() {
            // SAFETY: the file was written by `store` below from `Component::serialize` of
            // this engine's configuration (the key covers it), in an owner-only directory.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring a bad cache entry: {e:#}")
                }
            }
        }
        let component = compile()?;
        if let Err(e) = store(dir, &path, &component) {
            tracing::debug!(dir = %dir.display(), "compiled-module cache not written: {e:#}");
        }
        Ok(component)
    }
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

fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let image = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    // Write beside and rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&image)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

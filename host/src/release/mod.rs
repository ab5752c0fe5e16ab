//! Releases, as OTP's `release_handler` with appup/relup: a node started from a manifest
//! runs that manifest as its release, and `otter reload` moves it to another manifest's.
//!
//! [`ReleaseHandler::reload`] compares the running release with the new manifest and makes
//! a plan: modules whose bytes changed are upgraded ([`crate::Node::upgrade`], in the
//! tree's start order), new modules loaded, new children started, removed children
//! stopped (terminated and deleted, as a relup does), and children whose spec changed get
//! the new spec, used at their next restart (as OTP's supervisor `code_change` does).
//! Modules whose grants changed get them first, so that every process the reload starts
//! has them; a running process keeps the grants it started with (its WASI context and the
//! handles it holds are its own) until it restarts. The
//! plan is applied step by step; if a step fails, the steps done so far are undone in
//! reverse order, and the node runs the release it ran before. The previous release is
//! kept, and [`ReleaseHandler::rollback`] returns to it the same way.
//!
//! A module's bytes are compared by their SHA-256, not by file times; the running release
//! keeps each module's bytes, so that a rollback returns to the very code that ran even if
//! its file was rebuilt since.

mod apply;
mod error;
mod handler;
mod plan;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::ReloadError;
pub use handler::ReleaseHandler;

use crate::manifest::Manifest;
use crate::term::Term;

/// A release: a checked manifest and the bytes of each module it loads.
#[derive(Debug, Clone)]
pub struct Release {
    manifest: Manifest,
    modules: Vec<ReleaseModule>,
}

/// One module of a release: where it came from, and the bytes it was loaded from.
#[derive(Debug, Clone)]
struct ReleaseModule {
    name: String,
    path: PathBuf,
    bytes: Arc<[u8]>,
    digest: [u8; 32],
}

impl Release {
    /// The release of `manifest`, whose modules were loaded from `bytes` (by name).
    ///
    /// # Panics
    /// If a module of the manifest has no bytes: a programmer error.
    pub fn new(manifest: Manifest, mut bytes: Vec<(String, Arc<[u8]>)>) -> Release {
        let modules = manifest
            .modules
            .iter()
            .map(|m| {
                let i = bytes
                    .iter()
                    .position(|(n, _)| *n == m.name)
                    .expect("every module's bytes");
                let (_, bytes) = bytes.swap_remove(i);
                ReleaseModule {
                    name: m.name.clone(),
                    path: m.path.clone(),
                    digest: digest(&bytes),
                    bytes,
                }
            })
            .collect();
        Release { manifest, modules }
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's `version`, if it has one.
    pub fn version(&self) -> Option<&str> {
        self.manifest.version.as_deref()
    }

    fn module(&self, name: &str) -> Option<&ReleaseModule> {
        self.modules.iter().find(|m| m.name == name)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(bytes).into()
}

pub use crate::file::MAX_MANIFEST_BYTES;

/// How to reload.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Make and return the plan, change nothing. Default `false`.
    pub dry_run: bool,
    /// `code-change`'s `extra` for every module the reload upgrades (and for the downgrades
    /// that undo them). Default `null`.
    pub extra: Term,
    /// Upgrade modules whose new code reports the running `vsn`. Default `false`.
    pub force: bool,
    /// How long each process's `code-change` may take. Default
    /// [`crate::DEFAULT_UPGRADE_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            dry_run: false,
            extra: crate::term::encode(&()).expect("null encodes"),
            force: false,
            timeout: crate::DEFAULT_UPGRADE_TIMEOUT,
        }
    }
}

impl ReloadOptions {
    /// Refuse what no step could use, before any step runs.
    fn check(&self, node: &crate::node::Node) -> Result<(), ReloadError> {
        node.inner
            .check_size("extra", &self.extra)
            .map_err(ReloadError::Refused)
    }
}

/// One step of a reload's plan, as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Load a module the running release does not have.
    Load {
        /// The module.
        module: String,
        /// Its version.
        vsn: String,
    },
    /// Upgrade (or downgrade) a module whose bytes changed.
    Upgrade {
        /// The module.
        module: String,
        /// The version it runs.
        from_vsn: String,
        /// The version it moves to.
        to_vsn: String,
    },
    /// Give a module the new release's grants: the processes started from now on (and
    /// restarts) get them; the ones running keep theirs until they restart.
    Grant {
        /// The module.
        module: String,
        /// How many of its processes run now, keeping the grants they started with.
        running: usize,
    },
    /// Create a registry the running release does not have.
    CreateRegistry {
        /// Its name.
        registry: String,
    },
    /// Stop a child the new release does not have, and delete its spec.
    Stop {
        /// Its supervisor, as the ids from the root joined by `/`.
        supervisor: String,
        /// Its id.
        child: String,
    },
    /// Start a child the running release does not have (after its supervisor's others).
    Start {
        /// Its supervisor, as the ids from the root joined by `/`.
        supervisor: String,
        /// Its id.
        child: String,
        /// Its module, or `supervisor`.
        module: String,
    },
    /// Give a child a changed spec, which its next restart uses.
    ChangeSpec {
        /// Its supervisor, as the ids from the root joined by `/`.
        supervisor: String,
        /// Its id.
        child: String,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Load { module, vsn } => write!(f, "load module {module} (vsn {vsn})"),
            Step::Upgrade {
                module,
                from_vsn,
                to_vsn,
            } => write!(f, "upgrade module {module}: vsn {from_vsn} -> {to_vsn}"),
            Step::Grant { module, running } => write!(
                f,
                "grant module {module} its new grants (processes started from now on; {running} running keep theirs until they restart)"
            ),
            Step::CreateRegistry { registry } => write!(f, "create registry {registry}"),
            Step::Stop { supervisor, child } => {
                write!(f, "stop child {child} of {supervisor}")
            }
            Step::Start {
                supervisor,
                child,
                module,
            } => write!(f, "start child {child} ({module}) under {supervisor}"),
            Step::ChangeSpec { supervisor, child } => write!(
                f,
                "change the spec of child {child} of {supervisor} (used when it restarts)"
            ),
        }
    }
}

/// What a reload or rollback did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The running release's version.
    pub from_version: Option<String>,
    /// The new release's version.
    pub to_version: Option<String>,
    /// The plan, in the order it is applied.
    pub steps: Vec<Step>,
    /// What the new release changes that a reload does not apply (node settings, the
    /// root supervisor's flags, a registry's kind): each takes effect at the next start.
    pub notes: Vec<String>,
    /// Whether the plan was applied (false for a dry run).
    pub applied: bool,
}

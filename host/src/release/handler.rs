//! The node's release handler: the running release, the previous one, and one reload at a
//! time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Release, ReloadError, ReloadOptions, ReloadReport, plan};
use crate::manifest::{Manifest, SupervisorTable};
use crate::node::Node;
use crate::supervisor::Supervisor;
use crate::upgrade::{MAX_MODULE_BYTES, ReloadSlot};

/// The releases of a node running an application (OTP's `release_handler`): the one it
/// runs and the one before, which [`ReleaseHandler::rollback`] returns to.
///
/// ```no_run
/// # async fn demo(handler: otter::release::ReleaseHandler) -> Result<(), otter::release::ReloadError> {
/// let report = handler.reload("app.toml", Default::default()).await?;
/// for step in &report.steps {
///     println!("{step}");
/// }
/// # Ok(()) }
/// ```
pub struct ReleaseHandler {
    node: Node,
    root: Supervisor,
    releases: tokio::sync::Mutex<Releases>,
    /// The running release's tree, for readers that must not wait for a reload.
    tree: Mutex<SupervisorTable>,
}

#[derive(Debug)]
struct Releases {
    current: Release,
    previous: Option<Release>,
}

impl std::fmt::Debug for ReleaseHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseHandler")
            .field("root", &self.root.pid())
            .finish_non_exhaustive()
    }
}

impl ReleaseHandler {
    /// The handler of a node that runs `release` under the root supervisor `root`.
    pub fn new(node: Node, root: Supervisor, release: Release) -> ReleaseHandler {
        ReleaseHandler {
            node,
            root,
            tree: Mutex::new(release.manifest.supervisor.clone()),
            releases: tokio::sync::Mutex::new(Releases {
                current: release,
                previous: None,
            }),
        }
    }

    /// The running release's supervision tree, as its manifest describes it.
    pub fn tree(&self) -> SupervisorTable {
        self.tree.lock().expect("release tree lock").clone()
    }

    /// Move the node to the release the manifest at `path` describes; see the module docs.
    ///
    /// # Errors
    /// [`ReloadError::Manifest`] (with file, line and field) for a manifest that does not
    /// parse or check, or a module that is not a server; [`ReloadError::Busy`] while a
    /// reload, rollback or upgrade runs; [`ReloadError::Refused`] for a plan that cannot
    /// be made; [`ReloadError::StepFailed`] if a step failed (the ones before it undone).
    ///
    /// # Cancel safety
    /// Dropping the future in the middle of the plan leaves the steps done so far in
    /// place; wait for it.
    pub async fn reload(
        &self,
        path: impl AsRef<Path>,
        opts: ReloadOptions,
    ) -> Result<ReloadReport, ReloadError> {
        let (mut releases, _slot) = self.lock()?;
        opts.check(&self.node)?;
        let path = path.as_ref().to_owned();
        let manifest = tokio::task::spawn_blocking(move || load_manifest(&path))
            .await
            .map_err(|e| ReloadError::Refused(format!("reading the manifest failed: {e}")))??;
        let mut bytes = Vec::with_capacity(manifest.modules.len());
        for m in &manifest.modules {
            let read = crate::file::read_regular_async(&m.path, MAX_MODULE_BYTES).await;
            let read = read.map_err(|e| {
                manifest.error_at(m.line, format!("modules.{}.path", m.name), e.to_string())
            })?;
            bytes.push((m.name.clone(), Arc::from(read)));
        }
        let target = Release::new(manifest, bytes);
        let report = self.go(&releases.current, &target, &opts).await?;
        if report.applied {
            *self.tree.lock().expect("release tree lock") = target.manifest.supervisor.clone();
            releases.previous = Some(std::mem::replace(&mut releases.current, target));
        }
        Ok(report)
    }

    /// Return to the release that ran before the last reload (or rollback), the same way.
    ///
    /// # Errors
    /// [`ReloadError::NoPrevious`]; otherwise as [`ReleaseHandler::reload`].
    ///
    /// # Cancel safety
    /// As [`ReleaseHandler::reload`].
    pub async fn rollback(&self, opts: ReloadOptions) -> Result<ReloadReport, ReloadError> {
        let (mut releases, _slot) = self.lock()?;
        opts.check(&self.node)?;
        let target = releases.previous.clone().ok_or(ReloadError::NoPrevious)?;
        let report = self.go(&releases.current, &target, &opts).await?;
        if report.applied {
            *self.tree.lock().expect("release tree lock") = target.manifest.supervisor.clone();
            releases.previous = Some(std::mem::replace(&mut releases.current, target));
        }
        Ok(report)
    }

    /// The releases, and the node's reload slot, which keeps module upgrades out until the
    /// reload ends.
    fn lock(&self) -> Result<(tokio::sync::MutexGuard<'_, Releases>, ReloadSlot<'_>), ReloadError> {
        let releases = self
            .releases
            .try_lock()
            .map_err(|_| ReloadError::Busy("a reload or rollback is running".into()))?;
        let slot =
            self.node.inner.reload_slot().map_err(|module| {
                ReloadError::Busy(format!("module {module} is being upgraded"))
            })?;
        Ok((releases, slot))
    }

    async fn go(
        &self,
        running: &Release,
        target: &Release,
        opts: &ReloadOptions,
    ) -> Result<ReloadReport, ReloadError> {
        if !self.root.is_alive() {
            return Err(ReloadError::Refused(
                "the application's root supervisor has exited".into(),
            ));
        }
        let plan = plan::plan(&self.node, running, target, opts).await?;
        let mut report = ReloadReport {
            from_version: running.version().map(str::to_owned),
            to_version: target.version().map(str::to_owned),
            steps: plan.steps.iter().map(|(s, _)| s.clone()).collect(),
            notes: plan.notes.clone(),
            applied: false,
        };
        if !opts.dry_run {
            super::apply::apply(&self.node, &self.root, &plan, opts).await?;
            report.applied = true;
            tracing::info!(
                from = report.from_version.as_deref().unwrap_or("-"),
                to = report.to_version.as_deref().unwrap_or("-"),
                steps = report.steps.len(),
                "release installed"
            );
        }
        Ok(report)
    }
}

/// The manifest at `path`, read as `otter run` reads one (a regular file within
/// [`MAX_MANIFEST_BYTES`](super::MAX_MANIFEST_BYTES)).
fn load_manifest(path: &Path) -> Result<Manifest, ReloadError> {
    Ok(Manifest::load(path)?)
}

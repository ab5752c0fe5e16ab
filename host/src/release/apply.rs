//! Applying a plan step by step, and undoing the steps done when one fails.

use super::plan::{Action, Plan};
use super::{ReloadError, ReloadOptions};
use crate::dest::Dest;
use crate::node::Node;
use crate::supervisor::{ChildError, ChildSpec, Supervisor};
use crate::upgrade::UpgradeOptions;

/// Apply `plan` under `root`; on a failed step, undo the ones before it, newest first.
pub(super) async fn apply(
    node: &Node,
    root: &Supervisor,
    plan: &Plan,
    opts: &ReloadOptions,
) -> Result<(), ReloadError> {
    for (index, (step, action)) in plan.steps.iter().enumerate() {
        tracing::info!(%step, "reload");
        if let Err(reason) = forward(node, root, action, opts).await {
            tracing::warn!(%step, %reason, "reload step failed; undoing the steps before it");
            let mut undo_failures = Vec::new();
            for (done, action) in plan.steps[..index].iter().rev() {
                if let Err(why) = back(node, root, action, opts).await {
                    tracing::error!(step = %done, reason = %why, "undoing a reload step failed");
                    undo_failures.push(format!("undoing \"{done}\": {why}"));
                }
            }
            return Err(ReloadError::StepFailed {
                index,
                count: plan.steps.len(),
                step: Box::new(step.clone()),
                reason,
                undo_failures,
            });
        }
    }
    Ok(())
}

async fn forward(
    node: &Node,
    root: &Supervisor,
    action: &Action,
    opts: &ReloadOptions,
) -> Result<(), String> {
    match action {
        Action::Grant { module, new, .. } => {
            node.grant(module, new.clone()).map_err(|e| e.to_string())
        }
        Action::Load(module) => {
            node.inner.install_module(module.clone());
            Ok(())
        }
        Action::Upgrade { module, to, .. } => upgrade(node, module, to, opts, opts.force).await,
        Action::CreateRegistry(name, keys) => {
            node.create_registry(name, *keys).map_err(|e| e.to_string())
        }
        Action::Stop { supervisor, spec } => {
            stop(&at(node, root, supervisor).await?, &spec.id).await
        }
        Action::Start { supervisor, spec } => start(&at(node, root, supervisor).await?, spec).await,
        Action::ChangeSpec {
            supervisor, new, ..
        } => respec(&at(node, root, supervisor).await?, new).await,
    }
}

async fn back(
    node: &Node,
    root: &Supervisor,
    action: &Action,
    opts: &ReloadOptions,
) -> Result<(), String> {
    match action {
        Action::Grant { module, old, .. } => {
            node.inner.set_grants(module, old.clone());
            Ok(())
        }
        Action::Load(module) => {
            node.inner.unload_module(module);
            Ok(())
        }
        // The way back needs no vsn check: it is the code that ran.
        Action::Upgrade { module, back, .. } => upgrade(node, module, back, opts, true).await,
        // A registry no child uses any more is harmless; the node has no way to drop one.
        Action::CreateRegistry(..) => Ok(()),
        Action::Stop { supervisor, spec } => start(&at(node, root, supervisor).await?, spec).await,
        Action::Start { supervisor, spec } => {
            stop(&at(node, root, supervisor).await?, &spec.id).await
        }
        Action::ChangeSpec {
            supervisor, old, ..
        } => respec(&at(node, root, supervisor).await?, old).await,
    }
}

async fn upgrade(
    node: &Node,
    module: &str,
    to: &std::sync::Arc<crate::engine::Module>,
    opts: &ReloadOptions,
    force: bool,
) -> Result<(), String> {
    let upgrade = UpgradeOptions {
        extra: opts.extra.clone(),
        force,
        timeout: opts.timeout,
        ..UpgradeOptions::default()
    };
    node.upgrade_compiled(module, to.clone(), upgrade)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Start a child from `spec` (appended, as `start_child` does).
async fn start(sup: &Supervisor, spec: &ChildSpec) -> Result<(), String> {
    sup.start_child(spec.clone())
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Give a running child `spec` for its next restart.
async fn respec(sup: &Supervisor, spec: &ChildSpec) -> Result<(), String> {
    sup.replace_child_spec(spec.clone())
        .await
        .map_err(|e| e.to_string())
}

/// Terminate a child and delete its spec, as a relup removes a child. A child already
/// gone (a temporary one that exited) is not an error.
async fn stop(sup: &Supervisor, id: &str) -> Result<(), String> {
    for r in [sup.terminate_child(id).await, sup.delete_child(id).await] {
        match r {
            Ok(()) | Err(ChildError::NotFound) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The running supervisor reached from `root` through the children `ids`.
async fn at(node: &Node, root: &Supervisor, ids: &[String]) -> Result<Supervisor, String> {
    let mut sup = root.clone();
    for id in ids {
        let children = sup.which_children().await.map_err(|e| e.to_string())?;
        let pid = children
            .iter()
            .find(|c| c.id == *id)
            .and_then(|c| c.pid)
            .ok_or_else(|| format!("supervisor {id} is not running"))?;
        sup = node
            .supervisor(&Dest::Pid(pid))
            .ok_or_else(|| format!("supervisor {id} is not running"))?;
    }
    Ok(sup)
}

//! The plan of a reload: the difference between the running release and the new one.

use std::sync::Arc;

use super::{Release, ReloadError, ReloadOptions, Step};
use crate::engine::Module;
use crate::grants::ModuleGrants;
use crate::manifest::{ChildTableKind, SupervisorTable};
use crate::node::Node;
use crate::registry::Keys;
use crate::supervisor::{ChildSpec, Strategy};

/// What one step does, with what undoing it needs.
pub(super) enum Action {
    /// The module's grants before and after.
    Grant {
        module: String,
        old: Arc<ModuleGrants>,
        new: ModuleGrants,
    },
    Load(Arc<Module>),
    /// The new code, compiled while planning, and the code that ran, to go back to.
    Upgrade {
        module: String,
        to: Arc<Module>,
        back: Arc<Module>,
    },
    CreateRegistry(String, Keys),
    /// `supervisor` is the ids below the root.
    Stop {
        supervisor: Vec<String>,
        spec: ChildSpec,
    },
    Start {
        supervisor: Vec<String>,
        spec: ChildSpec,
    },
    /// Boxed: two specs would make every action as large.
    ChangeSpec {
        supervisor: Vec<String>,
        old: Box<ChildSpec>,
        new: Box<ChildSpec>,
    },
}

/// The steps, in the order they are applied, and what is left for the next start.
pub(super) struct Plan {
    pub(super) steps: Vec<(Step, Action)>,
    pub(super) notes: Vec<String>,
}

/// The plan that takes the node from `running` to `target`. Compiles the modules that
/// change (so a module that is not a server is refused before anything changes).
pub(super) async fn plan(
    node: &Node,
    running: &Release,
    target: &Release,
    opts: &ReloadOptions,
) -> Result<Plan, ReloadError> {
    let manifest = &target.manifest;
    let mut steps = Vec::new();
    let mut notes = Vec::new();

    // Grants first: a process the reload starts (a new child, a new module's) has them.
    let mut per_module = None;
    for m in &manifest.modules {
        let old = node.inner.grants(&m.name);
        if *old != m.grants {
            // Counted once, when a grant first changes.
            let per_module = per_module.get_or_insert_with(|| running_by_module(node));
            let running = per_module.get(m.name.as_str()).copied().unwrap_or(0);
            steps.push((
                Step::Grant {
                    module: m.name.clone(),
                    running,
                },
                Action::Grant {
                    module: m.name.clone(),
                    old,
                    new: m.grants.clone(),
                },
            ));
        }
    }

    let mut order = Vec::new();
    modules_in_start_order(&manifest.supervisor, &mut order);
    for m in &manifest.modules {
        if !order.contains(&m.name.as_str()) {
            order.push(&m.name);
        }
    }
    for name in order {
        let spec = manifest.module(name).expect("a manifest module");
        let new = target.module(name).expect("a release module");
        let field = format!("modules.{name}.path");
        let at =
            |message: String| ReloadError::Manifest(manifest.error_at(spec.line, &field, message));
        let current = node.inner.module(name);
        if current.as_ref().is_some_and(|c| c.digest() == &new.digest) {
            continue;
        }
        let compiled = crate::engine::compile(&node.inner, name, &new.path, &new.bytes)
            .await
            .map_err(|e| at(e.to_string()))?;
        if let Some(want) = &spec.vsn
            && compiled.vsn() != want
        {
            return Err(ReloadError::Manifest(manifest.error_at(
                spec.line,
                format!("modules.{name}.vsn"),
                format!(
                    "{} reports vsn {:?}, not {want:?}",
                    new.path.display(),
                    compiled.vsn()
                ),
            )));
        }
        let Some(current) = current else {
            steps.push((
                Step::Load {
                    module: name.to_owned(),
                    vsn: compiled.vsn().to_owned(),
                },
                Action::Load(Arc::new(compiled)),
            ));
            continue;
        };
        if compiled.vsn() == current.vsn() && !opts.force {
            return Err(at(format!(
                "the new code reports the running vsn {:?}; bump its vsn, or force the reload",
                current.vsn()
            )));
        }
        steps.push((
            Step::Upgrade {
                module: name.to_owned(),
                from_vsn: current.vsn().to_owned(),
                to_vsn: compiled.vsn().to_owned(),
            },
            Action::Upgrade {
                module: name.to_owned(),
                to: Arc::new(compiled),
                back: current,
            },
        ));
    }

    let registries = node.registries();
    for r in &manifest.registries {
        match registries.iter().find(|(name, _)| *name == r.name) {
            None => steps.push((
                Step::CreateRegistry {
                    registry: r.name.clone(),
                },
                Action::CreateRegistry(r.name.clone(), r.keys),
            )),
            Some((_, keys)) if *keys != r.keys => notes.push(format!(
                "registry {} changes its keys: at the next start",
                r.name
            )),
            Some(_) => {}
        }
    }

    let old = &running.manifest;
    if !old.same_node(manifest) {
        let keys = old.node_changes(manifest);
        notes.push(if keys.is_empty() {
            "[node] settings change: at the next start".into()
        } else {
            format!("[node] {} change: at the next start", keys.join(", "))
        });
    }
    if old.prometheus != manifest.prometheus || old.series_limits != manifest.series_limits {
        notes.push("[telemetry] settings change: at the next start".into());
    }
    let (o, n) = (&old.supervisor, &manifest.supervisor);
    if (o.id.as_str(), &o.name, o.strategy, o.intensity, o.period)
        != (n.id.as_str(), &n.name, n.strategy, n.intensity, n.period)
    {
        notes.push("the root supervisor's settings change: at the next start".into());
    }
    let mut children = Children::default();
    diff(&[], o, n, &mut children, &mut notes);
    let path = |ids: &[String]| {
        std::iter::once(n.id.as_str())
            .chain(ids.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("/")
    };
    for (supervisor, spec) in children.stops.into_iter().rev() {
        let step = Step::Stop {
            supervisor: path(&supervisor),
            child: spec.id.clone(),
        };
        steps.push((step, Action::Stop { supervisor, spec }));
    }
    for (supervisor, spec) in children.starts {
        let step = Step::Start {
            supervisor: path(&supervisor),
            child: spec.id.clone(),
            module: spec.module().to_owned(),
        };
        steps.push((step, Action::Start { supervisor, spec }));
    }
    for (supervisor, old, new) in children.changes {
        let step = Step::ChangeSpec {
            supervisor: path(&supervisor),
            child: new.id.clone(),
        };
        steps.push((
            step,
            Action::ChangeSpec {
                supervisor,
                old: Box::new(old),
                new: Box::new(new),
            },
        ));
    }
    Ok(Plan { steps, notes })
}

/// The worker modules of `sup`'s tree, in start order, each once.
fn modules_in_start_order<'a>(sup: &'a SupervisorTable, order: &mut Vec<&'a str>) {
    // Iterative, as every walk of a tree: the manifest bounds its depth, but no recursion.
    let mut stack = vec![sup.children.iter()];
    while let Some(top) = stack.last_mut() {
        let Some(child) = top.next() else {
            stack.pop();
            continue;
        };
        match &child.kind {
            ChildTableKind::Worker(w) => {
                if !order.contains(&w.module.as_str()) {
                    order.push(&w.module);
                }
            }
            ChildTableKind::Supervisor(s) => stack.push(s.children.iter()),
        }
    }
}

#[derive(Default)]
struct Children {
    stops: Vec<(Vec<String>, ChildSpec)>,
    starts: Vec<(Vec<String>, ChildSpec)>,
    changes: Vec<(Vec<String>, ChildSpec, ChildSpec)>,
}

/// The children to stop, start and respec to take the supervisor at `at` (ids below the
/// root) from `old` to `new`, nested supervisors included. Supervisors nest at most
/// [`crate::manifest::MAX_SUPERVISOR_DEPTH`] deep, so the recursion is bounded.
fn diff(
    at: &[String],
    old: &SupervisorTable,
    new: &SupervisorTable,
    out: &mut Children,
    notes: &mut Vec<String>,
) {
    let (old_spec, new_spec) = (old.to_spec(), new.to_spec());
    let dynamic = |s: &SupervisorTable| s.strategy == Strategy::SimpleOneForOne;
    if dynamic(old) || dynamic(new) {
        match (old_spec.children.first(), new_spec.children.first()) {
            (Some(o), Some(n)) if dynamic(old) && dynamic(new) && o != n => {
                out.changes.push((at.to_vec(), o.clone(), n.clone()));
            }
            _ if dynamic(old) != dynamic(new) && at.is_empty() => {
                notes.push("the root supervisor's strategy changes: at the next start".into())
            }
            _ => {}
        }
        return;
    }
    for (o, os) in old.children.iter().zip(&old_spec.children) {
        if !new.children.iter().any(|n| n.id == o.id) {
            out.stops.push((at.to_vec(), os.clone()));
        }
    }
    for (n, ns) in new.children.iter().zip(&new_spec.children) {
        let Some((o, os)) = old
            .children
            .iter()
            .zip(&old_spec.children)
            .find(|(o, _)| o.id == n.id)
        else {
            out.starts.push((at.to_vec(), ns.clone()));
            continue;
        };
        match (&o.kind, &n.kind) {
            (ChildTableKind::Supervisor(osub), ChildTableKind::Supervisor(nsub)) => {
                if os != ns {
                    out.changes.push((at.to_vec(), os.clone(), ns.clone()));
                }
                let mut below = at.to_vec();
                below.push(n.id.clone());
                diff(&below, osub, nsub, out, notes);
            }
            (ChildTableKind::Worker(_), ChildTableKind::Worker(_)) => {
                if os != ns {
                    out.changes.push((at.to_vec(), os.clone(), ns.clone()));
                }
            }
            // A worker that becomes a supervisor, or the reverse: a new child.
            _ => {
                out.stops.push((at.to_vec(), os.clone()));
                out.starts.push((at.to_vec(), ns.clone()));
            }
        }
    }
}

/// How many processes run each module's code, by module name.
fn running_by_module(node: &Node) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for entry in node.inner.entries() {
        if let Some(module) = entry.module() {
            *counts.entry(module.name().to_owned()).or_default() += 1;
        }
    }
    counts
}

//! The `tree` request: the application's live supervision tree, as typed nodes that the
//! endpoint writes and the CLI reads.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ControlError, ErrorKind};
use crate::Pid;
use crate::manifest::{ChildTable, ChildTableKind, SupervisorTable};
use crate::node::Node;
use crate::supervisor::{ChildInfo, Restart, Strategy, Supervisor};
use crate::term::to_json;

/// The application a node serves: its root supervisor and the manifest's tree.
#[derive(Debug)]
pub(crate) struct App {
    /// The running root supervisor.
    pub(crate) supervisor: Supervisor,
    /// What the manifest says it is (at startup: see [`App::spec`]).
    pub(crate) spec: SupervisorTable,
    /// The node's releases, when it was started from a manifest's release.
    pub(crate) releases: Option<crate::release::ReleaseHandler>,
}

impl App {
    /// The running release's tree: the manifest's, or the last reloaded one's.
    pub(crate) fn spec(&self) -> SupervisorTable {
        match &self.releases {
            Some(r) => r.tree(),
            None => self.spec.clone(),
        }
    }
}

/// One node of the answer to `tree`: `{"kind": "worker", ...}` or `{"kind": "supervisor",
/// ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TreeNode {
    /// A worker child.
    Worker(WorkerNode),
    /// A supervisor: the root, or a supervisor child.
    Supervisor(SupervisorNode),
}

/// A worker in the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerNode {
    /// Its id among its siblings (a dynamic supervisor's children all have the template's).
    pub id: String,
    /// Its pid; `None` if it is not running.
    pub pid: Option<Pid>,
    /// The module it runs.
    pub module: String,
    /// The version of the module's code it runs (it changes with `otter upgrade`); `None`
    /// if it is not running.
    #[serde(default)]
    pub vsn: Option<String>,
    /// The name it registers under.
    pub name: Option<String>,
    /// The `[registry, key]` it registers under, the key as JSON (`null` if it has none).
    pub via: Option<(String, Value)>,
    /// When it is restarted.
    pub restart: Restart,
    /// How many times its supervisor restarted it.
    pub restarts: u32,
}

/// A supervisor in the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorNode {
    /// Its id (the root's is `[supervisor] id`, by default the node's name).
    pub id: String,
    /// The name it registers under.
    pub name: Option<String>,
    /// Its pid; `None` if it is not running.
    pub pid: Option<Pid>,
    /// Always `supervisor`.
    pub module: String,
    /// When it is restarted (the root: `permanent`).
    pub restart: Restart,
    /// How many times its supervisor restarted it (the root: 0).
    pub restarts: u32,
    /// Its restart strategy.
    pub strategy: Strategy,
    /// Restarts allowed within `period_ms`.
    pub intensity: u32,
    /// The intensity window, in milliseconds.
    pub period_ms: u64,
    /// Its children, in start order; a dynamic supervisor's running children.
    pub children: Vec<TreeNode>,
}

/// The live tree of `app`.
pub(super) async fn tree(node: &Node, app: &App) -> Result<Value, ControlError> {
    let children = app.supervisor.which_children().await.map_err(|_| {
        ControlError::new(ErrorKind::Noproc, "the application's supervisor has exited")
    })?;
    let vsn = |pid: Pid| node.process_info(pid).map(|i| i.vsn);
    let spec = app.spec();
    let root = TreeNode::Supervisor(supervisor_node(
        &vsn,
        &spec,
        &children,
        Some(app.supervisor.pid()),
        Restart::Permanent,
        0,
    ));
    Ok(serde_json::to_value(root).expect("a tree is JSON"))
}

fn supervisor_node(
    vsn: &dyn Fn(Pid) -> Option<String>,
    spec: &SupervisorTable,
    live: &[ChildInfo],
    pid: Option<Pid>,
    restart: Restart,
    restarts: u32,
) -> SupervisorNode {
    let child = |c: &ChildTable, info: Option<&ChildInfo>| {
        let pid = info.and_then(|i| i.pid);
        let restarts = info.map_or(0, |i| i.restarts);
        match &c.kind {
            ChildTableKind::Worker(w) => TreeNode::Worker(WorkerNode {
                id: c.id.clone(),
                pid,
                module: w.module.clone(),
                vsn: pid.and_then(vsn),
                name: w.name.clone(),
                via: w
                    .via
                    .as_ref()
                    .map(|(registry, key)| (registry.clone(), to_json(key).unwrap_or(Value::Null))),
                restart: c.restart,
                restarts,
            }),
            ChildTableKind::Supervisor(s) => TreeNode::Supervisor(supervisor_node(
                vsn,
                s,
                info.map_or(&[][..], |i| &i.children),
                pid,
                c.restart,
                restarts,
            )),
        }
    };
    let children = match (spec.strategy, spec.children.first()) {
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
    SupervisorNode {
        id: spec.id.clone(),
        name: spec.name.clone(),
        pid,
        module: "supervisor".into(),
        restart,
        restarts,
        strategy: spec.strategy,
        intensity: spec.intensity,
        period_ms: u64::try_from(spec.period.as_millis()).unwrap_or(u64::MAX),
        children,
    }
}

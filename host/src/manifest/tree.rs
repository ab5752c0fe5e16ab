//! The supervision tree as the manifest describes it: supervisors and their children, with
//! the lines of their tables, and the runtime's specs made of them.

use std::time::Duration;

use crate::supervisor::{self as sup, Restart, Shutdown, Strategy};
use crate::term::Term;

/// A supervisor as the manifest describes it: the root (`[supervisor]`) or a `type =
/// "supervisor"` child, with the lines of its tables; [`SupervisorTable::to_spec`] makes the
/// runtime's [`crate::SupervisorSpec`] of it.
#[derive(Debug, Clone)]
pub struct SupervisorTable {
    /// Its id: `[supervisor] id` (default: the node's name) or the child's id.
    pub id: String,
    /// The local name it registers under while it runs.
    pub name: Option<String>,
    /// Its restart strategy. Default `one_for_one`.
    pub strategy: Strategy,
    /// Restarts allowed within `period`. Default 3.
    pub intensity: u32,
    /// The intensity window (`period_ms`). Default 5 s.
    pub period: Duration,
    /// Its children, in start order.
    pub children: Vec<ChildTable>,
    /// The manifest line of its table (1 for a root without `[supervisor]`).
    pub line: usize,
}

/// A child as the manifest describes it (the runtime's is [`crate::ChildSpec`]).
#[derive(Debug, Clone)]
pub struct ChildTable {
    /// Its id among its siblings: `id`, else `name`, else `module`.
    pub id: String,
    /// When it is restarted. Default permanent.
    pub restart: Restart,
    /// How it is stopped: `shutdown` (or the older `shutdown_timeout_ms`). Default 5000 ms
    /// for workers, infinity for supervisors.
    pub shutdown: Shutdown,
    /// A worker or a supervisor.
    pub kind: ChildTableKind,
    /// The manifest line where the child's table starts.
    pub line: usize,
}

/// What a child is.
#[derive(Debug, Clone)]
pub enum ChildTableKind {
    /// A process of a module.
    Worker(WorkerSpec),
    /// A supervisor with its own children.
    Supervisor(SupervisorTable),
}

/// A worker child's process.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The name it registers under.
    pub name: Option<String>,
    /// The module it runs.
    pub module: String,
    /// The CBOR argument to `init`: the manifest's `args` converted through JSON, or CBOR
    /// unit (what a server with `Args = ()` expects) when absent.
    pub args: Term,
    /// `via = [registry, key]`: the key (CBOR) it registers under in a unique registry of
    /// the manifest, instead of a name.
    pub via: Option<(String, Term)>,
    /// `start_timeout_ms`: how long `init` may take before the start fails (default: as
    /// long as it takes).
    pub start_timeout: Option<Duration>,
    /// `hibernate_after_ms`: hibernate whenever idle this long (default: never).
    pub hibernate_after: Option<Duration>,
    /// `memory_limit`, `callback_timeout_ms` and `mailbox` (default: the node's limits, an
    /// unbounded mailbox).
    pub limits: crate::ProcessLimits,
    /// `grants`: its own WASI grants, within its module's (default: its module's).
    pub grants: Option<Box<crate::grants::ModuleGrants>>,
}

impl ChildTable {
    /// How logs and errors name the child: its id.
    pub fn label(&self) -> &str {
        &self.id
    }

    /// The worker's module, or `supervisor`.
    pub fn module(&self) -> &str {
        match &self.kind {
            ChildTableKind::Worker(w) => &w.module,
            ChildTableKind::Supervisor(_) => "supervisor",
        }
    }
}

impl SupervisorTable {
    /// The runtime's spec for this supervisor and everything under it.
    pub fn to_spec(&self) -> sup::SupervisorSpec {
        let mut spec =
            sup::SupervisorSpec::new(self.strategy).intensity(self.intensity, self.period);
        spec.name = self.name.clone();
        for c in &self.children {
            let child = match &c.kind {
                ChildTableKind::Worker(w) => {
                    let mut child = sup::ChildSpec::worker(&c.id, &w.module, w.args.clone());
                    if let Some(n) = &w.name {
                        child = child.name(n);
                    }
                    if let Some((registry, key)) = &w.via {
                        child = child.via(registry, key.clone());
                    }
                    if let Some(t) = w.start_timeout {
                        child = child.start_timeout(t);
                    }
                    if let Some(t) = w.hibernate_after {
                        child = child.hibernate_after(t);
                    }
                    if let Some(g) = &w.grants {
                        child = child.grants((**g).clone());
                    }
                    child.limits(w.limits)
                }
                ChildTableKind::Supervisor(s) => sup::ChildSpec::supervisor(&c.id, s.to_spec()),
            };
            spec = spec.child(child.restart(c.restart).shutdown(c.shutdown));
        }
        spec
    }

    /// The line of what a runtime field path such as `children[1].children[0].id` is in:
    /// the innermost child it names, else this supervisor.
    pub fn line_of(&self, field: &str) -> usize {
        let mut sup = self;
        let mut line = self.line;
        let mut rest = field;
        while let Some(r) = rest.strip_prefix("children[") {
            let Some((i, r)) = r.split_once(']') else {
                break;
            };
            let Some(child) = i.parse::<usize>().ok().and_then(|i| sup.children.get(i)) else {
                break;
            };
            line = child.line;
            rest = r.strip_prefix('.').unwrap_or(r);
            match &child.kind {
                ChildTableKind::Supervisor(s) => sup = s,
                ChildTableKind::Worker(_) => break,
            }
        }
        line
    }

    /// The field path and line of the child reached by following `ids` (outermost first).
    pub fn locate(&self, ids: &[&str]) -> Option<(String, usize)> {
        let (first, rest) = ids.split_first()?;
        let (i, child) = self
            .children
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == *first)?;
        let here = format!("children[{i}]");
        match (&child.kind, rest.is_empty()) {
            (_, true) => Some((here, child.line)),
            (ChildTableKind::Supervisor(s), false) => s
                .locate(rest)
                .map(|(f, l)| (format!("{here}.{f}"), l))
                .or(Some((here, child.line))),
            (ChildTableKind::Worker(_), false) => Some((here, child.line)),
        }
    }
}

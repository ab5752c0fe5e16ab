//! Checking the `[node]` table: the node's name, its control socket and its limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::engine_limits::EngineLimits;
use super::host_limits::HostLimits;
use super::parse::Parser;
use super::raw::{RawManifest, RawNode};
use super::{Manifest, ManifestError};

/// The checked `[node]` table; a `None` keeps the node's default.
pub(super) struct NodeTable {
    pub(super) name: String,
    pub(super) control: Option<PathBuf>,
    pub(super) max_message_size: Option<usize>,
    pub(super) max_processes: Option<usize>,
    pub(super) max_timers: Option<usize>,
    pub(super) max_registry_keys: Option<usize>,
    pub(super) memory_limit: Option<usize>,
    pub(super) callback_timeout: Option<Duration>,
    pub(super) control_limits: crate::control::Limits,
    pub(super) host_limits: HostLimits,
    pub(super) engine_limits: EngineLimits,
}

impl Parser<'_> {
    /// `[node]`, or its defaults; relative paths are resolved against `base`.
    pub(super) fn node(&self, raw: &RawManifest, base: &Path) -> Result<NodeTable, ManifestError> {
        let node_name = match raw.node.as_ref().and_then(|n| n.name.as_ref()) {
            Some(name) => {
                check_node_name(name.get_ref())
                    .map_err(|m| self.error(&name.span(), "node.name", m))?;
                name.get_ref().clone()
            }
            None => {
                let stem = self
                    .file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                check_node_name(&stem).map_err(|m| ManifestError {
                    file: self.file.to_owned(),
                    line: None,
                    field: "node.name".into(),
                    message: format!("the file's stem cannot name the node ({m}); set [node] name"),
                })?;
                stem
            }
        };
        let control = raw
            .node
            .as_ref()
            .and_then(|n| n.control.as_ref())
            .map(|c| {
                if c.get_ref().is_empty() {
                    Err(self.error(&c.span(), "node.control", "empty path"))
                } else {
                    Ok(base.join(c.get_ref()))
                }
            })
            .transpose()?;

        let max_message_size = match &raw.node {
            Some(node) => self
                .positive(&node.max_message_size, "max_message_size")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            None => None,
        };
        let node_u64 = |pick: fn(&RawNode) -> &Option<Spanned<u64>>, field: &str| match &raw.node {
            Some(node) => self.positive(pick(node), field),
            None => Ok(None),
        };
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let max_processes = node_u64(|n| &n.max_processes, "max_processes")?.map(as_usize);
        let max_timers = node_u64(|n| &n.max_timers, "max_timers")?.map(as_usize);
        let max_registry_keys =
            node_u64(|n| &n.max_registry_keys, "max_registry_keys")?.map(as_usize);
        let memory_limit = node_u64(|n| &n.memory_limit, "memory_limit")?.map(as_usize);
        if let (Some(bytes), Some(node)) = (memory_limit, &raw.node)
            && bytes > crate::pools::MAX_MEMORY_SLOT
            && let Some(m) = &node.memory_limit
        {
            return Err(self.error(
                &m.span(),
                "node.memory_limit",
                format!("at most {} bytes", crate::pools::MAX_MEMORY_SLOT),
            ));
        }
        let callback_timeout =
            node_u64(|n| &n.callback_timeout_ms, "callback_timeout_ms")?.map(Duration::from_millis);
        let control_limits = match &raw.node {
            Some(node) => self.control_limits(node)?,
            None => crate::control::Limits::default(),
        };
        let host_limits = self.host_limits(raw.node.as_ref())?;
        let engine_limits = self.engine_limits(raw.node.as_ref(), callback_timeout)?;
        Ok(NodeTable {
            name: node_name,
            control,
            max_message_size,
            max_processes,
            max_timers,
            max_registry_keys,
            memory_limit,
            callback_timeout,
            control_limits,
            host_limits,
            engine_limits,
        })
    }

    /// `[node] field`, which must be positive if it is given.
    pub(super) fn positive(
        &self,
        v: &Option<Spanned<u64>>,
        field: &str,
    ) -> Result<Option<u64>, ManifestError> {
        match v {
            Some(v) if *v.get_ref() == 0 => {
                Err(self.error(&v.span(), format!("node.{field}"), "must be positive"))
            }
            Some(v) => Ok(Some(*v.get_ref())),
            None => Ok(None),
        }
    }

    /// `[node] control_*`: the control socket's limits, each positive.
    fn control_limits(&self, node: &RawNode) -> Result<crate::control::Limits, ManifestError> {
        let mut limits = crate::control::Limits::default();
        if let Some(bytes) =
            self.positive(&node.control_max_request_bytes, "control_max_request_bytes")?
        {
            limits.max_request_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        if let Some(ms) = self.positive(&node.control_idle_timeout_ms, "control_idle_timeout_ms")? {
            limits.idle_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.positive(&node.control_max_connections, "control_max_connections")? {
            limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(limits)
    }
}

impl Manifest {
    /// The `[node]` keys whose values differ in `other`, in the order the manifest docs
    /// list them (`otter reload` names them: they take effect at the next start). Most keys
    /// compare as written, so a key left out and one set to its default differ; `name`,
    /// `control` and the `control_*` limits compare as resolved. A test fails when a key
    /// that reaches the node is missing here.
    pub fn node_changes(&self, other: &Manifest) -> Vec<&'static str> {
        let (a, b) = (self, other);
        let (la, lb) = (&a.control_limits, &b.control_limits);
        [
            ("name", a.node_name != b.node_name),
            ("control", a.control != b.control),
            ("max_message_size", a.max_message_size != b.max_message_size),
            (
                "control_max_request_bytes",
                la.max_request_bytes != lb.max_request_bytes,
            ),
            (
                "control_idle_timeout_ms",
                la.idle_timeout != lb.idle_timeout,
            ),
            (
                "control_max_connections",
                la.max_connections != lb.max_connections,
            ),
            ("max_processes", a.max_processes != b.max_processes),
            ("max_timers", a.max_timers != b.max_timers),
            (
                "max_registry_keys",
                a.max_registry_keys != b.max_registry_keys,
            ),
            ("memory_limit", a.memory_limit != b.memory_limit),
            (
                "callback_timeout_ms",
                a.callback_timeout != b.callback_timeout,
            ),
            ("max_tables", a.max_tables != b.max_tables),
            (
                "max_tables_per_process",
                a.max_tables_per_process != b.max_tables_per_process,
            ),
            ("max_table_bytes", a.max_table_bytes != b.max_table_bytes),
            (
                "max_sql_statements",
                a.max_sql_statements != b.max_sql_statements,
            ),
            ("max_guest_files", a.max_guest_files != b.max_guest_files),
            ("spare_instances", a.spare_instances != b.spare_instances),
            ("max_wasm_stack", a.max_wasm_stack != b.max_wasm_stack),
            ("epoch_tick_ms", a.epoch_tick != b.epoch_tick),
            ("load_timeout_ms", a.load_timeout != b.load_timeout),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
    }
}

pub(super) fn check_node_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("empty name".into())
    } else if name.contains(['/', '\0']) || name == "." || name == ".." {
        Err(format!("{name:?} cannot name a socket file"))
    } else {
        Ok(())
    }
}

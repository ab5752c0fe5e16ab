//! Checking a read manifest and building the typed one, with file:line: field errors.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::child::Tree;
use super::raw::*;
use super::text;
use super::*;
use crate::supervisor::Strategy;

/// How deep the TOML parser lets keys and values nest (toml 0.9 refuses more, without
/// overflowing the stack).
const TOML_NESTING_LIMIT: usize = 80;

pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
}

impl Parser<'_> {
    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        // Spans always fall on char boundaries; count lines in bytes to be safe anyway.
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn error(
        &self,
        span: &Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.file.to_owned(),
            line: Some(self.line_of(span)),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(super) fn base_dir(&self) -> PathBuf {
        let dir = match self.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    pub(super) fn parse(&self) -> Result<Manifest, ManifestError> {
        let raw = self.deserialize()?;
        let base = self.base_dir();
        let version = match &raw.version {
            Some(v) => {
                check_version(v.get_ref()).map_err(|m| self.error(&v.span(), "version", m))?;
                Some(v.get_ref().clone())
            }
            None => None,
        };

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

        let mut modules = Vec::with_capacity(raw.modules.len());
        for (name, spec) in &raw.modules {
            let span = spec.span();
            let spec = spec.get_ref();
            let (field, path_span) = match &spec.path_span {
                Some(s) => (format!("modules.{name}.path"), s.clone()),
                None => (format!("modules.{name}"), span.clone()),
            };
            if name.is_empty() {
                return Err(self.error(&span, "modules", "a module needs a name"));
            }
            if spec.path.is_empty() {
                return Err(self.error(&path_span, field, "empty path"));
            }
            let path = base.join(&spec.path);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => {}
                Ok(_) => {
                    return Err(self.error(
                        &path_span,
                        field,
                        format!("{}: not a file", path.display()),
                    ));
                }
                Err(e) => {
                    return Err(self.error(&path_span, field, format!("{}: {e}", path.display())));
                }
            }
            let grants = match &spec.grants {
                Some(g) => self.grants(&format!("modules.{name}.grants"), g.get_ref(), &base)?,
                None => Default::default(),
            };
            modules.push(ModuleSpec {
                name: name.clone(),
                path,
                vsn: spec.vsn.clone(),
                grants,
                line: self.line_of(&path_span),
            });
        }

        let registries = self.registries(&raw.registries)?;

        let mut tree = Tree {
            modules: &raw.modules,
            module_specs: &modules,
            base: &base,
            registries: &registries,
            names: HashMap::new(),
            vias: HashMap::new(),
            memory_limit: memory_limit.unwrap_or(crate::EngineConfig::default().max_memory),
        };
        let (root_line, strategy, intensity, period, root_id, root_name) = match &raw.supervisor {
            None => (1, None, None, None, None, None),
            Some(t) => {
                let r = t.get_ref();
                (
                    self.line_of(&t.span()),
                    r.strategy.as_ref(),
                    r.intensity,
                    r.period_ms.as_ref(),
                    r.id.as_ref(),
                    r.name.as_ref(),
                )
            }
        };
        let root_name = self.name(&mut tree.names, root_name, "supervisor.name", "supervisor")?;
        let id = match root_id {
            Some(id) if id.get_ref().is_empty() => {
                return Err(self.error(&id.span(), "supervisor.id", "empty id"));
            }
            Some(id) => id.get_ref().clone(),
            None => node_name.clone(),
        };
        let supervisor = self.supervisor(
            &mut tree,
            "supervisor.",
            "",
            id,
            root_name,
            root_line,
            strategy,
            intensity,
            period,
            &raw.children,
        )?;

        Ok(Manifest {
            path: self.file.to_owned(),
            version,
            node_name,
            control,
            max_message_size,
            max_processes,
            max_timers,
            max_registry_keys,
            memory_limit,
            callback_timeout,
            max_tables: host_limits.max_tables,
            max_tables_per_process: host_limits.max_tables_per_process,
            max_table_bytes: host_limits.max_table_bytes,
            max_sql_statements: host_limits.max_sql_statements,
            max_guest_files: host_limits.max_guest_files,
            control_limits,
            modules,
            supervisor,
            prometheus: self.prometheus(raw.telemetry.as_ref())?,
            series_limits: self.series_limits(raw.telemetry.as_ref())?,
            registries,
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

    /// The `[[registries]]`: a name and `keys = "unique" | "duplicate"` each.
    fn registries(&self, raw: &[Spanned<RawRegistry>]) -> Result<Vec<RegistrySpec>, ManifestError> {
        let mut out: Vec<RegistrySpec> = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let (span, reg) = (r.span(), r.get_ref());
            let name = reg.name.get_ref();
            let field = |f: &str| format!("registries[{i}].{f}");
            if name.is_empty() {
                return Err(self.error(&reg.name.span(), field("name"), "empty name"));
            }
            if let Some(first) = out.iter().position(|o| o.name == *name) {
                return Err(self.error(
                    &reg.name.span(),
                    field("name"),
                    format!("duplicate registry {name:?} (registries[{first}] has it too)"),
                ));
            }
            let keys = match reg.keys.get_ref().as_str() {
                "unique" => Keys::Unique,
                "duplicate" => Keys::Duplicate,
                _ => {
                    return Err(self.error(
                        &reg.keys.span(),
                        field("keys"),
                        "expected one of unique, duplicate",
                    ));
                }
            };
            out.push(RegistrySpec {
                name: name.clone(),
                keys,
                line: self.line_of(&span),
            });
        }
        Ok(out)
    }

    /// A registered name (of a worker or a supervisor), which must be unique in the tree;
    /// `here` is what `names` records as its holder.
    pub(super) fn name(
        &self,
        names: &mut HashMap<String, String>,
        name: Option<&Spanned<String>>,
        field: &str,
        here: &str,
    ) -> Result<Option<String>, ManifestError> {
        let Some(name) = name else {
            return Ok(None);
        };
        if name.get_ref().is_empty() {
            return Err(self.error(&name.span(), field, "empty name"));
        }
        if let Some(first) = names.insert(name.get_ref().clone(), here.to_owned()) {
            return Err(self.error(
                &name.span(),
                field,
                format!("duplicate name {:?} ({first} has it too)", name.get_ref()),
            ));
        }
        Ok(Some(name.get_ref().clone()))
    }

    /// A supervisor's settings and children; `settings` prefixes its own fields' paths
    /// (`supervisor.` for the root, `children[1].` for a child), `at` its children's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn supervisor(
        &self,
        tree: &mut Tree<'_>,
        settings: &str,
        at: &str,
        id: String,
        name: Option<String>,
        line: usize,
        strategy: Option<&Spanned<String>>,
        intensity: Option<u32>,
        period: Option<&Spanned<u64>>,
        raw_children: &[Spanned<RawChild>],
    ) -> Result<SupervisorTable, ManifestError> {
        let strategy = match strategy {
            None => Strategy::OneForOne,
            Some(s) => match Strategy::from_name(s.get_ref()) {
                Some(strategy) => strategy,
                None => {
                    return Err(self.error(
                        &s.span(),
                        format!("{settings}strategy"),
                        format!("expected one of {}", Strategy::names()),
                    ));
                }
            },
        };
        let period = match period {
            None => crate::supervisor::DEFAULT_PERIOD,
            Some(p) if *p.get_ref() == 0 => {
                return Err(self.error(
                    &p.span(),
                    format!("{settings}period_ms"),
                    "must be positive",
                ));
            }
            Some(p) => Duration::from_millis(*p.get_ref()),
        };
        let mut children = Vec::with_capacity(raw_children.len());
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (i, child) in raw_children.iter().enumerate() {
            let here = format!("{at}children[{i}]");
            let span = child.span();
            let c = self.child(tree, &here, child.get_ref(), &span)?;
            if let Some(first) = ids.insert(c.id.clone(), i) {
                let span = child.get_ref().id.as_ref().map_or(span, |s| s.span());
                return Err(self.error(
                    &span,
                    format!("{here}.id"),
                    format!("duplicate id {:?} ({at}children[{first}] has it too)", c.id),
                ));
            }
            children.push(c);
        }
        if strategy == Strategy::SimpleOneForOne && children.len() != 1 {
            let span = raw_children.get(1).map_or(0..0, |c| c.span());
            let message = "a simple_one_for_one supervisor needs exactly one child (the template)";
            return Err(match raw_children.get(1) {
                Some(_) => self.error(&span, format!("{at}children[1]"), message),
                None => ManifestError {
                    file: self.file.to_owned(),
                    line: Some(line),
                    field: format!("{at}children"),
                    message: message.into(),
                },
            });
        }
        Ok(SupervisorTable {
            id,
            name,
            strategy,
            intensity: intensity.unwrap_or(3),
            period,
            children,
            line,
        })
    }

    /// Syntax and shape: serde with the failing field's path and toml's span.
    pub(super) fn deserialize(&self) -> Result<RawManifest, ManifestError> {
        let root =
            toml::de::DeTable::parse(self.text).map_err(|e| self.toml_error(&e, String::new()))?;
        self.check_nesting(root.get_ref())?;
        let de = toml::de::Deserializer::from(root);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = field_path(e.path());
            self.toml_error(e.inner(), field)
        })
    }

    /// Supervisors nest at most [`MAX_SUPERVISOR_DEPTH`] levels below the root: checked on
    /// the parsed document, without recursion, before serde (whose recursion per level of
    /// `children` is deep) and the checks after it walk the tree.
    fn check_nesting(&self, root: &toml::de::DeTable<'_>) -> Result<(), ManifestError> {
        fn children<'a, 'i>(
            t: &'a toml::de::DeTable<'i>,
        ) -> Vec<&'a Spanned<toml::de::DeValue<'i>>> {
            match t
                .iter()
                .find(|(k, _)| k.get_ref() == "children")
                .map(|(_, v)| v.get_ref())
            {
                Some(toml::de::DeValue::Array(items)) => items.iter().collect(),
                _ => Vec::new(),
            }
        }
        // (a child table, its depth below the root, its field path)
        let mut stack: Vec<_> = children(root)
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, 1, format!("children[{i}]")))
            .collect();
        while let Some((child, depth, here)) = stack.pop() {
            let toml::de::DeValue::Table(t) = child.get_ref() else {
                continue;
            };
            let grandchildren = children(t);
            if grandchildren.is_empty() {
                continue;
            }
            if depth > MAX_SUPERVISOR_DEPTH {
                return Err(self.error(
                    &child.span(),
                    here,
                    format!(
                        "supervisors nest at most {MAX_SUPERVISOR_DEPTH} levels below the root"
                    ),
                ));
            }
            stack.extend(
                grandchildren
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (c, depth + 1, format!("{here}.children[{i}]"))),
            );
        }
        Ok(())
    }

    /// toml's error with its line, and with the field and a clearer message where toml
    /// gives neither (matched on toml 0.9's messages; the tests pin them).
    pub(super) fn toml_error(&self, e: &toml::de::Error, field: String) -> ManifestError {
        let span = e.span();
        let mut error = ManifestError {
            file: self.file.to_owned(),
            line: span.as_ref().map(|s| self.line_of(s)),
            field,
            message: e.message().trim_end().to_owned(),
        };
        match error.message.as_str() {
            "duplicate key" => {
                if let Some(span) = &span {
                    let key = self.text.get(span.clone()).unwrap_or_default().trim();
                    error.message = format!("duplicate key {key} (it is given twice)");
                    if let Some(field) = text::duplicate_key_field(self.text, span) {
                        error.field = field;
                    }
                }
            }
            "recursion limit" => {
                error.line = error
                    .line
                    .or_else(|| text::deep_key_line(self.text, TOML_NESTING_LIMIT));
                error.message = format!(
                    "a key or table header nested {TOML_NESTING_LIMIT} or more levels deep"
                );
            }
            m if m.starts_with("unknown field `") => {
                if let Some(message) = text::unknown_field(m) {
                    error.message = message;
                }
            }
            m if m.contains("max recursion depth") => {
                error.message = format!(
                    "arrays and inline tables nested {TOML_NESTING_LIMIT} or more levels deep"
                );
            }
            _ => {}
        }
        error
    }
}

/// `children[2].module`, leaving out the segments `Spanned` adds and the root's `.`.
pub(super) fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key.starts_with("$__") {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A release version: one line of printable characters, at most [`super::MAX_VERSION`]
/// bytes, as OTP's release `vsn` is a string shown to operators.
fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("must not be empty".into());
    }
    if version.len() > super::MAX_VERSION {
        return Err(format!(
            "is {} bytes long (at most {})",
            version.len(),
            super::MAX_VERSION
        ));
    }
    if version.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must be one word of printable characters".into());
    }
    Ok(())
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

/// TOML to JSON: datetimes become their TOML text; NaN and infinities have no JSON form.
pub(super) fn toml_to_json(v: &toml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| format!("{f} has no JSON form"))?,
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

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

        let node = self.node(&raw, &base)?;

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
            memory_limit: node
                .memory_limit
                .unwrap_or(crate::EngineConfig::default().max_memory),
            epoch_tick: node
                .engine_limits
                .epoch_tick
                .unwrap_or(crate::EngineConfig::default().epoch_tick),
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
            None => node.name.clone(),
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
            node_name: node.name,
            control: node.control,
            max_message_size: node.max_message_size,
            max_processes: node.max_processes,
            max_timers: node.max_timers,
            max_registry_keys: node.max_registry_keys,
            memory_limit: node.memory_limit,
            callback_timeout: node.callback_timeout,
            max_tables: node.host_limits.max_tables,
            max_tables_per_process: node.host_limits.max_tables_per_process,
            max_table_bytes: node.host_limits.max_table_bytes,
            max_sql_statements: node.host_limits.max_sql_statements,
            max_guest_files: node.host_limits.max_guest_files,
            spare_instances: node.host_limits.spare_instances,
            max_wasm_stack: node.engine_limits.max_wasm_stack,
            epoch_tick: node.engine_limits.epoch_tick,
            load_timeout: node.engine_limits.load_timeout,
            control_limits: node.control_limits,
            modules,
            supervisor,
            prometheus: self.prometheus(raw.telemetry.as_ref())?,
            series_limits: self.series_limits(raw.telemetry.as_ref())?,
            registries,
        })
    }

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

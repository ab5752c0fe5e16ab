//! The manifest: a TOML file describing an application — its node, the modules it loads
//! and the children it starts.
//!
//! ```toml
//! [node]                      # optional
//! name = "demo"               # default: the file's stem
//! control = "run/demo.sock"   # the control socket; default: see `otter::control`
//!
//! [modules]
//! echo = "../guests/target/wasm32-unknown-unknown/release/echo.wasm"
//! kv = { path = "../guests/target/wasm32-unknown-unknown/release/kv.wasm", vsn = "1" }
//!
//! [supervisor]                # optional: the root supervisor (the application)
//! id = "MyApp.Supervisor"     # default: the node's name
//! strategy = "one_for_one"    # one_for_one (default) | one_for_all | rest_for_one
//! intensity = 3               # restarts allowed within period_ms; default 3
//! period_ms = 5000            # default 5000
//!
//! [[children]]                # started in order, stopped in reverse order
//! id = "echo"                 # default: its name, else its module
//! name = "echo"               # registered name (optional)
//! module = "echo"
//! args = { greeting = "hi" }  # any TOML value, given to `init` as CBOR; default: unit
//! restart = "permanent"       # permanent (default) | transient | temporary
//! shutdown = 5000             # ms (default 5000) | "brutal_kill" | "infinity"
//!
//! [[children]]                # a nested supervisor
//! id = "workers"              # required
//! type = "supervisor"         # default: "worker"
//! strategy = "one_for_all"    # and intensity, period_ms, restart, shutdown (default infinity)
//!
//! [[children.children]]       # its children, in the same form
//! module = "echo"
//! ```
//!
//! Without `[supervisor]`, the children are under a root `one_for_one` supervisor with
//! intensity 3 and period 5 s. The older `shutdown_timeout_ms` is `shutdown` in
//! milliseconds; `start_timeout_ms` is accepted but not applied to supervised children.
//! Registered names are unique in the whole tree, ids among siblings.
//!
//! Relative paths are relative to the manifest's directory. A module may also be written
//! as a table, `[modules.echo]` with `path` and `vsn` (the version the module must report).
//!
//! [`Manifest::load`] checks everything it can before anything starts — syntax, types,
//! unknown fields, unknown module names, duplicate child names, module files that do not
//! exist — and its [`ManifestError`] names the file, the line and the field:
//!
//! ```text
//! app.toml:14: children[2].module: unknown module "ech" (modules: echo, kv)
//! ```
//!
//! ```no_run
//! let manifest = otter::manifest::Manifest::load("app.toml")?;
//! for child in manifest.children() {
//!     println!("{} runs {}", child.id, child.module());
//! }
//! # Ok::<(), otter::manifest::ManifestError>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::supervisor::{self as sup, Restart, Shutdown, Strategy};
use crate::term::{Term, encode, from_json};

/// How long a child gets for `terminate` when the application stops, unless its
/// `shutdown_timeout_ms` says otherwise (Elixir's default too).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A checked manifest: every module file exists and every child names a known module.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from, as given.
    pub path: PathBuf,
    /// The node's name: `[node] name`, or the file's stem.
    pub node_name: String,
    /// `[node] control`, resolved against the manifest's directory.
    pub control: Option<PathBuf>,
    /// The modules, in name order.
    pub modules: Vec<ModuleSpec>,
    /// The root supervisor: `[supervisor]` (or its defaults) and the top-level children.
    pub supervisor: SupervisorSpec,
}

/// A module to load.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The name children start it by.
    pub name: String,
    /// The `.wasm` file, resolved against the manifest's directory.
    pub path: PathBuf,
    /// The version the module must report, if the manifest pins one.
    pub vsn: Option<String>,
    /// The manifest line of its path.
    pub line: usize,
}

/// A supervisor: the root (`[supervisor]`) or a `type = "supervisor"` child.
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Its id: `[supervisor] id` (default: the node's name) or the child's id.
    pub id: String,
    /// Its restart strategy. Default `one_for_one`.
    pub strategy: Strategy,
    /// Restarts allowed within `period`. Default 3.
    pub intensity: u32,
    /// The intensity window (`period_ms`). Default 5 s.
    pub period: Duration,
    /// Its children, in start order.
    pub children: Vec<ChildSpec>,
    /// The manifest line of its table (1 for a root without `[supervisor]`).
    pub line: usize,
}

/// A child to start.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Its id among its siblings: `id`, else `name`, else `module`.
    pub id: String,
    /// When it is restarted. Default permanent.
    pub restart: Restart,
    /// How it is stopped: `shutdown` (or the older `shutdown_timeout_ms`). Default 5000 ms
    /// for workers, infinity for supervisors.
    pub shutdown: Shutdown,
    /// A worker or a supervisor.
    pub kind: ChildKind,
    /// The manifest line where the child's table starts.
    pub line: usize,
}

/// What a child is.
#[derive(Debug, Clone)]
pub enum ChildKind {
    /// A process of a module.
    Worker(WorkerSpec),
    /// A supervisor with its own children.
    Supervisor(SupervisorSpec),
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
    /// `start_timeout_ms`: accepted for older manifests; supervised starts do not apply it.
    pub start_timeout: Option<Duration>,
}

impl ChildSpec {
    /// How logs and errors name the child: its id.
    pub fn label(&self) -> &str {
        &self.id
    }

    /// The worker's module, or `supervisor`.
    pub fn module(&self) -> &str {
        match &self.kind {
            ChildKind::Worker(w) => &w.module,
            ChildKind::Supervisor(_) => "supervisor",
        }
    }
}

impl SupervisorSpec {
    /// The runtime's spec for this supervisor and everything under it.
    pub fn to_spec(&self) -> sup::SupervisorSpec {
        let mut spec =
            sup::SupervisorSpec::new(self.strategy).intensity(self.intensity, self.period);
        for c in &self.children {
            let child = match &c.kind {
                ChildKind::Worker(w) => {
                    let child = sup::ChildSpec::worker(&c.id, &w.module, w.args.clone());
                    match &w.name {
                        Some(n) => child.name(n),
                        None => child,
                    }
                }
                ChildKind::Supervisor(s) => sup::ChildSpec::supervisor(&c.id, s.to_spec()),
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
                ChildKind::Supervisor(s) => sup = s,
                ChildKind::Worker(_) => break,
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
            (ChildKind::Supervisor(s), false) => s
                .locate(rest)
                .map(|(f, l)| (format!("{here}.{f}"), l))
                .or(Some((here, child.line))),
            (ChildKind::Worker(_), false) => Some((here, child.line)),
        }
    }
}

/// Why a manifest was refused: the file, the line, the field and what is wrong.
///
/// Displays as `file:line: field: message`, leaving out what is not known (a file that
/// cannot be read has no line; a syntax error has no field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest file, as given.
    pub file: PathBuf,
    /// The 1-based line the problem is on, if it is on one.
    pub line: Option<usize>,
    /// The field's path, like `children[2].module` (children count from 0); empty when
    /// the problem is not in one field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Manifest {
    /// Read and check a manifest file.
    ///
    /// # Errors
    /// [`ManifestError`] if the file cannot be read or anything in it is wrong; see the
    /// module docs.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.to_owned(),
            line: None,
            field: String::new(),
            message: format!("cannot read the manifest: {e}"),
        })?;
        Manifest::parse(&text, path)
    }

    /// Check a manifest's text; `path` names it in errors, and relative paths in it are
    /// resolved against `path`'s directory.
    ///
    /// # Errors
    /// As [`Manifest::load`].
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        Parser {
            text,
            file: path.as_ref(),
        }
        .parse()
    }

    /// An error about this manifest at `line` and `field` (for checks made after loading,
    /// such as a module file that turns out not to be a server).
    pub fn error_at(
        &self,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.path.clone(),
            line: Some(line),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The module spec named `name`.
    pub fn module(&self, name: &str) -> Option<&ModuleSpec> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// A runtime [`sup::SpecError`] as a manifest error on the line of the child it names.
    pub fn spec_error(&self, e: &sup::SpecError) -> ManifestError {
        self.error_at(self.supervisor.line_of(&e.field), &e.field, &e.reason)
    }

    /// The root supervisor's children (the top-level `[[children]]`).
    pub fn children(&self) -> &[ChildSpec] {
        &self.supervisor.children
    }
}

// ---- the file's shape, as serde reads it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    node: Option<RawNode>,
    #[serde(default)]
    modules: BTreeMap<String, Spanned<RawModule>>,
    supervisor: Option<Spanned<RawSupervisor>>,
    #[serde(default)]
    children: Vec<Spanned<RawChild>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervisor {
    id: Option<Spanned<String>>,
    strategy: Option<Spanned<String>>,
    intensity: Option<u32>,
    period_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<Spanned<String>>,
    control: Option<Spanned<String>>,
}

/// `echo = "path"` or `echo = { path = "...", vsn = "1" }`.
struct RawModule {
    path: String,
    /// The path string's own span in the table form; the whole value's in the short form.
    path_span: Option<Range<usize>>,
    vsn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModuleTable {
    path: Spanned<String>,
    vsn: Option<String>,
}

impl<'de> Deserialize<'de> for RawModule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawModule;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path to a .wasm file, or a table with `path` and optional `vsn`")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawModule, E> {
                Ok(RawModule {
                    path: s.to_owned(),
                    path_span: None,
                    vsn: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawModule, A::Error> {
                let t = RawModuleTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawModule {
                    path_span: Some(t.path.span()),
                    path: t.path.into_inner(),
                    vsn: t.vsn,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChild {
    id: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    module: Option<Spanned<String>>,
    args: Option<Spanned<toml::Value>>,
    start_timeout_ms: Option<u64>,
    shutdown_timeout_ms: Option<Spanned<u64>>,
    restart: Option<Spanned<String>>,
    shutdown: Option<Spanned<toml::Value>>,
    strategy: Option<Spanned<String>>,
    intensity: Option<u32>,
    period_ms: Option<Spanned<u64>>,
    children: Option<Vec<Spanned<RawChild>>>,
}

// ---- checking ----

struct Parser<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Parser<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        // Spans always fall on char boundaries; count lines in bytes to be safe anyway.
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(
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

    fn base_dir(&self) -> PathBuf {
        let dir = match self.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    fn parse(&self) -> Result<Manifest, ManifestError> {
        let raw = self.deserialize()?;
        let base = self.base_dir();

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
            modules.push(ModuleSpec {
                name: name.clone(),
                path,
                vsn: spec.vsn.clone(),
                line: self.line_of(&path_span),
            });
        }

        let mut names: HashMap<String, String> = HashMap::new();
        let (root_line, strategy, intensity, period, root_id) = match &raw.supervisor {
            None => (1, None, None, None, None),
            Some(t) => {
                let r = t.get_ref();
                (
                    self.line_of(&t.span()),
                    r.strategy.as_ref(),
                    r.intensity,
                    r.period_ms.as_ref(),
                    r.id.as_ref(),
                )
            }
        };
        let id = match root_id {
            Some(id) if id.get_ref().is_empty() => {
                return Err(self.error(&id.span(), "supervisor.id", "empty id"));
            }
            Some(id) => id.get_ref().clone(),
            None => node_name.clone(),
        };
        let supervisor = self.supervisor(
            &raw.modules,
            &mut names,
            "supervisor.",
            "",
            id,
            root_line,
            strategy,
            intensity,
            period,
            &raw.children,
        )?;

        Ok(Manifest {
            path: self.file.to_owned(),
            node_name,
            control,
            modules,
            supervisor,
        })
    }

    /// A supervisor's settings and children; `settings` prefixes its own fields' paths
    /// (`supervisor.` for the root, `children[1].` for a child), `at` its children's.
    #[allow(clippy::too_many_arguments)]
    fn supervisor(
        &self,
        modules: &BTreeMap<String, Spanned<RawModule>>,
        names: &mut HashMap<String, String>,
        settings: &str,
        at: &str,
        id: String,
        line: usize,
        strategy: Option<&Spanned<String>>,
        intensity: Option<u32>,
        period: Option<&Spanned<u64>>,
        raw_children: &[Spanned<RawChild>],
    ) -> Result<SupervisorSpec, ManifestError> {
        let strategy = match strategy {
            None => Strategy::OneForOne,
            Some(s) => match s.get_ref().as_str() {
                "one_for_one" => Strategy::OneForOne,
                "one_for_all" => Strategy::OneForAll,
                "rest_for_one" => Strategy::RestForOne,
                _ => {
                    return Err(self.error(
                        &s.span(),
                        format!("{settings}strategy"),
                        "expected one of one_for_one, one_for_all, rest_for_one",
                    ));
                }
            },
        };
        let period = match period {
            None => Duration::from_secs(5),
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
            let c = self.child(modules, names, &here, child.get_ref(), &span)?;
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
        Ok(SupervisorSpec {
            id,
            strategy,
            intensity: intensity.unwrap_or(3),
            period,
            children,
            line,
        })
    }

    fn child(
        &self,
        modules: &BTreeMap<String, Spanned<RawModule>>,
        names: &mut HashMap<String, String>,
        here: &str,
        child: &RawChild,
        span: &Range<usize>,
    ) -> Result<ChildSpec, ManifestError> {
        let f = |field: &str| format!("{here}.{field}");
        let is_sup = match &child.kind {
            None => false,
            Some(k) => match k.get_ref().as_str() {
                "worker" => false,
                "supervisor" => true,
                _ => {
                    return Err(self.error(
                        &k.span(),
                        f("type"),
                        "expected one of worker, supervisor",
                    ));
                }
            },
        };
        let restart = match &child.restart {
            None => Restart::Permanent,
            Some(r) => match r.get_ref().as_str() {
                "permanent" => Restart::Permanent,
                "transient" => Restart::Transient,
                "temporary" => Restart::Temporary,
                _ => {
                    return Err(self.error(
                        &r.span(),
                        f("restart"),
                        "expected one of permanent, transient, temporary",
                    ));
                }
            },
        };
        let shutdown = match (&child.shutdown, &child.shutdown_timeout_ms) {
            (Some(_), Some(t)) => {
                return Err(self.error(
                    &t.span(),
                    f("shutdown_timeout_ms"),
                    "give either shutdown or shutdown_timeout_ms, not both",
                ));
            }
            (None, Some(t)) => self.timeout(*t.get_ref(), &t.span(), &f("shutdown_timeout_ms"))?,
            (Some(v), None) => match v.get_ref() {
                toml::Value::Integer(ms) => match u64::try_from(*ms) {
                    Ok(ms) => self.timeout(ms, &v.span(), &f("shutdown"))?,
                    Err(_) => {
                        return Err(self.error(&v.span(), f("shutdown"), "must not be negative"));
                    }
                },
                toml::Value::String(s) if s == "brutal_kill" => Shutdown::BrutalKill,
                toml::Value::String(s) if s == "infinity" => Shutdown::Infinity,
                _ => {
                    return Err(self.error(
                        &v.span(),
                        f("shutdown"),
                        r#"expected milliseconds, "brutal_kill" or "infinity""#,
                    ));
                }
            },
            (None, None) if is_sup => Shutdown::Infinity,
            (None, None) => Shutdown::Timeout(DEFAULT_SHUTDOWN_TIMEOUT),
        };
        let line = self.line_of(span);
        let not_for = |field: &str, present: bool, what: &str| {
            if present {
                Err(self.error(span, f(field), format!("not allowed on a {what} child")))
            } else {
                Ok(())
            }
        };
        if let Some(id) = &child.id
            && id.get_ref().is_empty()
        {
            return Err(self.error(&id.span(), f("id"), "empty id"));
        }
        if is_sup {
            not_for("name", child.name.is_some(), "supervisor")?;
            not_for("module", child.module.is_some(), "supervisor")?;
            not_for("args", child.args.is_some(), "supervisor")?;
            not_for(
                "start_timeout_ms",
                child.start_timeout_ms.is_some(),
                "supervisor",
            )?;
            let Some(id) = &child.id else {
                return Err(self.error(span, f("id"), "a supervisor child needs an id"));
            };
            let sup = self.supervisor(
                modules,
                names,
                &format!("{here}."),
                &format!("{here}."),
                id.get_ref().clone(),
                line,
                child.strategy.as_ref(),
                child.intensity,
                child.period_ms.as_ref(),
                child.children.as_deref().unwrap_or_default(),
            )?;
            return Ok(ChildSpec {
                id: id.get_ref().clone(),
                restart,
                shutdown,
                kind: ChildKind::Supervisor(sup),
                line,
            });
        }
        not_for("strategy", child.strategy.is_some(), "worker")?;
        not_for("intensity", child.intensity.is_some(), "worker")?;
        not_for("period_ms", child.period_ms.is_some(), "worker")?;
        not_for("children", child.children.is_some(), "worker")?;
        let Some(module) = &child.module else {
            return Err(self.error(span, here, "missing field `module`"));
        };
        if !modules.contains_key(module.get_ref()) {
            let known: Vec<&str> = modules.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "no modules are declared".to_owned()
            } else {
                format!("modules: {}", known.join(", "))
            };
            return Err(self.error(
                &module.span(),
                f("module"),
                format!("unknown module {:?} ({known})", module.get_ref()),
            ));
        }
        if let Some(name) = &child.name {
            if name.get_ref().is_empty() {
                return Err(self.error(&name.span(), f("name"), "empty name"));
            }
            if let Some(first) = names.insert(name.get_ref().clone(), here.to_owned()) {
                return Err(self.error(
                    &name.span(),
                    f("name"),
                    format!("duplicate name {:?} ({first} has it too)", name.get_ref()),
                ));
            }
        }
        let args = match &child.args {
            None => encode(&()).expect("unit encodes"),
            Some(v) => {
                let json =
                    toml_to_json(v.get_ref()).map_err(|m| self.error(&v.span(), f("args"), m))?;
                from_json(&json)
            }
        };
        let name = child.name.as_ref().map(|n| n.get_ref().clone());
        let id = child
            .id
            .as_ref()
            .map(|i| i.get_ref().clone())
            .or_else(|| name.clone())
            .unwrap_or_else(|| module.get_ref().clone());
        Ok(ChildSpec {
            id,
            restart,
            shutdown,
            kind: ChildKind::Worker(WorkerSpec {
                name,
                module: module.get_ref().clone(),
                args,
                start_timeout: child.start_timeout_ms.map(Duration::from_millis),
            }),
            line,
        })
    }

    fn timeout(
        &self,
        ms: u64,
        span: &Range<usize>,
        field: &str,
    ) -> Result<Shutdown, ManifestError> {
        if ms == 0 {
            Err(self.error(
                span,
                field,
                r#"a zero timeout is not allowed; use "brutal_kill""#,
            ))
        } else {
            Ok(Shutdown::Timeout(Duration::from_millis(ms)))
        }
    }

    /// Syntax and shape: serde with the failing field's path and toml's span.
    fn deserialize(&self) -> Result<RawManifest, ManifestError> {
        let de = toml::de::Deserializer::parse(self.text)
            .map_err(|e| self.toml_error(&e, String::new()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = field_path(e.path());
            self.toml_error(e.inner(), field)
        })
    }

    fn toml_error(&self, e: &toml::de::Error, field: String) -> ManifestError {
        ManifestError {
            file: self.file.to_owned(),
            line: e.span().map(|s| self.line_of(&s)),
            field,
            message: e.message().trim_end().to_owned(),
        }
    }
}

/// `children[2].module`, leaving out the segments `Spanned` adds and the root's `.`.
fn field_path(path: &serde_path_to_error::Path) -> String {
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

fn check_node_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("empty name".into())
    } else if name.contains(['/', '\0']) || name == "." || name == ".." {
        Err(format!("{name:?} cannot name a socket file"))
    } else {
        Ok(())
    }
}

/// TOML to JSON: datetimes become their TOML text; NaN and infinities have no JSON form.
fn toml_to_json(v: &toml::Value) -> Result<serde_json::Value, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with `echo.wasm` and `kv.wasm` (empty: the manifest only checks they
    /// exist) and a manifest `app.toml` holding `text`.
    fn parse(text: &str) -> (tempfile::TempDir, Result<Manifest, ManifestError>) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("echo.wasm"), b"").expect("write");
        std::fs::write(dir.path().join("kv.wasm"), b"").expect("write");
        let file = dir.path().join("app.toml");
        std::fs::write(&file, text).expect("write");
        let result = Manifest::load(&file);
        (dir, result)
    }

    fn error(text: &str) -> ManifestError {
        let (_dir, result) = parse(text);
        result.expect_err("the manifest is refused")
    }

    const GOOD: &str = r#"
[node]
name = "demo"

[modules]
echo = "echo.wasm"
kv = { path = "kv.wasm", vsn = "1" }

[[children]]
name = "echo"
module = "echo"

[[children]]
name = "kv"
module = "kv"
args = { size = 3, tags = ["a", "b"], on = true }
start_timeout_ms = 250
shutdown_timeout_ms = 100
"#;

    #[test]
    fn a_good_manifest_is_read_in_order_with_paths_resolved() {
        let (dir, m) = parse(GOOD);
        let m = m.expect("valid");
        assert_eq!(m.node_name, "demo");
        assert_eq!(m.control, None);
        let names: Vec<_> = m.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["echo", "kv"]);
        assert_eq!(
            m.modules[0].path,
            std::path::absolute(dir.path().join("echo.wasm")).unwrap()
        );
        assert_eq!(m.modules[0].line, 6);
        assert_eq!(m.modules[1].vsn.as_deref(), Some("1"));
        assert_eq!(m.modules[1].line, 7);
        let c = m.children();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].label(), "echo");
        assert_eq!(worker(&c[0]).args, encode(&()).unwrap());
        assert_eq!(worker(&c[0]).start_timeout, None);
        assert_eq!(c[0].shutdown, Shutdown::Timeout(DEFAULT_SHUTDOWN_TIMEOUT));
        assert_eq!(c[0].restart, Restart::Permanent);
        assert_eq!(c[0].line, 9);
        assert_eq!(m.supervisor.id, "demo");
        assert_eq!(m.supervisor.strategy, Strategy::OneForOne);
        assert_eq!(m.supervisor.intensity, 3);
        assert_eq!(m.supervisor.period, Duration::from_secs(5));
        let args = crate::term::to_json(&worker(&c[1]).args).unwrap();
        assert_eq!(
            args,
            serde_json::json!({"size": 3, "tags": ["a", "b"], "on": true})
        );
        assert_eq!(
            worker(&c[1]).start_timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(c[1].shutdown, Shutdown::Timeout(Duration::from_millis(100)));
    }

    fn worker(c: &ChildSpec) -> &WorkerSpec {
        match &c.kind {
            ChildKind::Worker(w) => w,
            ChildKind::Supervisor(_) => panic!("{} is a supervisor", c.id),
        }
    }

    const NESTED: &str = r#"[modules]
echo = "echo.wasm"
kv = "kv.wasm"

[supervisor]
id = "MyApp.Supervisor"
strategy = "rest_for_one"
intensity = 5
period_ms = 1000

[[children]]
module = "echo"
restart = "transient"
shutdown = "brutal_kill"

[[children]]
id = "workers"
type = "supervisor"
strategy = "one_for_all"

[[children.children]]
name = "a"
module = "kv"
shutdown = "infinity"

[[children.children]]
id = "b"
module = "kv"
restart = "temporary"
shutdown = 250
"#;

    #[test]
    fn a_nested_tree_is_read_with_its_settings() {
        let (_dir, m) = parse(NESTED);
        let m = m.expect("valid");
        let root = &m.supervisor;
        assert_eq!(root.id, "MyApp.Supervisor");
        assert_eq!(root.strategy, Strategy::RestForOne);
        assert_eq!(root.intensity, 5);
        assert_eq!(root.period, Duration::from_millis(1000));
        assert_eq!(root.line, 5);
        let c = &root.children;
        assert_eq!(c[0].id, "echo");
        assert_eq!(c[0].restart, Restart::Transient);
        assert_eq!(c[0].shutdown, Shutdown::BrutalKill);
        assert_eq!(c[1].id, "workers");
        assert_eq!(c[1].shutdown, Shutdown::Infinity);
        assert_eq!(c[1].line, 16);
        let ChildKind::Supervisor(inner) = &c[1].kind else {
            panic!("a supervisor")
        };
        assert_eq!(inner.strategy, Strategy::OneForAll);
        assert_eq!(inner.children[0].id, "a");
        assert_eq!(inner.children[0].shutdown, Shutdown::Infinity);
        assert_eq!(inner.children[1].id, "b");
        assert_eq!(inner.children[1].restart, Restart::Temporary);
        assert_eq!(inner.children[1].line, 26);

        let spec = root.to_spec();
        assert_eq!(spec.strategy, Strategy::RestForOne);
        assert_eq!(spec.children.len(), 2);
        assert!(spec.validate().is_ok());

        // Runtime field paths map back to lines.
        assert_eq!(root.line_of("children[1].children[1].id"), 26);
        assert_eq!(root.line_of("children[0].shutdown"), 11);
        assert_eq!(root.line_of("period"), 5);
        assert_eq!(
            root.locate(&["workers", "b"]),
            Some(("children[1].children[1]".to_owned(), 26))
        );
    }

    #[test]
    fn a_bad_restart_names_its_line_and_path() {
        let e = error(
            "[modules]\necho = \"echo.wasm\"\n\n[[children]]\nmodule = \"echo\"\n\n\
             [[children]]\nname = \"b\"\nmodule = \"echo\"\n\n[[children]]\nname = \"c\"\n\
             module = \"echo\"\nrestart = \"sometimes\"\n",
        );
        assert_eq!(e.line, Some(14));
        assert_eq!(e.field, "children[2].restart");
        assert!(
            e.to_string().ends_with(
                "app.toml:14: children[2].restart: expected one of permanent, transient, temporary"
            ),
            "{e}"
        );
    }

    #[test]
    fn nested_errors_have_nested_paths() {
        let bad = NESTED.replace("shutdown = 250", "shutdown = \"later\"");
        let e = error(&bad);
        assert_eq!(e.line, Some(30));
        assert_eq!(e.field, "children[1].children[1].shutdown");

        let bad = NESTED.replace("strategy = \"one_for_all\"", "strategy = \"all\"");
        let e = error(&bad);
        assert_eq!(e.line, Some(19));
        assert_eq!(e.field, "children[1].strategy");

        let bad = NESTED.replace("strategy = \"rest_for_one\"", "strategy = \"x\"");
        assert_eq!(error(&bad).field, "supervisor.strategy");

        let bad = NESTED.replace("id = \"b\"", "id = \"a\"");
        let e = error(&bad);
        assert_eq!(e.line, Some(27));
        assert_eq!(e.field, "children[1].children[1].id");

        let bad = NESTED.replace("shutdown = 250", "shutdown = 0");
        assert!(error(&bad).message.contains("brutal_kill"));

        let bad = NESTED.replace("id = \"workers\"\n", "");
        let e = error(&bad);
        assert_eq!(e.field, "children[1].id");
        assert_eq!(e.line, Some(16));

        let bad = NESTED.replace(
            "module = \"echo\"\nrestart",
            "module = \"echo\"\nstrategy = \"one_for_all\"\nrestart",
        );
        assert_eq!(error(&bad).field, "children[0].strategy");
    }

    #[test]
    fn registered_names_are_unique_across_the_tree() {
        let bad = NESTED.replace("id = \"b\"", "name = \"a\"");
        let e = error(&bad);
        assert_eq!(e.field, "children[1].children[1].name");
        assert!(
            e.message.contains("children[1].children[0] has it too"),
            "{e}"
        );
    }

    #[test]
    fn the_node_is_named_after_the_file_by_default() {
        let (_dir, m) = parse("[modules]\necho = \"echo.wasm\"\n");
        let m = m.expect("valid");
        assert_eq!(m.node_name, "app");
        assert!(m.children().is_empty());
    }

    #[test]
    fn a_module_table_form_is_accepted() {
        let (_dir, m) = parse("[modules.echo]\npath = \"echo.wasm\"\nvsn = \"2\"\n");
        let m = m.expect("valid");
        assert_eq!(m.modules[0].vsn.as_deref(), Some("2"));
        assert_eq!(m.modules[0].line, 2);
    }

    #[test]
    fn control_is_resolved_against_the_manifest_directory() {
        let (dir, m) = parse("[node]\ncontrol = \"run/x.sock\"\n");
        let want = std::path::absolute(dir.path().join("run/x.sock")).unwrap();
        assert_eq!(m.expect("valid").control, Some(want));
    }

    #[test]
    fn an_unknown_module_is_named_with_its_line_and_field() {
        let e = error(
            "[modules]\necho = \"echo.wasm\"\nkv = \"kv.wasm\"\n\n[[children]]\nmodule = \"echo\"\n\n\
             [[children]]\nmodule = \"kv\"\n\n[[children]]\nname = \"x\"\nmodule = \"ech\"\n",
        );
        assert_eq!(e.line, Some(13));
        assert_eq!(e.field, "children[2].module");
        assert_eq!(e.message, r#"unknown module "ech" (modules: echo, kv)"#);
        assert!(
            e.to_string().ends_with(
                r#"app.toml:13: children[2].module: unknown module "ech" (modules: echo, kv)"#
            ),
            "{e}"
        );
    }

    #[test]
    fn a_duplicate_child_name_points_at_the_second() {
        let e = error(
            "[modules]\necho = \"echo.wasm\"\n[[children]]\nname = \"a\"\nmodule = \"echo\"\n\
             [[children]]\nname = \"a\"\nmodule = \"echo\"\n",
        );
        assert_eq!(e.line, Some(7));
        assert_eq!(e.field, "children[1].name");
        assert_eq!(e.message, r#"duplicate name "a" (children[0] has it too)"#);
    }

    #[test]
    fn a_missing_module_file_is_named_with_its_path() {
        let e = error("[node]\nname = \"n\"\n[modules.echo]\npath = \"nope/echo.wasm\"\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.field, "modules.echo.path");
        assert!(e.message.contains("nope/echo.wasm"), "{e}");
        assert!(e.message.contains("No such file"), "{e}");

        let e = error("[modules]\nkv = \"kv.wasm\"\necho = \"gone.wasm\"\n");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field, "modules.echo");
        assert!(e.message.contains("gone.wasm"), "{e}");
    }

    #[test]
    fn a_syntax_error_has_a_line_and_no_field() {
        let e = error("[modules]\necho = \"echo.wasm\"\n\n[[children]\nmodule = \"echo\"\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.field, "");
        assert!(!e.message.is_empty());
        assert!(e.to_string().contains("app.toml:4: "), "{e}");
    }

    #[test]
    fn a_type_error_names_the_field() {
        let e = error(
            "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nstart_timeout_ms = \"soon\"\n",
        );
        assert_eq!(e.line, Some(5));
        assert_eq!(e.field, "children[0].start_timeout_ms");
        assert!(e.message.contains("invalid type"), "{e}");

        let e = error("[modules.echo]\npath = 3\n");
        assert_eq!(e.line, Some(2));
        assert_eq!(e.field, "modules.echo.path");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let e = error(
            "[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nmodul = \"echo\"\n",
        );
        assert_eq!(e.line, Some(5));
        assert_eq!(e.field, "children[0].modul");
        assert!(e.message.contains("unknown field `modul`"), "{e}");

        let e = error("[nodes]\nname = \"x\"\n");
        assert_eq!(e.line, Some(1));
        assert_eq!(e.field, "nodes");
        assert!(e.message.contains("unknown field `nodes`"), "{e}");
    }

    #[test]
    fn a_missing_field_names_the_child() {
        let e = error("[modules]\necho = \"echo.wasm\"\n\n[[children]]\nname = \"x\"\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.field, "children[0]");
        assert!(e.message.contains("missing field `module`"), "{e}");
    }

    #[test]
    fn a_bad_node_name_is_refused() {
        let e = error("[node]\nname = \"a/b\"\n");
        assert_eq!(e.line, Some(2));
        assert_eq!(e.field, "node.name");
    }

    #[test]
    fn args_without_a_json_form_are_refused() {
        let e =
            error("[modules]\necho = \"echo.wasm\"\n[[children]]\nmodule = \"echo\"\nargs = nan\n");
        assert_eq!(e.line, Some(5));
        assert_eq!(e.field, "children[0].args");
    }

    #[test]
    fn an_unreadable_file_has_no_line() {
        let e = Manifest::load("/nonexistent/app.toml").expect_err("refused");
        assert_eq!(e.line, None);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/app.toml: cannot read"),
            "{e}"
        );
    }
}

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
//! [[children]]                # started in order, stopped in reverse order
//! name = "echo"               # registered name (optional)
//! module = "echo"
//! args = { greeting = "hi" }  # any TOML value, given to `init` as CBOR; default: unit
//! start_timeout_ms = 5000     # optional: kill it if `init` takes longer
//! shutdown_timeout_ms = 5000  # optional, default 5000: kill it if `terminate` takes longer
//! ```
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
//! for child in &manifest.children {
//!     println!("{} runs {}", child.name.as_deref().unwrap_or("-"), child.module);
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
    /// The children, in start order.
    pub children: Vec<ChildSpec>,
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

/// A child to start.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// The name it registers under.
    pub name: Option<String>,
    /// The module it runs.
    pub module: String,
    /// The CBOR argument to `init`: the manifest's `args` converted through JSON, or CBOR
    /// unit (what a server with `Args = ()` expects) when absent.
    pub args: Term,
    /// Kill it and fail the start if `init` takes longer. Default: no limit.
    pub start_timeout: Option<Duration>,
    /// How long `terminate` may take when the application stops before the child is
    /// killed. Default [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub shutdown_timeout: Duration,
    /// The manifest line where the child's table starts.
    pub line: usize,
}

impl ChildSpec {
    /// How logs and errors name the child: its name, or its module.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.module)
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
}

// ---- the file's shape, as serde reads it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    node: Option<RawNode>,
    #[serde(default)]
    modules: BTreeMap<String, Spanned<RawModule>>,
    #[serde(default)]
    children: Vec<Spanned<RawChild>>,
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
    name: Option<Spanned<String>>,
    module: Spanned<String>,
    args: Option<Spanned<toml::Value>>,
    start_timeout_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
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

        let mut children = Vec::with_capacity(raw.children.len());
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, child) in raw.children.iter().enumerate() {
            let span = child.span();
            let child = child.get_ref();
            let module = child.module.get_ref();
            if !raw.modules.contains_key(module) {
                let known: Vec<&str> = raw.modules.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "no modules are declared".to_owned()
                } else {
                    format!("modules: {}", known.join(", "))
                };
                return Err(self.error(
                    &child.module.span(),
                    format!("children[{i}].module"),
                    format!("unknown module {module:?} ({known})"),
                ));
            }
            if let Some(name) = &child.name {
                if name.get_ref().is_empty() {
                    return Err(self.error(
                        &name.span(),
                        format!("children[{i}].name"),
                        "empty name",
                    ));
                }
                if let Some(first) = names.insert(name.get_ref(), i) {
                    return Err(self.error(
                        &name.span(),
                        format!("children[{i}].name"),
                        format!(
                            "duplicate name {:?} (children[{first}] has it too)",
                            name.get_ref()
                        ),
                    ));
                }
            }
            let args = match &child.args {
                None => encode(&()).expect("unit encodes"),
                Some(v) => {
                    let json = toml_to_json(v.get_ref())
                        .map_err(|m| self.error(&v.span(), format!("children[{i}].args"), m))?;
                    from_json(&json)
                }
            };
            children.push(ChildSpec {
                name: child.name.as_ref().map(|n| n.get_ref().clone()),
                module: module.clone(),
                args,
                start_timeout: child.start_timeout_ms.map(Duration::from_millis),
                shutdown_timeout: child
                    .shutdown_timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
                line: self.line_of(&span),
            });
        }

        Ok(Manifest {
            path: self.file.to_owned(),
            node_name,
            control,
            modules,
            children,
        })
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
        assert_eq!(m.children.len(), 2);
        assert_eq!(m.children[0].label(), "echo");
        assert_eq!(m.children[0].args, encode(&()).unwrap());
        assert_eq!(m.children[0].start_timeout, None);
        assert_eq!(m.children[0].shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT);
        assert_eq!(m.children[0].line, 9);
        let args = crate::term::to_json(&m.children[1].args).unwrap();
        assert_eq!(
            args,
            serde_json::json!({"size": 3, "tags": ["a", "b"], "on": true})
        );
        assert_eq!(
            m.children[1].start_timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(m.children[1].shutdown_timeout, Duration::from_millis(100));
    }

    #[test]
    fn the_node_is_named_after_the_file_by_default() {
        let (_dir, m) = parse("[modules]\necho = \"echo.wasm\"\n");
        let m = m.expect("valid");
        assert_eq!(m.node_name, "app");
        assert!(m.children.is_empty());
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

//! `[modules.NAME.grants]` and a child's `grants`: reading and checking WASI grants and
//! databases.

use std::path::Path;

use super::ManifestError;
use super::parse::Parser;
use super::raw::RawGrants;
use crate::grants::{DirMode, GrantError, ModuleGrants, check_database, check_dir};

/// The longest a database grant's `timeout_ms` may be: an hour (SQLite takes at most
/// 2^31 - 1 ms, and a statement that runs longer than this is stuck).
const MAX_DATABASE_TIMEOUT_MS: u64 = 3_600_000;

/// The most entries of each kind one module's grants may list.
const MAX_GRANTS: usize = 64;

impl Parser<'_> {
    /// A module's or a child's grants (`prefix` is their field, e.g.
    /// `modules.NAME.grants`), the directories resolved against `base` and checked.
    pub(super) fn grants(
        &self,
        prefix: &str,
        raw: &RawGrants,
        base: &Path,
    ) -> Result<ModuleGrants, ManifestError> {
        let at = |what: &str| format!("{prefix}.{what}");
        let mut grants = ModuleGrants::default();
        self.databases(&mut grants, prefix, raw, base)?;
        if raw.dirs.len() > MAX_GRANTS {
            let span = raw.dirs[MAX_GRANTS].span();
            return Err(self.error(&span, at("dirs"), format!("at most {MAX_GRANTS}")));
        }
        for (i, dir) in raw.dirs.iter().enumerate() {
            let d = dir.get_ref();
            let field = |f: &str| at(&format!("dirs[{i}].{f}"));
            let mode = match d.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
                None | Some(("ro", _)) => DirMode::ReadOnly,
                Some(("rw", _)) => DirMode::ReadWrite,
                Some((other, span)) => {
                    return Err(self.error(
                        &span,
                        field("mode"),
                        format!("{other:?}: expected \"ro\" or \"rw\""),
                    ));
                }
            };
            let guest = d.guest.get_ref();
            if guest.is_empty() || guest.contains('\0') {
                return Err(self.error(&d.guest.span(), field("guest"), "empty or NUL in it"));
            }
            if d.host.get_ref().is_empty() {
                return Err(self.error(&d.host.span(), field("host"), "empty path"));
            }
            let host = base.join(d.host.get_ref());
            check_dir(&host, mode).map_err(|e| {
                let message = match e {
                    GrantError::Dir { path, reason } => format!("{}: {reason}", path.display()),
                    other => other.to_string(),
                };
                self.error(&d.host.span(), field("host"), message)
            })?;
            grants.dir(host, guest, mode);
        }
        // Once the directories are known: a database below one's subdirectory is refused.
        for (i, db) in raw.databases.iter().enumerate() {
            let d = db.get_ref();
            grants
                .check_database_placement(&base.join(d.path.get_ref()))
                .map_err(|e| {
                    let field = format!("{prefix}.databases[{i}].path");
                    self.error(&d.path.span(), field, e.to_string())
                })?;
        }
        if let Some(env) = &raw.env {
            self.env(&mut grants, env.get_ref(), &env.span(), &at("env"))?;
        }
        grants.clocks(raw.clocks.unwrap_or(false));
        grants.random(raw.random.unwrap_or(false));
        if let Some(network) = &raw.network {
            if network.connect.len() > MAX_GRANTS {
                let span = network.connect[MAX_GRANTS].span();
                let field = at("network.connect");
                return Err(self.error(&span, field, format!("at most {MAX_GRANTS}")));
            }
            for (i, addr) in network.connect.iter().enumerate() {
                let parsed = addr.get_ref().parse().map_err(|_| {
                    self.error(
                        &addr.span(),
                        at(&format!("network.connect[{i}]")),
                        format!(
                            "{:?}: expected an IP address and port, e.g. \"127.0.0.1:5432\"",
                            addr.get_ref()
                        ),
                    )
                })?;
                grants.connect(parsed);
            }
        }
        Ok(grants)
    }

    /// `databases = [{ name, path, mode, timeout_ms, max_bytes }]`, each path resolved against `base`.
    fn databases(
        &self,
        grants: &mut ModuleGrants,
        prefix: &str,
        raw: &RawGrants,
        base: &Path,
    ) -> Result<(), ManifestError> {
        if raw.databases.len() > MAX_GRANTS {
            let span = raw.databases[MAX_GRANTS].span();
            return Err(self.error(
                &span,
                format!("{prefix}.databases"),
                format!("at most {MAX_GRANTS}"),
            ));
        }
        for (i, db) in raw.databases.iter().enumerate() {
            let d = db.get_ref();
            let field = |f: &str| format!("{prefix}.databases[{i}].{f}");
            let name = d.name.get_ref();
            if name.is_empty() || name.len() > 255 || name.contains('\0') {
                return Err(self.error(&d.name.span(), field("name"), "1 to 255 bytes, no NUL"));
            }
            if grants.databases().iter().any(|g| &g.name == name) {
                return Err(self.error(
                    &d.name.span(),
                    field("name"),
                    format!("{name:?} granted twice"),
                ));
            }
            let mode = match d.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
                None | Some(("rw", _)) => DirMode::ReadWrite,
                Some(("ro", _)) => DirMode::ReadOnly,
                Some((other, span)) => {
                    return Err(self.error(
                        &span,
                        field("mode"),
                        format!("{other:?}: expected \"ro\" or \"rw\""),
                    ));
                }
            };
            let path = d.path.get_ref();
            if path.is_empty() || path.contains('\0') {
                return Err(self.error(&d.path.span(), field("path"), "empty or NUL in it"));
            }
            let path = base.join(path);
            check_database(&path).map_err(|e| {
                let message = match e {
                    GrantError::Database { path, reason } => {
                        format!("{}: {reason}", path.display())
                    }
                    other => other.to_string(),
                };
                self.error(&d.path.span(), field("path"), message)
            })?;
            grants.database(name, path, mode);
            if let Some(ms) = &d.timeout_ms {
                if *ms.get_ref() == 0 {
                    return Err(self.error(&ms.span(), field("timeout_ms"), "at least 1"));
                }
                if *ms.get_ref() > MAX_DATABASE_TIMEOUT_MS {
                    return Err(self.error(
                        &ms.span(),
                        field("timeout_ms"),
                        format!("at most {MAX_DATABASE_TIMEOUT_MS} (an hour)"),
                    ));
                }
                let timeout = std::time::Duration::from_millis(*ms.get_ref());
                grants.database_timeout(name, timeout);
            }
            if let Some(bytes) = &d.max_bytes {
                if *bytes.get_ref() < 65_536 {
                    return Err(self.error(&bytes.span(), field("max_bytes"), "at least 65536"));
                }
                grants.database_max_bytes(name, *bytes.get_ref());
            }
        }
        Ok(())
    }

    /// `env = ["TZ"]` (inherited from the node) or `env = { NAME = "value" }`.
    fn env(
        &self,
        grants: &mut ModuleGrants,
        env: &toml::Value,
        span: &std::ops::Range<usize>,
        field: &str,
    ) -> Result<(), ManifestError> {
        let bad_name = |n: &str| n.is_empty() || n.contains(['=', '\0']);
        match env {
            toml::Value::Array(names) if names.len() <= MAX_GRANTS => {
                for name in names {
                    match name.as_str() {
                        Some(n) if !bad_name(n) => {
                            grants.inherit_env(n);
                        }
                        _ => {
                            return Err(self.error(
                                span,
                                field,
                                "names of variables: non-empty strings without '=' or NUL",
                            ));
                        }
                    }
                }
            }
            toml::Value::Table(vars) if vars.len() <= MAX_GRANTS => {
                for (name, value) in vars {
                    match value.as_str() {
                        Some(v) if !bad_name(name) && !v.contains('\0') => {
                            grants.env(name, v);
                        }
                        _ => {
                            return Err(self.error(
                                span,
                                format!("{field}.{name}"),
                                "a string value, and a name without '=' or NUL",
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(self.error(
                    span,
                    field,
                    format!(
                        "expected a list of names to inherit or a table of values (at most {MAX_GRANTS})"
                    ),
                ));
            }
        }
        Ok(())
    }
}

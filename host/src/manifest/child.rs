//! Checking one `[[children]]` table: a worker or a nested supervisor, its restart,
//! shutdown, names and start timeout.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::parse::{Parser, toml_to_json};
use super::raw::{RawChild, RawModule};
use super::*;
use crate::process_limits::{MailboxBound, Overflow, ProcessLimits};
use crate::supervisor::{Restart, Shutdown};
use crate::term::canonical;
use crate::term::{encode, from_json};

/// What checking a child needs to know of the whole manifest, and the names taken so far.
pub(super) struct Tree<'r> {
    pub(super) modules: &'r BTreeMap<String, Spanned<RawModule>>,
    /// The modules as checked, with their grants, which a child's must lie within.
    pub(super) module_specs: &'r [ModuleSpec],
    /// The manifest's directory, which a child's granted directories are relative to.
    pub(super) base: &'r std::path::Path,
    pub(super) registries: &'r [RegistrySpec],
    /// Registered names, tree-wide, with who holds each.
    pub(super) names: HashMap<String, String>,
    /// `via` names, as (registry, canonical CBOR key), with who holds each.
    pub(super) vias: HashMap<(String, Vec<u8>), String>,
    /// The node's memory limit, above which no child's may go.
    pub(super) memory_limit: usize,
    /// The node's epoch tick, below which no child's callback timeout may go.
    pub(super) epoch_tick: Duration,
}

impl Parser<'_> {
    pub(super) fn child(
        &self,
        tree: &mut Tree<'_>,
        here: &str,
        child: &RawChild,
        span: &Range<usize>,
    ) -> Result<ChildTable, ManifestError> {
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
            Some(r) => match Restart::from_name(r.get_ref()) {
                Some(restart) => restart,
                None => {
                    return Err(self.error(
                        &r.span(),
                        f("restart"),
                        format!("expected one of {}", Restart::names()),
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
        // Named at the key's own line where it has a span, else at the child's.
        let not_for = |field: &str, at: Option<Range<usize>>, what: &str| match at {
            Some(at) => Err(self.error(&at, f(field), format!("not allowed on a {what} child"))),
            None => Ok(()),
        };
        if let Some(id) = &child.id
            && id.get_ref().is_empty()
        {
            return Err(self.error(&id.span(), f("id"), "empty id"));
        }
        if is_sup {
            not_for(
                "module",
                child.module.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            not_for("args", child.args.as_ref().map(Spanned::span), "supervisor")?;
            not_for(
                "start_timeout_ms",
                child.start_timeout_ms.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            not_for("via", child.via.as_ref().map(Spanned::span), "supervisor")?;
            not_for(
                "hibernate_after_ms",
                child.hibernate_after_ms.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            not_for(
                "memory_limit",
                child.memory_limit.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            not_for(
                "callback_timeout_ms",
                child.callback_timeout_ms.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            not_for(
                "mailbox",
                child.mailbox.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            not_for(
                "grants",
                child.grants.as_ref().map(Spanned::span),
                "supervisor",
            )?;
            let Some(id) = &child.id else {
                return Err(self.error(span, f("id"), "a supervisor child needs an id"));
            };
            let name = self.name(&mut tree.names, child.name.as_ref(), &f("name"), here)?;
            let sup = self.supervisor(
                tree,
                &format!("{here}."),
                &format!("{here}."),
                id.get_ref().clone(),
                name,
                line,
                child.strategy.as_ref(),
                child.intensity,
                child.period_ms.as_ref(),
                child.children.as_deref().unwrap_or_default(),
            )?;
            return Ok(ChildTable {
                id: id.get_ref().clone(),
                restart,
                shutdown,
                kind: ChildTableKind::Supervisor(sup),
                line,
            });
        }
        not_for(
            "strategy",
            child.strategy.as_ref().map(Spanned::span),
            "worker",
        )?;
        not_for(
            "intensity",
            child.intensity.as_ref().map(|_| span.clone()),
            "worker",
        )?;
        not_for(
            "period_ms",
            child.period_ms.as_ref().map(Spanned::span),
            "worker",
        )?;
        not_for(
            "children",
            child.children.as_ref().map(|_| span.clone()),
            "worker",
        )?;
        let Some(module) = &child.module else {
            return Err(self.error(span, here, "missing field `module`"));
        };
        if !tree.modules.contains_key(module.get_ref()) {
            let known: Vec<&str> = tree.modules.keys().map(String::as_str).collect();
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
        self.name(&mut tree.names, child.name.as_ref(), &f("name"), here)?;
        let via = match &child.via {
            None => None,
            Some(_) if child.name.is_some() => {
                return Err(self.error(
                    &child.via.as_ref().map_or(span.clone(), |v| v.span()),
                    f("via"),
                    "give either name or via, not both",
                ));
            }
            Some(v) => Some(self.via(tree, v, &f("via"), here)?),
        };
        let start_timeout = match &child.start_timeout_ms {
            None => None,
            Some(t) if *t.get_ref() == 0 => {
                return Err(self.error(&t.span(), f("start_timeout_ms"), "must be positive"));
            }
            Some(t) => Some(Duration::from_millis(*t.get_ref())),
        };
        let hibernate_after = match &child.hibernate_after_ms {
            None => None,
            Some(t) if *t.get_ref() == 0 => {
                return Err(self.error(&t.span(), f("hibernate_after_ms"), "must be positive"));
            }
            Some(t) => Some(Duration::from_millis(*t.get_ref())),
        };
        let limits = self.child_limits(tree, child, &f)?;
        let grants = match &child.grants {
            None => None,
            Some(raw) => {
                let own = self.grants(&f("grants"), raw.get_ref(), tree.base)?;
                let module_grants = tree
                    .module_specs
                    .iter()
                    .find(|m| m.name == *module.get_ref())
                    .map(|m| &m.grants)
                    .expect("a checked module");
                own.check_within(module_grants).map_err(|e| {
                    self.error(
                        &raw.span(),
                        f("grants"),
                        format!("{e} ({})", module.get_ref()),
                    )
                })?;
                Some(Box::new(own))
            }
        };
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
        Ok(ChildTable {
            id,
            restart,
            shutdown,
            kind: ChildTableKind::Worker(WorkerSpec {
                name,
                via,
                module: module.get_ref().clone(),
                args,
                start_timeout,
                hibernate_after,
                limits,
                grants,
            }),
            line,
        })
    }

    /// A worker's `memory_limit`, `callback_timeout_ms` and `mailbox`.
    fn child_limits(
        &self,
        tree: &Tree<'_>,
        child: &RawChild,
        f: &impl Fn(&str) -> String,
    ) -> Result<ProcessLimits, ManifestError> {
        let mut limits = ProcessLimits::default();
        if let Some(m) = &child.memory_limit {
            let bytes = usize::try_from(*m.get_ref()).unwrap_or(usize::MAX);
            if bytes == 0 {
                return Err(self.error(&m.span(), f("memory_limit"), "must be positive"));
            }
            if bytes > tree.memory_limit {
                return Err(self.error(
                    &m.span(),
                    f("memory_limit"),
                    format!(
                        "{bytes} bytes exceeds the node's memory_limit of {} bytes (raise \
                         [node] memory_limit, which sizes every process's memory slot)",
                        tree.memory_limit
                    ),
                ));
            }
            limits = limits.memory(bytes);
        }
        if let Some(t) = &child.callback_timeout_ms {
            if *t.get_ref() == 0 {
                return Err(self.error(&t.span(), f("callback_timeout_ms"), "must be positive"));
            }
            let limit = Duration::from_millis(*t.get_ref());
            if limit < tree.epoch_tick {
                return Err(self.error(
                    &t.span(),
                    f("callback_timeout_ms"),
                    format!(
                        "at least [node] epoch_tick_ms ({} ms): callbacks are timed in ticks",
                        tree.epoch_tick.as_millis()
                    ),
                ));
            }
            limits = limits.callback_timeout(limit);
        }
        if let Some(m) = &child.mailbox {
            let raw = m.get_ref();
            let bound = *raw.bound.get_ref();
            if bound == 0 {
                return Err(self.error(&raw.bound.span(), f("mailbox.bound"), "must be positive"));
            }
            let policy = match &raw.policy {
                None => Overflow::Reject,
                Some(p) => p
                    .get_ref()
                    .parse()
                    .map_err(|e: String| self.error(&p.span(), f("mailbox.policy"), e))?,
            };
            let bound = usize::try_from(bound).unwrap_or(usize::MAX);
            limits = limits.mailbox(MailboxBound::new(bound, policy));
        }
        Ok(limits)
    }

    pub(super) fn timeout(
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

    /// `via = [registry, key]`: a unique registry the manifest declares, and a key no other
    /// child holds there.
    fn via(
        &self,
        tree: &mut Tree<'_>,
        v: &Spanned<toml::Value>,
        field: &str,
        here: &str,
    ) -> Result<(String, Term), ManifestError> {
        let span = v.span();
        let (registry, key) = match v.get_ref() {
            toml::Value::Array(a) if a.len() == 2 => match &a[0] {
                toml::Value::String(r) => (r, &a[1]),
                _ => return Err(self.error(&span, field, "expected [registry, key]")),
            },
            _ => return Err(self.error(&span, field, "expected [registry, key]")),
        };
        match tree.registries.iter().find(|r| r.name == *registry) {
            Some(r) if r.keys == Keys::Unique => {}
            Some(_) => {
                return Err(self.error(
                    &span,
                    field,
                    format!(
                        "registry {registry:?} has duplicate keys; a via name needs unique keys"
                    ),
                ));
            }
            None => {
                let known: Vec<&str> = tree.registries.iter().map(|r| r.name.as_str()).collect();
                let known = if known.is_empty() {
                    "no registries are declared".to_owned()
                } else {
                    format!("registries: {}", known.join(", "))
                };
                return Err(self.error(
                    &span,
                    field,
                    format!("unknown registry {registry:?} ({known})"),
                ));
            }
        }
        let json = toml_to_json(key).map_err(|m| self.error(&span, field, m))?;
        let key = from_json(&json);
        let canon = canonical(&key).unwrap_or_else(|| key.clone());
        if let Some(first) = tree.vias.insert((registry.clone(), canon), here.to_owned()) {
            return Err(self.error(
                &span,
                field,
                format!("duplicate via name [{registry:?}, {json}] ({first} has it too)"),
            ));
        }
        Ok((registry.clone(), key))
    }
}

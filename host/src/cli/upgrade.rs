//! `otter upgrade` and `otter modules`.

use std::path::Path;

use anyhow::{Context, bail};
use otter::control::{self, Request};
use otter::{ModuleInfo, UpgradePolicy, UpgradeReport};
use serde_json::Value;

use super::out::print;

/// What `otter upgrade` was given.
pub(super) struct Args<'a> {
    pub(super) module: Option<&'a str>,
    pub(super) path: Option<&'a Path>,
    pub(super) pid: Option<&'a str>,
    pub(super) extra: Value,
    pub(super) policy: Option<&'a str>,
    pub(super) force: bool,
    pub(super) eager: bool,
    pub(super) timeout_ms: u64,
}

pub(super) fn upgrade(socket: &Path, args: &Args<'_>) -> anyhow::Result<()> {
    let (what, request) = match (args.pid, args.module, args.path) {
        (Some(pid), ..) => (
            format!("upgrade --pid {pid}"),
            Request::ChangeCode {
                dest: super::client::dest(pid)?,
                extra: args.extra.clone(),
                timeout_ms: Some(args.timeout_ms),
            },
        ),
        (None, Some(module), Some(path)) => {
            let policy = match args.policy {
                None | Some("all-or-nothing") => UpgradePolicy::AllOrNothing,
                Some("per-process") => UpgradePolicy::PerProcess,
                Some(other) => {
                    bail!("--policy {other:?}: use all-or-nothing or per-process")
                }
            };
            // The node reads the file: it may run in another directory.
            let path = std::path::absolute(path)
                .with_context(|| format!("{}: no absolute path", path.display()))?;
            (
                format!("upgrade {module}"),
                Request::Upgrade {
                    module: module.to_owned(),
                    path,
                    extra: args.extra.clone(),
                    policy,
                    force: args.force,
                    eager: args.eager,
                    timeout_ms: Some(args.timeout_ms),
                },
            )
        }
        _ => bail!("give a MODULE and the PATH of its new code, or --pid"),
    };
    let answer = control::request(socket, &request).context(what.clone())?;
    let r: UpgradeReport =
        serde_json::from_value(answer).with_context(|| format!("{what}: unexpected answer"))?;
    let text = |s: &str| otter::escaped(s).into_owned();
    let mut out = format!(
        "{}: vsn {} -> {}: {} process(es) upgraded",
        text(&r.module),
        text(&r.from_vsn),
        text(&r.to_vsn),
        r.upgraded.len()
    );
    if !r.deferred.is_empty() {
        out.push_str(&format!(
            ", {} hibernating (migrate when they wake)",
            r.deferred.len()
        ));
    }
    out.push('\n');
    print(&out)
}

pub(super) fn modules(socket: &Path, json: bool) -> anyhow::Result<()> {
    let list = control::request(socket, &Request::Modules {}).context("modules")?;
    if json {
        return print(&format!("{}\n", otter::json_line(&list)));
    }
    let list: Vec<ModuleInfo> =
        serde_json::from_value(list).context("modules: unexpected answer")?;
    let text = |s: &str| otter::escaped(s).into_owned();
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|m| {
            [
                text(&m.name),
                text(&m.vsn),
                m.processes.to_string(),
                if m.current { "current" } else { "old" }.to_owned(),
                text(&m.path),
            ]
        })
        .collect();
    let header = ["MODULE", "VSN", "PROCESSES", "LOADED", "PATH"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    print(&out)
}

//! `otter reload` and `otter rollback`: print the plan, and what became of it.

use std::path::Path;

use anyhow::Context;
use otter::control::{self, Request};
use otter::release::ReloadReport;

use super::out::print;

pub(super) fn run(socket: &Path, what: &str, request: &Request) -> anyhow::Result<()> {
    let answer = control::request(socket, request).context(what.to_owned())?;
    let r: ReloadReport =
        serde_json::from_value(answer).with_context(|| format!("{what}: unexpected answer"))?;
    let text = |s: &str| otter::escaped(s).into_owned();
    let version = |v: &Option<String>| v.as_deref().map_or("(no version)".into(), text);
    let mut out = format!(
        "release {} -> {}",
        version(&r.from_version),
        version(&r.to_version)
    );
    if r.steps.is_empty() {
        out.push_str(": nothing to do\n");
    } else {
        out.push_str(&format!(": {} step(s)\n", r.steps.len()));
        for (i, step) in r.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, text(&step.to_string())));
        }
    }
    for note in &r.notes {
        out.push_str(&format!("  note: {}\n", text(note)));
    }
    if !r.steps.is_empty() {
        out.push_str(if r.applied {
            "applied\n"
        } else {
            "dry run: nothing changed\n"
        });
    }
    print(&out)
}

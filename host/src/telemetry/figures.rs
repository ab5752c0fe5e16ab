//! The node's per-process figures (process count, mailbox lengths, memory, restarts), read
//! at scrape time so that they are never stale and cost nothing between scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::Node;
use crate::metering::{gauge_family, render_callbacks};

/// Append the node's per-process figures, read now, in Prometheus' text format.
pub(super) fn render_node(node: &Node, out: &mut String) {
    let mut per_module: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut total = 0u64;
    node.for_each_process(|module, queue_len| {
        total += 1;
        let e = per_module.entry(module.to_owned()).or_default();
        e.0 += 1;
        e.1 += queue_len as u64;
    });
    let _ = writeln!(out, "# HELP otter_processes Live processes on the node.");
    let _ = writeln!(out, "# TYPE otter_processes gauge");
    let _ = writeln!(out, "otter_processes {total}");
    render_callbacks(out);
    gauge_family(
        out,
        "otter_module_processes",
        "Live processes by module.",
        per_module
            .iter()
            .map(|(m, (n, _))| (vec![("module", m.as_str())], *n)),
    );
    gauge_family(
        out,
        "otter_module_mailbox_messages",
        "Messages waiting in the mailboxes of a module's processes.",
        per_module
            .iter()
            .map(|(m, (_, q))| (vec![("module", m.as_str())], *q)),
    );
    let named: Vec<(String, crate::ProcessInfo)> = node
        .registered()
        .into_iter()
        .filter_map(|(name, pid)| Some((name, node.process_info(pid)?)))
        .collect();
    let labels = |name: &str, info: &crate::ProcessInfo| {
        vec![("name", name.to_owned()), ("module", info.module.clone())]
    };
    for (family, help, value) in [
        (
            "otter_mailbox_length",
            "Messages waiting in a registered process's mailbox.",
            (|i: &crate::ProcessInfo| i.queue_len as u64) as fn(&crate::ProcessInfo) -> u64,
        ),
        (
            "otter_process_memory_bytes",
            "A registered process's linear memory (0 while hibernating).",
            |i| i.memory as u64,
        ),
        (
            "otter_process_restarts",
            "How many times its supervisor had restarted a registered process's child spec.",
            |i| u64::from(i.restarts),
        ),
    ] {
        let rows: Vec<(Vec<(&str, String)>, u64)> = named
            .iter()
            .map(|(n, i)| (labels(n, i), value(i)))
            .collect();
        gauge_family(
            out,
            family,
            help,
            rows.iter()
                .map(|(l, v)| (l.iter().map(|(k, v)| (*k, v.as_str())).collect(), *v)),
        );
    }
}

//! The node's per-process figures (process count, mailbox lengths, memory, restarts), read
//! at scrape time so that they are never stale and cost nothing between scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metering::{gauge_family, render_callbacks};
use crate::{Node, Pid};

/// The most registered processes whose figures a scrape shows (three series each): a guest
/// registering names by the hundred thousand must not make every scrape that large.
pub const MAX_REGISTERED_SHOWN: usize = 2_000;

/// The registered processes a scrape shows, the first [`MAX_REGISTERED_SHOWN`] by name (so
/// the same ones from scrape to scrape), and how many are left out.
fn shown_names(mut all: Vec<(String, Pid)>) -> (Vec<(String, Pid)>, usize) {
    let omitted = all.len().saturating_sub(MAX_REGISTERED_SHOWN);
    if omitted > 0 {
        // Linear, not a full sort of every name: only the shown ones are sorted.
        all.select_nth_unstable_by(MAX_REGISTERED_SHOWN, |a, b| a.0.cmp(&b.0));
        all.truncate(MAX_REGISTERED_SHOWN);
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    (all, omitted)
}

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
    let (shown, omitted) = shown_names(node.registered());
    let _ = writeln!(
        out,
        "# HELP otter_registered_processes_omitted Registered processes left out of the per-process figures (past {MAX_REGISTERED_SHOWN})."
    );
    let _ = writeln!(out, "# TYPE otter_registered_processes_omitted gauge");
    let _ = writeln!(out, "otter_registered_processes_omitted {omitted}");
    let named: Vec<(String, crate::ProcessInfo)> = shown
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_shows_the_first_registered_names_and_counts_the_rest() {
        let all: Vec<(String, Pid)> = (0..MAX_REGISTERED_SHOWN as u64 + 50)
            .rev()
            .map(|i| (format!("p{i:06}"), i))
            .collect();
        let (shown, omitted) = shown_names(all);
        assert_eq!(omitted, 50);
        assert_eq!(shown.len(), MAX_REGISTERED_SHOWN);
        assert_eq!(shown[0].0, "p000000");
        assert_eq!(
            shown.last().unwrap().0,
            format!("p{:06}", MAX_REGISTERED_SHOWN - 1)
        );
    }
}

//! The node's per-process figures (process count, mailbox lengths, memory, restarts), read
//! at scrape time so that they are never stale and cost nothing between scrapes.

use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write;

use crate::metering::{gauge_family, render_callbacks};
use crate::{Node, Pid};

/// The most registered processes whose figures a scrape shows (three series each): a guest
/// registering names by the hundred thousand must not make every scrape that large.
pub const MAX_REGISTERED_SHOWN: usize = 2_000;

/// The registered processes a scrape shows: the first `max` by name (so the same ones from
/// scrape to scrape), chosen while the name table is walked in whatever order it yields,
/// and how many are left out. It keeps at most `max` names (a max-heap whose top is the
/// largest kept), so a scrape's work and memory follow what it shows, not how many names
/// are registered.
struct ShownNames {
    kept: BinaryHeap<(String, Pid)>,
    max: usize,
    omitted: usize,
}

impl ShownNames {
    fn new(max: usize) -> Self {
        ShownNames {
            kept: BinaryHeap::with_capacity(max),
            max,
            omitted: 0,
        }
    }

    fn offer(&mut self, name: &str, pid: Pid) {
        if self.kept.len() < self.max {
            self.kept.push((name.to_owned(), pid));
            return;
        }
        self.omitted += 1;
        if let Some(mut largest) = self.kept.peek_mut()
            && name < largest.0.as_str()
        {
            // Reuses the evicted name's buffer; the heap is restored when `largest` drops.
            largest.0.clear();
            largest.0.push_str(name);
            largest.1 = pid;
        }
    }

    /// The kept names in name order, and how many were left out.
    fn into_sorted(self) -> (Vec<(String, Pid)>, usize) {
        (self.kept.into_sorted_vec(), self.omitted)
    }
}

/// Append the node's per-process figures, read now, in Prometheus' text format.
pub(super) fn render_node(node: &Node, out: &mut String) {
    let mut per_module: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut total = 0u64;
    node.for_each_process(|module, queue_len| {
        total += 1;
        // A module's name is copied once per scrape, not once per process.
        let e = match per_module.get_mut(module) {
            Some(e) => e,
            None => per_module.entry(module.to_owned()).or_default(),
        };
        e.0 += 1;
        e.1 += queue_len as u64;
    });
    let _ = writeln!(out, "# HELP otter_processes Live processes on the node.");
    let _ = writeln!(out, "# TYPE otter_processes gauge");
    let _ = writeln!(out, "otter_processes {total}");
    let _ = writeln!(
        out,
        "# HELP otter_guest_files OS descriptors guests hold open (WASI files, directories and sockets, SQLite connections)."
    );
    let _ = writeln!(out, "# TYPE otter_guest_files gauge");
    let _ = writeln!(out, "otter_guest_files {}", node.open_guest_files());
    let _ = writeln!(
        out,
        "# HELP otter_guest_files_max OS descriptors guests may hold open (max_guest_files)."
    );
    let _ = writeln!(out, "# TYPE otter_guest_files_max gauge");
    let _ = writeln!(out, "otter_guest_files_max {}", node.max_guest_files());
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
    let held = crate::metering::series_by_module();
    gauge_family(
        out,
        "otter_guest_series",
        "Distinct metric series a module's processes created (they count against its share).",
        held.iter()
            .map(|(m, n)| (vec![("module", m.as_str())], *n as u64)),
    );
    let mut shown = ShownNames::new(MAX_REGISTERED_SHOWN);
    node.for_each_registered(|name, pid| shown.offer(name, pid));
    let (shown, omitted) = shown.into_sorted();
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

    fn shown_names(walk: impl IntoIterator<Item = (String, Pid)>) -> (Vec<(String, Pid)>, usize) {
        let mut shown = ShownNames::new(MAX_REGISTERED_SHOWN);
        for (name, pid) in walk {
            shown.offer(&name, pid);
        }
        shown.into_sorted()
    }

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

    #[test]
    fn the_shown_names_are_the_smallest_whatever_order_the_table_is_walked_in() {
        let n = MAX_REGISTERED_SHOWN as u64 + 1_000;
        let name = |i: u64| (format!("p{i:06}"), i + 100);
        let smallest: Vec<(String, Pid)> = (0..MAX_REGISTERED_SHOWN as u64).map(name).collect();
        // Ascending, descending, and a stride through all of them (7919 is prime to n).
        let orders: [Box<dyn Fn(u64) -> u64>; 4] = [
            Box::new(|i| i),
            Box::new(move |i| n - 1 - i),
            Box::new(move |i| i * 7919 % n),
            // The largest half first, then the rest: every early name is evicted later.
            Box::new(move |i| (i + n / 2) % n),
        ];
        for (k, order) in orders.iter().enumerate() {
            let (shown, omitted) = shown_names((0..n).map(|i| name(order(i))));
            assert_eq!(omitted, 1_000, "order {k}");
            assert_eq!(shown, smallest, "order {k}");
        }
        let (shown, omitted) = shown_names((0..10).map(name));
        assert_eq!(
            (shown.len(), omitted),
            (10, 0),
            "fewer than the most shown: all"
        );
        assert!(shown.is_sorted());
    }
}

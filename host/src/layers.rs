//! The crate's top-level modules import one another one way only, but for the knots the
//! architecture section of the crate docs names. This test reads every `crate::` path in
//! `host/src` (test code aside), finds the cycles among top-level modules, and fails on any
//! cycle outside those knots, naming the imports that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules that still import one another, and why (see the crate docs, "Import layers"):
/// a process's store data holds the node so that its imports reach the node, and a module's
/// `InstancePre`, kept in the process table, is typed by that store data; guests reach
/// supervisors, which start processes through the node.
const RUNTIME_KNOT: &[&str] = &["engine", "entry", "host", "node", "process", "supervisor"];

/// The manifest reads the control endpoint's limits; the endpoint shows the manifest's tree
/// and reloads releases, which are manifests.
const APPLICATION_KNOT: &[&str] = &["control", "manifest", "release"];

type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Every `crate::` path, outside comments and test code, by the top-level module it is in.
fn imports(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let reexports = root_reexports(&lib);
    let mut graph = Graph::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read host/src") {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() {
                if name != "tests" {
                    dirs.push(path);
                }
                continue;
            }
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under host/src");
            let top = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .expect("a path")
                .trim_end_matches(".rs")
                .to_owned();
            if matches!(top.as_str(), "lib" | "main" | "layers") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let mut lines = text.lines().enumerate().peekable();
            while let Some((n, line)) = lines.next() {
                let code = line.trim_start();
                if code == "#[cfg(test)]"
                    && lines
                        .peek()
                        .is_some_and(|(_, l)| l.trim_start().starts_with("mod tests"))
                {
                    break;
                }
                if code.starts_with("//") {
                    continue;
                }
                // A group rustfmt broke over several lines is read as one.
                let mut code = code.to_owned();
                if code.contains("crate::{") && !code.contains('}') {
                    for (_, more) in lines.by_ref() {
                        code.push_str(more.trim());
                        if more.contains('}') {
                            break;
                        }
                    }
                }
                for target in targets(&code, &reexports) {
                    if target != top {
                        graph
                            .entry(top.clone())
                            .or_default()
                            .entry(target)
                            .or_default()
                            .push(format!("{}:{}", rel.display(), n + 1));
                    }
                }
            }
        }
    }
    graph
}

/// The crate root's `pub use module::{Name, ...}`: which module a root name comes from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let text = lib.replace('\n', " ");
    for stmt in text.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = path.split_once("::") else {
            continue;
        };
        for name in names
            .trim_matches(|c| c == '{' || c == '}' || c == ' ')
            .split(',')
        {
            let name = name.trim();
            if !name.is_empty() {
                map.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    map
}

/// The top-level modules the `crate::` paths in `code` name; a root re-export counts as the
/// module it comes from, and a name from outside the crate (`crate::Pid`) as none.
fn targets(code: &str, reexports: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|item| item.trim().split("::").next().unwrap_or_default())
                .collect()
        } else {
            vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default(),
            ]
        };
        for name in names {
            let module = reexports.get(name).map_or(name, String::as_str);
            if module
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
            {
                found.push(module.to_owned());
            }
        }
    }
    found
}

/// The strongly connected components of more than one module.
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<&String> = graph
        .keys()
        .chain(graph.values().flat_map(|e| e.keys()))
        .collect();
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in graph.get(&n).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut components: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        if components.iter().any(|c| c.contains(*n)) {
            continue;
        }
        let component: BTreeSet<String> = nodes
            .iter()
            .filter(|m| reachable[*n].contains(**m) && reachable[**m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if component.len() > 1 {
            components.push(component);
        }
    }
    components
}

#[test]
fn top_level_modules_import_one_way_outside_the_documented_knots() {
    let graph = imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        graph.get("node").is_some_and(|e| e.contains_key("mailbox")),
        "the reader found no imports: {graph:?}"
    );
    for component in cycles(&graph) {
        let allowed = [RUNTIME_KNOT, APPLICATION_KNOT]
            .iter()
            .any(|knot| component.iter().all(|m| knot.contains(&m.as_str())));
        if !allowed {
            let mut edges = String::new();
            for a in &component {
                for (b, at) in graph.get(a).into_iter().flatten() {
                    if component.contains(b) {
                        edges.push_str(&format!("\n  {a} -> {b}: {}", at.join(", ")));
                    }
                }
            }
            panic!("an import cycle among {component:?}:{edges}");
        }
    }
}

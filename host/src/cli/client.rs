//! The commands that talk to a running node: one request each through its control socket.

use std::path::Path;

use anyhow::{Context, bail};
use otter::Dest;
use otter::ProcessInfo;
use otter::control::{self, Request, TreeNode};
use serde_json::Value;

use super::Command;
use super::out::print;

pub(super) fn run(socket: &Path, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Run { .. } => unreachable!("`run` is not a client command"),
        Command::Call {
            name,
            json,
            timeout,
        } => {
            let reply = ask(
                socket,
                "call",
                name,
                Request::Call {
                    dest: dest(name)?,
                    msg: parse_json(json)?,
                    timeout_ms: Some(*timeout),
                },
            )?;
            print(&format!("{}\n", otter::json_line(&reply)))?;
        }
        Command::Cast { name, json } => {
            let msg = parse_json(json)?;
            ask(
                socket,
                "cast",
                name,
                Request::Cast {
                    dest: dest(name)?,
                    msg,
                },
            )?;
        }
        Command::Send { name, json } => {
            let msg = parse_json(json)?;
            ask(
                socket,
                "send",
                name,
                Request::Send {
                    dest: dest(name)?,
                    msg,
                },
            )?;
        }
        Command::Stop {
            name,
            reason,
            timeout,
        } => {
            // A reason may be JSON ({"shutdown": ...}); anything else is taken as text.
            let reason = match serde_json::from_str::<Value>(reason) {
                Ok(v @ Value::Object(_)) => v,
                _ => Value::String(reason.clone()),
            };
            ask(
                socket,
                "stop",
                name,
                Request::Stop {
                    dest: dest(name)?,
                    reason: Some(reason),
                    timeout_ms: Some(*timeout),
                },
            )?;
        }
        Command::Whereis { name } => {
            let pid = ask(
                socket,
                "whereis",
                name,
                Request::Whereis { name: name.clone() },
            )?;
            if pid.is_null() {
                bail!("whereis {name}: noproc: no process is registered as {name:?}");
            }
            print(&format!("{pid}\n"))?;
        }
        Command::Ps { json } => {
            let list = control::request(socket, &Request::Ps {}).context("ps")?;
            if *json {
                print(&format!("{}\n", otter::json_line(&list)))?;
            } else {
                print(&table(&rows(list).context("ps: unexpected answer")?))?;
            }
        }
        Command::Tree { json } => {
            let tree = control::request(socket, &Request::Tree {}).context("tree")?;
            if *json {
                print(&format!("{}\n", otter::json_line(&tree)))?;
            } else {
                let tree: TreeNode =
                    serde_json::from_value(tree).context("tree: unexpected answer")?;
                let mut out = String::new();
                print_tree(&tree, 0, &mut out);
                print(&out)?;
            }
        }
        Command::State { name, set } => {
            let set = set.as_deref().map(parse_json).transpose()?;
            let request = Request::State {
                dest: dest(name)?,
                set,
            };
            let state = ask(socket, "state", name, request)?;
            print(&format!("{}\n", otter::json_line(&state)))?;
        }
        Command::Start {
            supervisor,
            module,
            name,
            args,
        } => {
            let args = parse_json(args)?;
            let (what, request) = match (supervisor, module) {
                (Some(sup), _) => (
                    sup,
                    Request::StartChild {
                        supervisor: dest(sup)?,
                        args,
                    },
                ),
                (None, Some(module)) => (
                    module,
                    Request::Start {
                        module: module.clone(),
                        args,
                        name: name.clone(),
                    },
                ),
                (None, None) => unreachable!("clap requires a supervisor or --module"),
            };
            let pid = ask(socket, "start", what, request)?;
            if pid.is_null() {
                print("ignore\n")?;
            } else {
                print(&format!("{pid}\n"))?;
            }
        }
        Command::Suspend { name } => {
            ask(
                socket,
                "suspend",
                name,
                Request::Suspend { dest: dest(name)? },
            )?;
        }
        Command::Upgrade {
            module,
            path,
            pid,
            extra,
            policy,
            force,
            eager,
            timeout_ms,
        } => super::upgrade::upgrade(
            socket,
            &super::upgrade::Args {
                module: module.as_deref(),
                path: path.as_deref(),
                pid: pid.as_deref(),
                extra: parse_json(extra)?,
                policy: policy.as_deref(),
                force: *force,
                eager: *eager,
                timeout_ms: *timeout_ms,
            },
        )?,
        Command::Modules { json } => super::upgrade::modules(socket, *json)?,
        Command::Reload {
            manifest,
            dry_run,
            extra,
            force,
            timeout_ms,
        } => {
            // The node reads the file: it may run in another directory.
            let path = std::path::absolute(manifest)
                .with_context(|| format!("{}: no absolute path", manifest.display()))?;
            let request = Request::Reload {
                path,
                dry_run: *dry_run,
                extra: parse_json(extra)?,
                force: *force,
                timeout_ms: Some(*timeout_ms),
            };
            super::reload::run(socket, "reload", &request)?;
        }
        Command::Rollback {
            dry_run,
            extra,
            timeout_ms,
        } => {
            let request = Request::Rollback {
                dry_run: *dry_run,
                extra: parse_json(extra)?,
                timeout_ms: Some(*timeout_ms),
            };
            super::reload::run(socket, "rollback", &request)?;
        }
        Command::Resume { name } => {
            ask(
                socket,
                "resume",
                name,
                Request::Resume { dest: dest(name)? },
            )?;
        }
    }
    Ok(())
}

/// A pid if `name` is all digits, a `via` key if it is `{"via": [registry, key]}`, else a
/// registered name.
pub(super) fn dest(name: &str) -> anyhow::Result<Dest> {
    if name.trim_start().starts_with('{') {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Via {
            via: (String, Value),
        }
        let Via {
            via: (registry, key),
        } = serde_json::from_str(name).with_context(|| {
            format!(r#"{name:?}: a destination in braces is {{"via": [registry, key]}}"#)
        })?;
        return Ok(Dest::via(registry, otter::from_json(&key)));
    }
    Ok(match name.parse::<u64>() {
        Ok(pid) if !name.starts_with('+') => Dest::Pid(pid),
        _ => Dest::Name(name.to_owned()),
    })
}

fn parse_json(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        // One short line, however long the text: its start shows which argument it was.
        let shown = match text.char_indices().nth(40) {
            Some((cut, _)) => format!("{:?}…", &text[..cut]),
            None => format!("{text:?}"),
        };
        // Only a bare word is likely a string missing its quotes.
        let bare = text.chars().next().is_some_and(char::is_alphabetic) && text.len() <= 40;
        if bare {
            anyhow::anyhow!("{shown} is not JSON (a string needs its quotes, as in '\"{text}\"')")
        } else {
            anyhow::anyhow!("{shown} is not JSON: {e}")
        }
    })
}

fn ask(socket: &Path, op: &str, name: &str, request: Request) -> anyhow::Result<Value> {
    control::request(socket, &request).with_context(|| format!("{op} {name}"))
}

/// The table rows of `ps`'s answer, guest text escaped.
fn rows(list: Value) -> anyhow::Result<Vec<[String; 10]>> {
    let list: Vec<ProcessInfo> = serde_json::from_value(list)?;
    let text = |s: &str| otter::escaped(s).into_owned();
    Ok(list
        .iter()
        .map(|p| {
            [
                p.pid.to_string(),
                p.name.as_deref().map_or_else(|| "-".into(), text),
                text(&p.module),
                text(&p.vsn),
                p.queue_len.to_string(),
                overflow(p.mailbox_bound, p.rejected),
                overflow(p.mailbox_bound, p.dropped),
                memory(p.memory, p.hibernating),
                p.restarts.to_string(),
                uptime(p.uptime_ms),
            ]
        })
        .collect())
}

/// A bounded mailbox's counter; `-` for an unbounded one, which refuses nothing.
fn overflow(bound: Option<usize>, count: u64) -> String {
    match bound {
        Some(_) => count.to_string(),
        None => "-".into(),
    }
}

fn table(rows: &[[String; 10]]) -> String {
    let header = [
        "PID", "NAME", "MODULE", "VSN", "MSGQ", "REJECTED", "DROPPED", "MEMORY", "RESTARTS",
        "UPTIME",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn memory(bytes: usize, hibernating: bool) -> String {
    if hibernating {
        return "hibernating".into();
    }
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{}K", bytes / 1024),
        _ => format!("{:.1}M", bytes as f64 / 1_048_576.0),
    }
}

fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// One line per node of `tree`'s answer, children indented under their supervisor, guest
/// text escaped.
fn print_tree(node: &TreeNode, depth: usize, out: &mut String) {
    let text = |s: &str| otter::escaped(s).into_owned();
    let pid = |p: Option<u64>| p.map_or_else(|| "-".to_owned(), |p| p.to_string());
    let indent = "  ".repeat(depth);
    match node {
        TreeNode::Supervisor(s) => {
            out.push_str(&format!(
                "{indent}{}  pid={}  supervisor  {}  restart={}  restarts={}\n",
                text(&s.id),
                pid(s.pid),
                s.strategy,
                s.restart,
                s.restarts,
            ));
            for child in &s.children {
                print_tree(child, depth + 1, out);
            }
        }
        TreeNode::Worker(w) => out.push_str(&format!(
            "{indent}{}  pid={}  worker  {}{}  restart={}  restarts={}\n",
            text(&w.id),
            pid(w.pid),
            text(&w.module),
            w.vsn
                .as_ref()
                .map_or(String::new(), |v| format!(" vsn={}", text(v))),
            w.restart,
            w.restarts,
        )),
    }
}

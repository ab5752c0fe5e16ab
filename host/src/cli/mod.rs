//! The command line: `run` starts an application; the other commands talk to a running
//! node through its control socket.

mod client;
mod out;
mod reload;
mod run;
mod upgrade;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};
use otter::control;

/// Run Erlang/OTP-style GenServers as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "otter", version, about)]
pub(crate) struct Cli {
    /// The node's control socket [default: $OTTER_SOCKET, else
    /// $XDG_RUNTIME_DIR/otter/NODE.sock, else /tmp/otter-UID/NODE.sock; for `run`, the
    /// manifest's `[node] control` comes first].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The node to talk to (or, for `run`, the name to give it) [default: the manifest's
    /// node name for `run`; the only running node otherwise].
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the application a manifest describes and serve its control socket until
    /// Ctrl-C or SIGTERM.
    Run {
        /// The manifest (TOML).
        manifest: PathBuf,
    },
    /// Call a server and print its JSON reply.
    Call {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
        /// The request, as JSON (a string needs its quotes: '"ping"').
        json: String,
        /// How long to wait for the reply, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 5000)]
        timeout: u64,
    },
    /// Cast a request to a server.
    Cast {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
        /// The request, as JSON.
        json: String,
    },
    /// Send a plain message (to `handle_info`).
    Send {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
        /// The message, as JSON.
        json: String,
    },
    /// Stop a process: `terminate` runs, then it exits. A supervised child is then
    /// handled by its supervisor as in OTP: a permanent one is restarted (its name then
    /// resolves to a new pid), a transient one only after an error reason, a temporary one
    /// never. A supervisor's name stops its whole subtree (children in reverse order): a
    /// nested one stays stopped (as `supervisor:terminate_child`), the root's ends the
    /// node.
    Stop {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
        /// normal, shutdown, kill (no terminate), or any other text for an error exit.
        #[arg(long, default_value = "shutdown")]
        reason: String,
        /// How long `terminate` may take, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 5000)]
        timeout: u64,
    },
    /// Print the pid registered under a name.
    Whereis {
        /// The name.
        name: String,
    },
    /// List the live processes: pid, registered name, module, version, mailbox length,
    /// linear memory, how many times its supervisor restarted it, uptime.
    Ps {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the application's live supervision tree: supervisors with their strategy,
    /// children with id, pid (or -), kind, module and restart type.
    Tree {
        /// Print JSON instead of an indented tree.
        #[arg(long)]
        json: bool,
    },
    /// Print a process's state as JSON; with --set, replace it first (OTP's
    /// `sys:replace_state`) and print the state the process then holds.
    State {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
        /// The new state, as JSON. A state the process refuses (one that does not decode as
        /// its state) is an error, and its state is left as it was.
        #[arg(long, value_name = "JSON")]
        set: Option<String>,
    },
    /// Start a process and print its pid (`ignore` if its `init` returned ignore): a child of
    /// a dynamic (simple_one_for_one) supervisor, with the template's args and --args
    /// appended (OTP's `supervisor:start_child`); or, with --module, a process of a loaded
    /// module that no supervisor restarts (OTP's `gen_server:start`), stopped with the node.
    Start {
        /// The dynamic supervisor: its name, pid, or the root's id.
        #[arg(required_unless_present = "module", conflicts_with = "module")]
        supervisor: Option<String>,
        /// Start an unsupervised process of this module (as the manifest's `[modules]`
        /// names it).
        #[arg(long, value_name = "MODULE")]
        module: Option<String>,
        /// Register the unsupervised process under this name.
        #[arg(long, requires = "module", conflicts_with = "supervisor")]
        name: Option<String>,
        /// The arguments, as JSON: what `init` receives with --module, else what is
        /// appended to the template's args (arrays concatenate, maps merge).
        #[arg(long, value_name = "JSON", default_value = "null")]
        args: String,
    },
    /// Suspend a process (OTP's `sys:suspend`): calls to it time out and messages queue
    /// until `resume`.
    Suspend {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
    },
    /// Resume a suspended process: it handles what queued, in order.
    Resume {
        /// A registered name, a pid, or {"via": [registry, key]}.
        name: String,
    },
    /// Upgrade (or downgrade) a running module to the code in a file: every process of it
    /// migrates its state with the new code's `code_change`, or, if one fails, every one
    /// stays on the old version (unless --policy per-process). Exits non-zero listing each
    /// process that stays, with why. With --pid: migrate one suspended process to the code
    /// its module loads now (OTP's `sys:change_code`).
    Upgrade {
        /// The module, as the manifest's `[modules]` names it.
        #[arg(required_unless_present = "pid", requires = "path")]
        module: Option<String>,
        /// The new code (.wasm).
        path: Option<PathBuf>,
        /// One suspended process instead: its name or pid.
        #[arg(long, value_name = "NAME|PID", conflicts_with_all = ["module", "policy", "force", "eager"])]
        pid: Option<String>,
        /// `code_change`'s `extra` argument, as JSON.
        #[arg(long, value_name = "JSON", default_value = "null")]
        extra: String,
        /// all-or-nothing (the default) or per-process.
        #[arg(long, value_name = "POLICY")]
        policy: Option<String>,
        /// Upgrade even if the new code reports the running vsn.
        #[arg(long)]
        force: bool,
        /// Migrate hibernating processes now, not when each wakes.
        #[arg(long)]
        eager: bool,
        /// How long each process's `code_change` may take.
        #[arg(long, value_name = "N", default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Move the running application to the release a changed manifest describes: modules
    /// whose bytes changed are upgraded, new ones loaded, new children started, removed
    /// children stopped, changed child specs used at their next restart. Prints the plan,
    /// then applies it; if a step fails, the steps before it are undone and the exit status
    /// is non-zero.
    Reload {
        /// The new manifest.
        manifest: PathBuf,
        /// Print the plan only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// `code_change`'s `extra` argument for every upgraded module, as JSON.
        #[arg(long, value_name = "JSON", default_value = "null")]
        extra: String,
        /// Upgrade modules whose new code reports the running vsn.
        #[arg(long)]
        force: bool,
        /// How long each process's `code_change` may take.
        #[arg(long, value_name = "N", default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Return to the release that ran before the last reload, the same way.
    Rollback {
        /// Print the plan only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// `code_change`'s `extra` argument for every module changed back, as JSON.
        #[arg(long, value_name = "JSON", default_value = "null")]
        extra: String,
        /// How long each process's `code_change` may take.
        #[arg(long, value_name = "N", default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// List the loaded modules, their versions and how many processes run each.
    Modules {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(node) = &cli.node
        && (node.is_empty() || node.contains(['/', '\0']) || node == "." || node == "..")
    {
        let _ = writeln!(
            std::io::stderr(),
            "otter: --node {node:?}: a node name cannot contain '/' or be empty"
        );
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run { ref manifest } => run::run(manifest, cli.socket.clone(), cli.node.clone()),
        ref command => client_socket(&cli).and_then(|socket| client::run(&socket, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<out::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            // Errors carry guest text (exit reasons, names): one escaped line. A closed
            // stderr leaves nothing to tell.
            let _ = writeln!(
                std::io::stderr(),
                "otter: {}",
                otter::escaped(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// The socket a client command talks to: `--socket`, else `--node`'s socket in the default
/// directory, else `$OTTER_SOCKET`, else the only node with a socket in the default
/// directory.
fn client_socket(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(s) = &cli.socket {
        return Ok(s.clone());
    }
    if let Some(node) = &cli.node {
        return Ok(control::node_socket_path(node));
    }
    if let Some(s) = std::env::var_os(control::SOCKET_ENV).filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    let nodes = control::local_nodes();
    match nodes.as_slice() {
        [only] => Ok(control::node_socket_path(only)),
        [] => bail!(
            "no node is running (no socket in {}); start one with `otter run app.toml`, or give --socket",
            control::default_socket_dir().display()
        ),
        many => bail!(
            "{} nodes have sockets in {} ({}); pick one with --node",
            many.len(),
            control::default_socket_dir().display(),
            many.join(", ")
        ),
    }
}

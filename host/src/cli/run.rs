//! `otter run app.toml`: check the manifest, load every module, bind the control socket,
//! start the children in order, serve until Ctrl-C or SIGTERM, then stop the children in
//! reverse order.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use otter::control::{self, Endpoint};
use otter::manifest::{ChildSpec, Manifest};
use otter::{ExitReason, Node, Pid, SpawnOptions, StopError};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter (`tracing_subscriber::EnvFilter` syntax).
const LOG_ENV: &str = "OTTER_LOG";

pub(super) fn run(
    manifest: &Path,
    socket: Option<PathBuf>,
    node_name: Option<String>,
) -> anyhow::Result<()> {
    init_logging();
    // Everything that can be checked without a runtime is checked first.
    let manifest = Manifest::load(manifest)?;
    // As for the client commands, an explicit --node means its socket in the default
    // directory, whatever $OTTER_SOCKET says.
    let socket = socket
        .or_else(|| manifest.control.clone())
        .unwrap_or_else(|| match &node_name {
            Some(node) => control::node_socket_path(node),
            None => control::default_socket_path(&manifest.node_name),
        });
    let node_name = node_name.unwrap_or_else(|| manifest.node_name.clone());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(serve(manifest, node_name, socket))
}

fn init_logging() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn serve(manifest: Manifest, node_name: String, socket: PathBuf) -> anyhow::Result<()> {
    // Signals are caught from the start, so a SIGTERM during startup still stops cleanly.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let node = Node::new(Default::default())?;
    for m in &manifest.modules {
        let field = format!("modules.{}.path", m.name);
        let module = node
            .load_module(&m.name, &m.path)
            .await
            .map_err(|e| manifest.error_at(m.line, &field, e.to_string()))?;
        if let Some(want) = &m.vsn
            && module.vsn() != want
        {
            return Err(manifest
                .error_at(
                    m.line,
                    format!("modules.{}.vsn", m.name),
                    format!(
                        "{} reports vsn {:?}, not {want:?}",
                        m.path.display(),
                        module.vsn()
                    ),
                )
                .into());
        }
        tracing::debug!(module = %m.name, vsn = module.vsn(), path = %m.path.display(), "loaded");
    }

    let endpoint = Endpoint::bind(&socket)?;

    let mut started: Vec<(&ChildSpec, Pid)> = Vec::with_capacity(manifest.children.len());
    for (i, child) in manifest.children.iter().enumerate() {
        let mut opts = SpawnOptions::default();
        if let Some(name) = &child.name {
            opts = opts.name(name);
        }
        if let Some(t) = child.start_timeout {
            opts = opts.start_timeout(t);
        }
        let spawned = tokio::select! {
            r = node.spawn(&child.module, child.args.clone(), opts) => Some(r),
            _ = sigterm.recv() => None,
            _ = sigint.recv() => None,
        };
        match spawned {
            Some(Ok(pid)) => {
                tracing::info!(child = child.label(), pid, module = %child.module, "started");
                started.push((child, pid));
            }
            Some(Err(e)) => {
                stop_children(&node, &started).await;
                node.shutdown().await;
                return Err(manifest
                    .error_at(
                        child.line,
                        format!("children[{i}]"),
                        format!("{} did not start: {e}", child.label()),
                    )
                    .into());
            }
            None => {
                tracing::info!("signalled during startup; stopping");
                stop_children(&node, &started).await;
                node.shutdown().await;
                return Ok(());
            }
        }
    }

    tracing::info!(
        node = %node_name,
        children = started.len(),
        control = %endpoint.path().display(),
        "running"
    );
    // The socket path is the one thing on stdout, for scripts.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", endpoint.path().display()).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    drop(out);

    tokio::select! {
        () = endpoint.serve(node.clone()) => {}
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping"),
        _ = sigint.recv() => tracing::info!("interrupted: stopping"),
    }
    stop_children(&node, &started).await;
    // Whatever the children started themselves.
    node.shutdown().await;
    drop(endpoint);
    tracing::info!(node = %node_name, "stopped");
    Ok(())
}

/// Stop `children` newest first: `terminate(shutdown)` within each child's shutdown
/// timeout, then a kill.
async fn stop_children(node: &Node, children: &[(&ChildSpec, Pid)]) {
    for &(child, pid) in children.iter().rev() {
        match node
            .stop(pid, ExitReason::Shutdown, Some(child.shutdown_timeout))
            .await
        {
            Ok(()) => tracing::info!(child = child.label(), pid, "stopped"),
            Err(StopError::NoProc) => {
                tracing::debug!(child = child.label(), pid, "already gone")
            }
            Err(StopError::Timeout) => {
                tracing::warn!(
                    child = child.label(),
                    pid,
                    timeout_ms =
                        u64::try_from(child.shutdown_timeout.as_millis()).unwrap_or(u64::MAX),
                    "terminate took too long; killing"
                );
                node.kill(pid);
                let _ = tokio::time::timeout(Duration::from_secs(5), node.wait_exit(pid)).await;
            }
        }
    }
}

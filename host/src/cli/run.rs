//! `otter run app.toml`: check the manifest, load every module, create the registries, bind
//! the control socket, start the manifest's root supervisor (its children in order), serve until Ctrl-C or
//! SIGTERM or until the root supervisor exits (stopped by `otter stop`, or giving up), then
//! stop the supervisor (its children in reverse order).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use otter::control::{self, Endpoint};
use otter::manifest::{ChildTableKind, Manifest, SupervisorTable};
use otter::release::Release;
use otter::telemetry::{Metrics, PrometheusEndpoint};
use otter::{ChildFailure, ChildInfo, Node, SupervisorError};
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
    otter::runtime::busy_wait()?;
    let runtime = otter::runtime::builder(None)
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(serve(manifest, node_name, socket));
    // A compile abandoned on a signal may still be running; the node has stopped, so exit
    // without waiting for it.
    runtime.shutdown_background();
    result
}

/// `$OTTER_LOG`, else `$RUST_LOG` (as other Rust programs read it), else `info`.
fn init_logging() {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
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

    let config = manifest.node_config();
    // Bound before anything starts, so that an address in use stops the run at once.
    let prometheus = match manifest.prometheus {
        Some(addr) => Some(bind_metrics(&manifest, addr).await?),
        None => None,
    };
    // As servers do: the node's guests get a share of the hard limit, not of a soft one
    // meant for interactive shells.
    otter::raise_open_file_limit();
    let node = Node::new(config)?;
    let metrics = prometheus.map(|(endpoint, metrics)| {
        let addr = endpoint
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(metrics = %format!("http://{addr}/metrics"), "serving metrics");
        tokio::spawn(endpoint.serve(node.clone(), metrics))
    });
    // Loading runs a module's own code (bounded by the load time limit) and may compile for a
    // while: a signal meanwhile ends it at once.
    let loaded = tokio::select! {
        r = load_modules(&node, &manifest) => Some(r),
        _ = sigterm.recv() => None,
        _ = sigint.recv() => None,
    };
    let Some(loaded) = loaded else {
        tracing::info!("signalled while loading modules; stopping");
        node.shutdown().await;
        return Ok(());
    };
    let bytes = loaded?;

    for r in &manifest.registries {
        node.create_registry(&r.name, r.keys)
            .map_err(|e| manifest.error_at(r.line, "registries", e.to_string()))?;
    }

    let endpoint = Endpoint::bind(&socket)?.with_limits(manifest.control_limits);

    let started = tokio::select! {
        r = node.start_supervisor(manifest.supervisor.to_spec()) => Some(r),
        _ = sigterm.recv() => None,
        _ = sigint.recv() => None,
    };
    let supervisor = match started {
        Some(Ok(s)) => s,
        Some(Err(SupervisorError::Spec(e))) => {
            node.shutdown().await;
            return Err(manifest.spec_error(&e).into());
        }
        Some(Err(
            e @ (SupervisorError::Child { .. }
            | SupervisorError::AlreadyStarted(_)
            | SupervisorError::SystemLimit),
        )) => {
            node.shutdown().await;
            return Err(child_error(&manifest, &e).into());
        }
        None => {
            // The supervisor's start was dropped half-way: whatever it started goes with
            // the node.
            tracing::info!("signalled during startup; stopping");
            node.shutdown().await;
            return Ok(());
        }
    };
    let live = supervisor.which_children().await.unwrap_or_default();
    log_children(&manifest.supervisor, &live, "started");

    tracing::info!(
        node = %node_name,
        supervisor = %manifest.supervisor.id,
        children = live.len(),
        control = %endpoint.path().display(),
        "running"
    );
    // The socket path is the one thing on stdout, for scripts.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", endpoint.path().display()).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    drop(out);

    tokio::select! {
        () = endpoint.serve_release(node.clone(), supervisor.clone(), Release::new(manifest.clone(), bytes)) => {}
        reason = supervisor.wait_exit() => {
            if !supervisor.gave_up() {
                tracing::info!(%reason, "the root supervisor was stopped: stopping");
            }
        }
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping"),
        _ = sigint.recv() => tracing::info!("interrupted: stopping"),
    }
    // Snapshot what runs, stop the tree (children in reverse order, each as its shutdown
    // says), then log them newest first.
    let live = supervisor.which_children().await.unwrap_or_default();
    supervisor.stop().await;
    log_children(&manifest.supervisor, &live, "stopped");
    // Whatever the children started themselves.
    node.shutdown().await;
    if let Some(task) = metrics {
        task.abort();
    }
    // A `stop` of the root supervisor is answered before the node goes.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.finish_requests()).await;
    drop(endpoint);
    if supervisor.gave_up() {
        anyhow::bail!(
            "the root supervisor {:?} exited (shutdown): too many restarts",
            manifest.supervisor.id
        );
    }
    tracing::info!(node = %node_name, "stopped");
    Ok(())
}

/// Load the manifest's modules in order; the first that fails is the error, at its field.
/// The bytes each was loaded from, kept by the release (a rollback returns to them).
async fn load_modules(
    node: &Node,
    manifest: &Manifest,
) -> anyhow::Result<Vec<(String, Arc<[u8]>)>> {
    let mut loaded = Vec::with_capacity(manifest.modules.len());
    for m in &manifest.modules {
        let field = format!("modules.{}.path", m.name);
        let bytes: Arc<[u8]> = m
            .read()
            .map_err(|e| manifest.error_at(m.line, &field, format!("{}: {e}", m.path.display())))?
            .into();
        node.grant(&m.name, m.grants.clone()).map_err(|e| {
            manifest.error_at(m.line, format!("modules.{}.grants", m.name), e.to_string())
        })?;
        let module = node
            .load_module_bytes(&m.name, &m.path, &bytes)
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
        loaded.push((m.name.clone(), bytes));
    }
    Ok(loaded)
}

/// Log each running child as `started` (in start order) or `stopped` (newest first).
fn log_children(spec: &SupervisorTable, live: &[ChildInfo], what: &'static str) {
    let rows: Vec<_> = live.iter().collect();
    let ordered: Box<dyn Iterator<Item = &&ChildInfo>> = if what == "stopped" {
        Box::new(rows.iter().rev())
    } else {
        Box::new(rows.iter())
    };
    for info in ordered {
        let Some(child) = spec.children.iter().find(|c| c.id == info.id) else {
            continue;
        };
        let nested = match &child.kind {
            ChildTableKind::Supervisor(s) => Some(s),
            ChildTableKind::Worker(_) => None,
        };
        if what == "stopped"
            && let Some(s) = nested
        {
            log_children(s, &info.children, what);
        }
        if let Some(pid) = info.pid {
            tracing::info!(child = child.label(), pid, module = %child.module(), supervisor = %spec.id, "{what}");
        }
        if what == "started"
            && let Some(s) = nested
        {
            log_children(s, &info.children, what);
        }
    }
}

/// A child that failed to start, named by its field path, line and id chain.
fn child_error(manifest: &Manifest, e: &SupervisorError) -> otter::manifest::ManifestError {
    let mut ids = Vec::new();
    let mut at = e;
    let reason = loop {
        match at {
            SupervisorError::Child { id, reason } => {
                ids.push(id.as_str());
                match reason {
                    ChildFailure::Supervisor(inner) => at = inner,
                    ChildFailure::Worker(w) => break w.to_string(),
                }
            }
            SupervisorError::Spec(s) => break s.to_string(),
            SupervisorError::AlreadyStarted(_) | SupervisorError::SystemLimit => {
                break at.to_string();
            }
        }
    };
    let label = ids.last().copied().unwrap_or("?");
    match manifest.supervisor.locate(&ids) {
        Some((field, line)) => {
            manifest.error_at(line, field, format!("{label} did not start: {reason}"))
        }
        None => otter::manifest::ManifestError {
            file: manifest.path.clone(),
            line: None,
            field: String::new(),
            message: format!("{label} did not start: {reason}"),
        },
    }
}

/// Install the metrics recorder with `[telemetry]`'s series limits and bind the Prometheus
/// endpoint at `[telemetry] prometheus`.
async fn bind_metrics(
    manifest: &Manifest,
    addr: std::net::SocketAddr,
) -> anyhow::Result<(PrometheusEndpoint, Metrics)> {
    let metrics = Metrics::install()?;
    metrics.set_series_limits(manifest.series_limits);
    let endpoint = PrometheusEndpoint::bind(addr).await.with_context(|| {
        format!(
            "{}: telemetry.prometheus: cannot listen on {addr}",
            manifest.path.display()
        )
    })?;
    Ok((endpoint, metrics))
}

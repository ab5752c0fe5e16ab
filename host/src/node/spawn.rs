//! Starting a process: its entry in the table, its names, its starter's link and monitor,
//! its task, and the wait for its `init` within the start timeout.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{ExitGuard, NodeInner, SpawnOptions};
use crate::Pid;
use crate::engine::Module;
use crate::entry::{ProcessEntry, Start};
use crate::error::StartError;
use crate::exit::ExitReason;
use crate::mailbox::mailbox;
use crate::process::ProcessCtx;
use crate::term::Term;

/// Start a process and wait for its `init`.
pub(crate) async fn spawn(
    node: &Arc<NodeInner>,
    module: Arc<Module>,
    args: Term,
    opts: SpawnOptions,
) -> Result<Pid, StartError> {
    node.check_size("args", &args).map_err(StartError::Badarg)?;
    if let Some(name) = &opts.name {
        crate::limits::check_name(name).map_err(StartError::Badarg)?;
    }
    if node.at_process_limit() {
        return Err(StartError::SystemLimit);
    }
    // Taken now and kept for the process's life: a grant given later (a reload) reaches
    // the processes started after it.
    let grants = match opts.grants.clone() {
        Some(own) => {
            let module_grants = node.grants(module.name());
            own.check_within(&module_grants)
                .map_err(StartError::Grants)?;
            let mut own = (*own).clone();
            own.pin_within(&module_grants).map_err(StartError::Grants)?;
            Some(Arc::new(own))
        }
        None if module.uses_wasi() => Some(node.grants(module.name())),
        None => None,
    };
    let pid = node.next_pid();
    let (sender, mailbox) = mailbox(opts.limits.mailbox);
    let start = Start {
        restarts: opts.restarts,
        parent: opts.parent,
        exit_to: opts.exit_to.clone(),
        link: opts.link,
        monitor: opts.monitor,
    };
    let entry = Arc::new(ProcessEntry::new(pid, Some(module.clone()), sender, start));
    node.insert(entry.clone());
    if let Err(e) = node.register_start_names(&entry, &opts) {
        node.remove(&entry);
        return Err(e);
    }
    // The starter is running this very code, so it is alive: its half of the link holds.
    if let Some(starter) = opts.link.and_then(|p| node.entry(p)) {
        starter.add_link(pid);
    }
    let (started_tx, started_rx) = oneshot::channel();
    let mut ctx = ProcessCtx::new(
        pid,
        node.clone(),
        module.name().into(),
        mailbox,
        entry.memory.clone(),
        &opts.limits,
    );
    // Databases are granted to any module (the `sql` interface is not WASI's).
    let databases = match &grants {
        Some(g) => Some(g.clone()).filter(|g| !g.databases.is_empty()),
        None => node.database_grants(module.name()),
    };
    ctx.sql = databases.map(|g| {
        Box::new(crate::sql::Databases::new(
            g,
            node.sql_turns.clone(),
            node.descriptors.clone(),
        ))
    });
    ctx.wasi = grants.map(|g| Box::new(crate::host::wasi::Wasi::new(g)));
    let guard = ExitGuard::new(node.clone(), entry.clone());
    let instance = node.spares.take(node, &module, ctx);
    let task = tokio::spawn(crate::runtime::NodeTask(crate::process::run(
        guard,
        module,
        instance,
        args,
        opts.hibernate_after,
        started_tx,
    )));
    entry.set_abort(task.abort_handle());
    let started = async {
        started_rx
            .await
            .unwrap_or(Err(StartError::Stopped(ExitReason::Killed)))
    };
    match opts.start_timeout {
        None => started.await,
        Some(t) => match tokio::time::timeout(t, started).await {
            Ok(r) => r,
            Err(_) => {
                // As OTP's `kill_flush`: the starter learns of the timeout from the error
                // alone, neither killed through the link nor sent a `DOWN`.
                if let Some(starter) = opts.link {
                    node.unlink(starter, pid);
                }
                if let Some((mref, _)) = opts.monitor {
                    entry.remove_monitor(mref);
                }
                entry.kill();
                // Wait until it is gone, so the name is free when the caller sees the error.
                let _ = node.watch(&entry).await;
                Err(StartError::Timeout)
            }
        },
    }
}

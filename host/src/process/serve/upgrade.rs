//! A process changing version: the new instance is built beside the old one, which is kept
//! until the upgrade commits (see `process/upgrade.rs` for the protocol).

use std::sync::Arc;

use wasmtime::Store;

use super::{Instance, Process, rehydrate};
use crate::callbacks::Callbacks;
use crate::engine::Module;
use crate::exit::ExitReason;
use crate::process::ctx::crash;
use crate::process::ctx::{ProcessCtx, new_store};
use crate::process::resources::InstanceResources;
use crate::process::upgrade::{Migration, Prepared, Refusal, UpgradeOrder};
use crate::term::Term;

/// What resumes the old version if the upgrade does not commit.
// One lives only while one process upgrades: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Kept {
    /// The old instance, its context lent to the new one meanwhile, and the resources it
    /// holds (WASI's files and streams, database connections): closed when the upgrade
    /// commits, given back if not.
    Awake {
        store: Store<ProcessCtx>,
        server: Callbacks,
        resources: InstanceResources,
    },
    /// A hibernating process's state bytes.
    Hibernating { state: Term },
}

/// Instantiate `to` in `store` and migrate `state`, exported by version `old_vsn`, into it.
/// Errors are one line: the refusal, or why the guest trapped.
async fn migrate(
    to: &Module,
    store: &mut Store<ProcessCtx>,
    old_vsn: &str,
    state: &Term,
    extra: &Term,
) -> Result<Callbacks, String> {
    let server = to
        .pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| crate::process::ctx::reason(store.data(), &e))?;
    match server
        .call_code_change(&mut *store, old_vsn, state, extra)
        .await
    {
        Ok(Ok(())) => Ok(server),
        Ok(Err(refused)) => Err(crate::guest_text::one_line(
            &format!("code_change refused: {refused}"),
            crate::limits::MAX_REASON,
        )),
        Err(trap) => Err(format!(
            "code_change crashed: {}",
            crate::process::ctx::reason(store.data(), &trap)
        )),
    }
}

/// [`migrate`] within `timeout`. The store outlives a migration cut short, so the context
/// in it can go back to the old version.
async fn migrate_within(
    to: &Module,
    store: &mut Store<ProcessCtx>,
    old_vsn: &str,
    state: &Term,
    extra: &Term,
    timeout: std::time::Duration,
) -> Result<Callbacks, String> {
    match tokio::time::timeout(timeout, migrate(to, store, old_vsn, state, extra)).await {
        Ok(migrated) => migrated,
        Err(_) => Err(format!(
            "timeout: code_change took longer than {} ms",
            timeout.as_millis()
        )),
    }
}

impl Process {
    /// The module whose version wrote the state: the one it runs, or the one a hibernating
    /// process's state still waits to be migrated from.
    fn writer(&self) -> &Arc<Module> {
        self.migration.as_ref().map_or(&self.module, |m| &m.from)
    }

    /// Carry out an [`UpgradeOrder`]. `Err` if the old instance trapped exporting its state:
    /// the process then exits with that reason, as any callback's trap ends it.
    pub(super) async fn upgrade(&mut self, order: Box<UpgradeOrder>) -> Result<(), ExitReason> {
        let UpgradeOrder {
            to,
            extra,
            timeout,
            eager,
            only_if_suspended,
            prepared,
            decision,
        } = *order;
        if prepared.is_closed() {
            // The upgrade gave up on this process before it got here.
            return Ok(());
        }
        if only_if_suspended && !self.suspended {
            let _ = prepared.send(Err(Refusal::NotSuspended));
            return Ok(());
        }
        let hibernating = matches!(self.instance, Instance::Hibernating { .. });
        if hibernating && !eager {
            let _ = prepared.send(Ok(Prepared::Deferred));
            if decision.await == Ok(true) {
                self.defer_migration(to, extra, timeout);
            }
            return Ok(());
        }
        let old_vsn = self.writer().vsn().to_owned();
        let (ctx, kept, state) = match self.lend_context().await {
            Ok(taken) => taken,
            Err(reason) => {
                let _ = prepared.send(Err(Refusal::Failed(format!(
                    "export_state crashed: {reason}"
                ))));
                return Err(reason);
            }
        };
        let saved = ctx.limits.save();
        let engine = ctx.node.engine.clone();
        let mut store = new_store(&engine, ctx);
        match migrate_within(&to, &mut store, &old_vsn, &state, &extra, timeout).await {
            Ok(server) => {
                let _ = prepared.send(Ok(Prepared::Migrated));
                if decision.await == Ok(true) {
                    drop(kept);
                    self.instance = Instance::Awake { store, server };
                    self.module = to.clone();
                    self.migration = None;
                    self.entry.set_module(to);
                    if hibernating {
                        return self.hibernate().await;
                    }
                    return Ok(());
                }
                self.take_back(store.into_data(), kept, saved);
            }
            Err(why) => {
                tracing::warn!(pid = self.entry.pid, module = to.name(), to = to.vsn(), %why, "upgrade failed");
                self.take_back(store.into_data(), kept, saved);
                let _ = prepared.send(Err(Refusal::Failed(why)));
            }
        }
        Ok(())
    }

    /// The process's context, to lend to the new version's store; what resumes the old
    /// version; and the state it exported.
    async fn lend_context(&mut self) -> Result<(ProcessCtx, Kept, Term), ExitReason> {
        match std::mem::replace(&mut self.instance, Instance::Gone) {
            Instance::Hibernating { ctx, state } => Ok((
                ctx,
                Kept::Hibernating {
                    state: state.clone(),
                },
                state,
            )),
            Instance::Awake { mut store, server } => {
                // An entry of its own, timed from now, as every callback is.
                store.data_mut().entering(1);
                let exported = server.call_export_state(&mut store).await;
                let state = match exported {
                    Ok(state) => state,
                    Err(e) => {
                        let reason = crash(store.data(), e);
                        self.instance = Instance::Awake { store, server };
                        return Err(reason);
                    }
                };
                let stand_in = store.data().stand_in();
                let mut ctx = std::mem::replace(store.data_mut(), stand_in);
                let resources = ctx.set_aside_instance_resources();
                Ok((
                    ctx,
                    Kept::Awake {
                        store,
                        server,
                        resources,
                    },
                    state,
                ))
            }
            Instance::Gone => unreachable!("process instance is always restored"),
        }
    }

    /// Resume the old version with the context the new one borrowed, its memory counted
    /// as before.
    fn take_back(&mut self, mut ctx: ProcessCtx, kept: Kept, saved: (usize, usize)) {
        ctx.forget_panic();
        ctx.limits.restore(saved);
        self.instance = match kept {
            Kept::Awake {
                mut store,
                server,
                resources,
            } => {
                // The new instance's resources go with it; the old one's come back.
                ctx.give_back_instance_resources(resources);
                *store.data_mut() = ctx;
                Instance::Awake { store, server }
            }
            Kept::Hibernating { state } => {
                // An eager migration's new instance is dropped: nothing it opened is kept
                // while the process sleeps.
                ctx.close_instance_resources();
                Instance::Hibernating { ctx, state }
            }
        };
    }

    /// A hibernating process runs `to` from now on; its state is migrated when it wakes.
    fn defer_migration(&mut self, to: Arc<Module>, extra: Term, timeout: std::time::Duration) {
        let from = match self.migration.take() {
            Some(m) => m.from,
            None => self.module.clone(),
        };
        // Back to the version that wrote the state (a downgrade before it woke): nothing to
        // migrate.
        if from.digest() != to.digest() {
            self.migration = Some(Box::new(Migration {
                from,
                extra,
                timeout,
            }));
        }
        self.module = to.clone();
        self.entry.set_module(to);
    }

    /// A new instance for a hibernating process that wakes, with its state: restored, or
    /// migrated by `code-change` if an older version wrote it. If that migration fails the
    /// process goes on with the version that wrote its state, and the log says why.
    pub(super) async fn wake(
        &mut self,
        ctx: ProcessCtx,
        state: Term,
    ) -> Result<(Store<ProcessCtx>, Callbacks), ExitReason> {
        let Some(migration) = self.migration.take() else {
            return rehydrate(&self.module, ctx, state).await;
        };
        let Migration {
            from,
            extra,
            timeout,
        } = *migration;
        let engine = ctx.node.engine.clone();
        let mut store = new_store(&engine, ctx);
        let to = self.module.clone();
        match migrate_within(&to, &mut store, from.vsn(), &state, &extra, timeout).await {
            Ok(server) => Ok((store, server)),
            Err(why) => {
                tracing::warn!(
                    pid = self.entry.pid,
                    module = to.name(),
                    to = to.vsn(),
                    stays = from.vsn(),
                    %why,
                    "migrating a hibernated state failed; the process stays on its version"
                );
                let mut ctx = store.into_data();
                ctx.forget_panic();
                self.module = from.clone();
                self.entry.set_module(from);
                rehydrate(&self.module, ctx, state).await
            }
        }
    }
}

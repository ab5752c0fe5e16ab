//! `otter:genserver/supervisor`: a guest starts children under a dynamic supervisor and
//! lists a supervisor's children. Each call waits on the supervisor task; only the guest's
//! fiber is suspended, not the host thread.

use crate::bindings::otter::genserver::supervisor::{
    Child as WitChild, ChildCounts as WitChildCounts, ChildRef as WitChildRef,
    ChildSpec as WitChildSpec, Host, Restart as WitRestart, Shutdown as WitShutdown,
    SupervisorError as WitSupervisorError,
};
use crate::bindings::otter::genserver::types::{Dest, Pid, Term};
use crate::error::StartError;
use crate::host::ProcessCtx;
use crate::host::process::dest;
use crate::supervisor::{
    ChildError, ChildFailure, ChildKind, ChildRef, ChildSpec, ChildStart, Restart, Shutdown,
    Supervisor, SupervisorError,
};

fn supervisor_error(e: ChildError) -> WitSupervisorError {
    match e {
        ChildError::NoProc => WitSupervisorError::Noproc,
        ChildError::WrongStrategy => WitSupervisorError::WrongStrategy,
        ChildError::NotFound => WitSupervisorError::NotFound,
        ChildError::AlreadyStarted(p)
        | ChildError::Start(SupervisorError::Child {
            reason: ChildFailure::Worker(StartError::AlreadyStarted(p)),
            ..
        }) => WitSupervisorError::AlreadyStarted(p),
        other => WitSupervisorError::Failed(other.to_string()),
    }
}

/// A child spec as the guest reads it.
fn child_spec(spec: ChildSpec) -> WitChildSpec {
    let (module, args, name) = match spec.start {
        ChildStart::Worker {
            module, args, name, ..
        } => (Some(module), Some(args), name),
        ChildStart::Supervisor(_) => (None, None, None),
    };
    WitChildSpec {
        id: spec.id,
        module,
        args,
        restart: match spec.restart {
            Restart::Permanent => WitRestart::Permanent,
            Restart::Transient => WitRestart::Transient,
            Restart::Temporary => WitRestart::Temporary,
        },
        shutdown: match spec.shutdown {
            Shutdown::BrutalKill => WitShutdown::BrutalKill,
            Shutdown::Timeout(d) => {
                WitShutdown::Timeout(u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
            }
            Shutdown::Infinity => WitShutdown::Infinity,
        },
        name,
    }
}

impl ProcessCtx {
    fn supervisor(&self, d: Dest) -> Result<Supervisor, WitSupervisorError> {
        self.node
            .supervisor(&dest(d))
            .ok_or(WitSupervisorError::Noproc)
    }
}

impl Host for ProcessCtx {
    async fn start_child(
        &mut self,
        supervisor: Dest,
        args: Term,
    ) -> Result<Option<Pid>, WitSupervisorError> {
        self.supervisor(supervisor)?
            .start_child_with(args)
            .await
            .map_err(supervisor_error)
    }

    async fn terminate_child(
        &mut self,
        supervisor: Dest,
        child: Pid,
    ) -> Result<(), WitSupervisorError> {
        self.supervisor(supervisor)?
            .terminate_child_pid(child)
            .await
            .map_err(supervisor_error)
    }

    async fn which_children(
        &mut self,
        supervisor: Dest,
    ) -> Result<Vec<WitChild>, WitSupervisorError> {
        let rows = self
            .supervisor(supervisor)?
            .which_children()
            .await
            .map_err(supervisor_error)?;
        Ok(rows
            .into_iter()
            .map(|c| WitChild {
                id: c.id,
                pid: c.pid,
                supervisor: c.kind == ChildKind::Supervisor,
                module: c.module,
                restarts: c.restarts,
            })
            .collect())
    }

    async fn count_children(
        &mut self,
        supervisor: Dest,
    ) -> Result<WitChildCounts, WitSupervisorError> {
        let c = self
            .supervisor(supervisor)?
            .count_children()
            .await
            .map_err(supervisor_error)?;
        let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        Ok(WitChildCounts {
            specs: n(c.specs),
            active: n(c.active),
            supervisors: n(c.supervisors),
            workers: n(c.workers),
        })
    }

    async fn get_childspec(
        &mut self,
        supervisor: Dest,
        child: WitChildRef,
    ) -> Result<WitChildSpec, WitSupervisorError> {
        let child = match child {
            WitChildRef::Id(id) => ChildRef::Id(id),
            WitChildRef::Pid(pid) => ChildRef::Pid(pid),
        };
        self.supervisor(supervisor)?
            .get_childspec(child)
            .await
            .map(child_spec)
            .map_err(supervisor_error)
    }
}

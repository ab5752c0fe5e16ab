//! `otter:genserver/supervisor`: a guest starts children under a dynamic supervisor and
//! lists a supervisor's children. Each call waits on the supervisor task; only the guest's
//! fiber is suspended, not the host thread.

use crate::bindings::otter::genserver::supervisor::{
    Child as WitChild, ChildCounts as WitChildCounts, Host, SupervisorError as WitSupervisorError,
};
use crate::bindings::otter::genserver::types::{Dest, Pid, Term};
use crate::error::StartError;
use crate::host::ProcessCtx;
use crate::host::process::dest;
use crate::supervisor::{ChildError, ChildFailure, ChildKind, Supervisor, SupervisorError};

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
}

//! The node's supervisors: starting one, finding one by pid, name or `via` key, and stopping
//! one with its subtree. The supervisors themselves are in `supervisor/`.

use std::sync::atomic::Ordering;

use super::{Node, NodeInner};
use crate::Pid;
use crate::dest::Dest;
use crate::supervisor::{ChildError, Supervisor, SupervisorError, SupervisorSpec, start};

impl Node {
    /// Start a supervisor and its children, in order; returns once all have started.
    ///
    /// # Errors
    /// [`SupervisorError::Spec`] naming the invalid field; [`SupervisorError::AlreadyStarted`]
    /// if its name is taken; [`SupervisorError::Child`] naming the child that failed to start
    /// (the others were stopped).
    pub async fn start_supervisor(
        &self,
        spec: SupervisorSpec,
    ) -> Result<Supervisor, SupervisorError> {
        spec.validate()?;
        start(self.clone(), spec, None).await
    }

    /// The running supervisor `dest` names: by its pid, its name, or a `via` key. Any
    /// supervisor of the node is found, nested ones included.
    pub fn supervisor(&self, dest: &Dest) -> Option<Supervisor> {
        self.inner.supervisor(dest)
    }

    /// Stop the supervisor `dest` names with its whole subtree: its children in reverse
    /// start order, each as its [`Shutdown`](crate::Shutdown) says, then it exits
    /// `shutdown`. Returns once it has exited.
    ///
    /// A nested supervisor is stopped by its parent, as OTP's
    /// `supervisor:terminate_child(Parent, Id)`: its spec is kept (removed if temporary) and
    /// it is not restarted until [`Supervisor::restart_child`]. A root supervisor is
    /// stopped as [`Supervisor::stop`] does.
    ///
    /// ```no_run
    /// # async fn demo(node: otter::Node) -> Result<(), otter::ChildError> {
    /// node.stop_supervisor(&"WorkerSupervisor".into()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ChildError::NoProc`] if no running supervisor has this pid or name.
    ///
    /// # Cancel safety
    /// Dropping the future may leave the supervisor running, or stopping.
    pub async fn stop_supervisor(&self, dest: &Dest) -> Result<(), ChildError> {
        let sup = self.supervisor(dest).ok_or(ChildError::NoProc)?;
        let parent = sup.parent().and_then(|p| self.supervisor(&Dest::Pid(p)));
        let id = match &parent {
            Some(parent) => parent
                .which_children()
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.pid == Some(sup.pid()))
                .map(|c| c.id),
            None => None,
        };
        match (parent, id) {
            (Some(parent), Some(id)) => match parent.terminate_child(&id).await {
                Err(ChildError::WrongStrategy) => parent.terminate_child_pid(sup.pid()).await,
                // Its parent has exited, or let it go, meanwhile: it is exiting already.
                Err(ChildError::NoProc | ChildError::NotFound) => {
                    sup.wait_exit().await;
                    Ok(())
                }
                r => r,
            },
            // A root, or a child its parent no longer lists: one that is exiting.
            _ => {
                sup.stop().await;
                Ok(())
            }
        }
    }
}

impl NodeInner {
    /// See [`Node::supervisor`].
    pub(crate) fn supervisor(&self, dest: &Dest) -> Option<Supervisor> {
        let pid = self.pid_of(dest).ok().flatten()?;
        self.supervisors.get(&pid).map(|s| s.clone())
    }

    /// A supervisor starts: reachable by its pid, and counted toward `max_processes`.
    pub(crate) fn insert_supervisor(&self, pid: Pid, supervisor: Supervisor) {
        if self.supervisors.insert(pid, supervisor).is_none() {
            self.population.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A supervisor exits.
    pub(crate) fn remove_supervisor(&self, pid: Pid) {
        if self.supervisors.remove(&pid).is_some() {
            self.population.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

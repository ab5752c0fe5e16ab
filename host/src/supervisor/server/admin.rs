//! The supervisor task's answers to the admin commands: which/count children, start,
//! terminate, restart and delete children (OTP's child administration).

use super::*;

impl State {
    fn find(&self, id: &str) -> Result<usize, ChildError> {
        if self.dynamic() {
            return Err(ChildError::WrongStrategy);
        }
        self.children
            .iter()
            .position(|c| c.spec.id == id)
            .ok_or(ChildError::NotFound)
    }

    pub(super) async fn admin(&mut self, cmd: Command) {
        match cmd {
            Command::Stop => unreachable!("handled by the loop"),
            Command::Which(tx) => {
                let mut rows = Vec::with_capacity(self.children.len());
                for c in &self.children {
                    let children = match &c.running {
                        Some(Running::Supervisor(s)) => {
                            s.which_children().await.unwrap_or_default()
                        }
                        _ => Vec::new(),
                    };
                    rows.push(ChildInfo {
                        id: c.spec.id.clone(),
                        pid: c.pid(),
                        kind: kind(&c.spec),
                        module: c.spec.module().to_owned(),
                        restarts: c.restarts,
                        children,
                    });
                }
                let _ = tx.send(rows);
            }
            Command::Count(tx) => {
                // A dynamic supervisor has one spec, its template, however many children (OTP).
                let specs = if self.dynamic() {
                    1
                } else {
                    self.children.len()
                };
                let mut counts = ChildCounts {
                    specs,
                    ..ChildCounts::default()
                };
                for c in &self.children {
                    counts.active += usize::from(c.running.is_some());
                    match kind(&c.spec) {
                        ChildKind::Worker => counts.workers += 1,
                        ChildKind::Supervisor => counts.supervisors += 1,
                    }
                }
                let _ = tx.send(counts);
            }
            Command::StartChild(spec, tx) => {
                let _ = tx.send(self.add_child(spec).await);
            }
            Command::StartDynamic(extra, tx) => {
                let _ = tx.send(self.add_dynamic(extra).await);
            }
            Command::Terminate(id, tx) => {
                let r = match self.find(&id) {
                    Ok(i) => {
                        if let Some(running) = self.children[i].running.take() {
                            terminate(
                                &self.node,
                                self.pid,
                                running,
                                self.children[i].spec.shutdown,
                            )
                            .await;
                        }
                        if self.children[i].spec.restart == Restart::Temporary {
                            self.children.remove(i);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                let _ = tx.send(r);
            }
            Command::TerminatePid(pid, tx) => {
                // A static supervisor knows its children by id: OTP 25 answers `not_found` for
                // any pid, its children's included.
                let r = if !self.dynamic() {
                    Err(ChildError::NotFound)
                } else if let Some(i) = self.children.iter().position(|c| c.pid() == Some(pid)) {
                    let child = self.children.remove(i);
                    if let Some(running) = child.running {
                        terminate(&self.node, self.pid, running, child.spec.shutdown).await;
                    }
                    Ok(())
                } else {
                    Err(ChildError::NotFound)
                };
                let _ = tx.send(r);
            }
            Command::Restart(id, tx) => {
                let r = match self.find(&id) {
                    Ok(i) if self.children[i].running.is_some() => Err(ChildError::Running),
                    Ok(i) => match self
                        .start_child(&self.children[i].spec, self.children[i].restarts)
                        .await
                    {
                        Ok(r) => {
                            let pid = r.as_ref().map(Running::pid);
                            self.children[i].running = r;
                            Ok(pid)
                        }
                        Err(reason) => Err(ChildError::Start(SupervisorError::Child {
                            id: id.clone(),
                            reason,
                        })),
                    },
                    Err(e) => Err(e),
                };
                let _ = tx.send(r);
            }
            Command::GetChildspec(child, tx) => {
                // As OTP 25: a dynamic supervisor answers its template for the template's id
                // or any running child's pid; a static one finds children by id only.
                let spec = match (&self.template, child) {
                    (Some(template), ChildRef::Id(id)) => {
                        (template.id == id).then(|| template.clone())
                    }
                    (Some(template), ChildRef::Pid(pid)) => self
                        .children
                        .iter()
                        .any(|c| c.pid() == Some(pid))
                        .then(|| template.clone()),
                    (None, ChildRef::Id(id)) => self
                        .children
                        .iter()
                        .find(|c| c.spec.id == id)
                        .map(|c| c.spec.clone()),
                    (None, ChildRef::Pid(_)) => None,
                };
                let _ = tx.send(spec.ok_or(ChildError::NotFound));
            }
            Command::ReplaceSpec(spec, tx) => {
                let _ = tx.send(self.replace_spec(spec));
            }
            Command::Delete(id, tx) => {
                let r = match self.find(&id) {
                    Ok(i) if self.children[i].running.is_some() => Err(ChildError::Running),
                    Ok(i) => {
                        self.children.remove(i);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                let _ = tx.send(r);
            }
        }
    }

    /// A new spec for a child (or a dynamic supervisor's template) with the same id and
    /// kind, as OTP's supervisor `code_change` installs: a running child keeps its pid and
    /// restart count, and its next start uses the new spec.
    fn replace_spec(&mut self, spec: ChildSpec) -> Result<(), ChildError> {
        SupervisorSpec::new(self.strategy)
            .child(spec.clone())
            .validate()
            .map_err(|e| ChildError::Start(e.into()))?;
        let same_kind = |old: &ChildSpec| {
            matches!(
                (&old.start, &spec.start),
                (ChildStart::Worker { .. }, ChildStart::Worker { .. })
                    | (ChildStart::Supervisor(_), ChildStart::Supervisor(_))
            )
        };
        let old = match &mut self.template {
            Some(template) if template.id == spec.id => template,
            Some(_) => return Err(ChildError::NotFound),
            None => {
                let i = self.find(&spec.id)?;
                &mut self.children[i].spec
            }
        };
        if !same_kind(old) {
            return Err(ChildError::Badarg(format!(
                "child {:?}: a worker and a supervisor do not replace each other",
                spec.id
            )));
        }
        *old = spec;
        Ok(())
    }

    async fn add_child(&mut self, spec: ChildSpec) -> Result<Option<Pid>, ChildError> {
        if self.dynamic() {
            return Err(ChildError::WrongStrategy);
        }
        spec.validate_at("")
            .map_err(|e| ChildError::Start(SupervisorError::Spec(e)))?;
        if let Some(c) = self.children.iter().find(|c| c.spec.id == spec.id) {
            return Err(match c.pid() {
                Some(pid) => ChildError::AlreadyStarted(pid),
                None => ChildError::AlreadyPresent,
            });
        }
        match self.start_child(&spec, 0).await {
            Ok(running) => {
                let pid = running.as_ref().map(Running::pid);
                if running.is_some() || spec.restart != Restart::Temporary {
                    self.children.push(Child {
                        spec,
                        running,
                        restarts: 0,
                    });
                }
                Ok(pid)
            }
            Err(reason) => Err(ChildError::Start(SupervisorError::Child {
                id: spec.id,
                reason,
            })),
        }
    }

    async fn add_dynamic(&mut self, extra: Term) -> Result<Option<Pid>, ChildError> {
        let Some(template) = &self.template else {
            return Err(ChildError::WrongStrategy);
        };
        let mut spec = template.clone();
        if let ChildStart::Worker { args, .. } = &mut spec.start {
            *args = merge_args(args, &extra).map_err(|e| ChildError::Badarg(e.0))?;
        }
        match self.start_child(&spec, 0).await {
            Ok(Some(running)) => {
                let pid = running.pid();
                self.children.push(Child {
                    spec,
                    running: Some(running),
                    restarts: 0,
                });
                Ok(Some(pid))
            }
            Ok(None) => Ok(None),
            Err(reason) => Err(ChildError::Start(SupervisorError::Child {
                id: spec.id,
                reason,
            })),
        }
    }
}

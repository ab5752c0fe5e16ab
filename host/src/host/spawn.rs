//! `otter:genserver/spawn`: a process starts others, as OTP's `gen_server:start`,
//! `start_link` and `start_monitor`. Only the starter's fiber waits for the new process's
//! `init`; the host thread goes on.
//!
//! What the guest hands over is bounded before anything starts: the module's name and the
//! process's name at 255 bytes, the args and a `via` key at the node's maximum message size,
//! and the args are walked (without recursion) to refuse a term that is malformed or nested
//! deeper than [`MAX_TERM_DEPTH`](crate::MAX_TERM_DEPTH).

use std::time::Duration;

use crate::bindings::otter::genserver::spawn::{
    Host, Overflow as WitOverflow, StartError as WitStartError, StartOptions,
};
use crate::bindings::otter::genserver::types::{MonitorRef, Pid, Term};
use crate::error::StartError;
use crate::exit::WitReason;
use crate::host::ProcessCtx;
use crate::host::registry::registry_error;
use crate::limits::MAX_MONITORS;
use crate::node::SpawnOptions;
use crate::process_limits::{MailboxBound, Overflow, ProcessLimits};

/// How a started process is tied to its starter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bond {
    None,
    Link,
    Monitor,
}

fn start_error(e: StartError) -> WitStartError {
    match e {
        StartError::AlreadyStarted(p) => WitStartError::AlreadyStarted(p),
        StartError::Stopped(r) => WitStartError::Stopped(r.to_wit()),
        StartError::Timeout => WitStartError::Timeout,
        StartError::UnknownModule(m) => WitStartError::UnknownModule(m),
        StartError::Badarg(m) => WitStartError::Badarg(m),
        StartError::Instantiate(m) => WitStartError::Instantiate(m),
        StartError::Registry(e) => WitStartError::Registry(registry_error(e)),
        StartError::SystemLimit => WitStartError::SystemLimit,
        StartError::Grants(e) => WitStartError::Badarg(e.to_string()),
        // Not a failure: the callers below answer it with `none` before getting here.
        StartError::Ignore => WitStartError::Stopped(crate::ExitReason::Normal.to_wit()),
    }
}

impl ProcessCtx {
    /// Check what the guest handed over, then start the process tied to this one as `bond`
    /// says. `Ok(None)`: its `init` returned `ignore`.
    async fn start_bound(
        &mut self,
        module: String,
        args: Term,
        options: StartOptions,
        bond: Bond,
    ) -> Result<Option<(Pid, MonitorRef)>, WitStartError> {
        // Links and monitors belong to processes; the throwaway instance that answers `vsn`
        // at load time is none.
        if self.node.entry(self.pid).is_none() {
            return Err(WitStartError::Badarg(
                "start called outside a process".to_owned(),
            ));
        }
        crate::limits::check_name(&module)
            .map_err(|e| WitStartError::Badarg(format!("module {e}")))?;
        self.node
            .check_size("args", &args)
            .map_err(WitStartError::Badarg)?;
        crate::term::check_well_formed(&args)
            .map_err(|e| WitStartError::Badarg(format!("args: {}", e.0)))?;
        let mut opts = SpawnOptions::default();
        if let Some(name) = options.name {
            opts = opts.name(name);
        }
        if let Some((registry, key)) = options.via {
            crate::limits::check_name(&registry)
                .map_err(|e| WitStartError::Badarg(format!("registry {e}")))?;
            self.node
                .check_size("key", &key)
                .map_err(WitStartError::Badarg)?;
            opts = opts.via(registry, key);
        }
        if let Some(ms) = options.start_timeout_ms {
            opts = opts.start_timeout(Duration::from_millis(ms.into()));
        }
        if let Some(ms) = options.hibernate_after_ms {
            opts = opts.hibernate_after(Duration::from_millis(ms.into()));
        }
        if let Some(m) = options.mailbox {
            if m.bound == 0 {
                return Err(WitStartError::Badarg(
                    "mailbox bound must be positive".into(),
                ));
            }
            let policy = match m.policy {
                WitOverflow::Reject => Overflow::Reject,
                WitOverflow::DropOldest => Overflow::DropOldest,
                WitOverflow::DropNewest => Overflow::DropNewest,
            };
            let bound = usize::try_from(m.bound).unwrap_or(usize::MAX);
            opts = opts.limits(ProcessLimits::default().mailbox(MailboxBound::new(bound, policy)));
        }
        let mref = match bond {
            Bond::None => 0,
            Bond::Link => {
                opts.link = Some(self.pid);
                0
            }
            Bond::Monitor => {
                // Monitors live on the host, as those `monitor` makes.
                if self.monitors.len() >= MAX_MONITORS {
                    return Err(WitStartError::SystemLimit);
                }
                let mref = self.node.next_ref();
                opts.monitor = Some((mref, self.pid));
                mref
            }
        };
        let Some(module) = self.node.module(&module) else {
            return Err(WitStartError::UnknownModule(module));
        };
        // Started from a task of its own: creating the new process's task future takes a
        // lot of stack in a debug build, which a fiber should not have to hold, and a start
        // timeout is still enforced if this process is killed while it waits.
        let node = self.node.clone();
        // Boxed at once: tokio's spawn moves its future through several frames.
        let start = Box::pin(async move { crate::node::spawn(&node, module, args, opts).await });
        let started = tokio::spawn(start)
            .await
            .unwrap_or(Err(StartError::Stopped(crate::ExitReason::Killed)));
        match started {
            Ok(pid) => {
                if bond == Bond::Monitor {
                    self.monitors.insert(mref, pid);
                }
                Ok(Some((pid, mref)))
            }
            // A failed start's `down` is already queued; not being in `monitors`, it is
            // dropped unseen, as OTP's `start_monitor` flushes it.
            Err(StartError::Ignore) => Ok(None),
            Err(e) => Err(start_error(e)),
        }
    }
}

impl Host for ProcessCtx {
    async fn start(
        &mut self,
        module: String,
        args: Term,
        options: StartOptions,
    ) -> Result<Option<Pid>, WitStartError> {
        let started = self.start_bound(module, args, options, Bond::None).await?;
        Ok(started.map(|(pid, _)| pid))
    }

    async fn start_link(
        &mut self,
        module: String,
        args: Term,
        options: StartOptions,
    ) -> Result<Option<Pid>, WitStartError> {
        let started = self.start_bound(module, args, options, Bond::Link).await?;
        Ok(started.map(|(pid, _)| pid))
    }

    async fn start_monitor(
        &mut self,
        module: String,
        args: Term,
        options: StartOptions,
    ) -> Result<Option<(Pid, MonitorRef)>, WitStartError> {
        self.start_bound(module, args, options, Bond::Monitor).await
    }
}

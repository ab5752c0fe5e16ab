//! Hot code upgrade: a running module's processes change to a new version of its code
//! without losing their state, pid, names, queued messages, pending callers, timers,
//! monitors or links (Erlang's `release_handler` for one module, and `sys:change_code`).
//!
//! [`Node::upgrade`] compiles and checks the new code before touching anything, then asks
//! every process of the module to change between two callbacks: each exports its state,
//! an instance of the new version takes it through `code-change`, and the process waits,
//! suspended, keeping its old instance. When every process has answered, the upgrade
//! commits (each runs its new instance; new spawns and supervisor restarts use the new
//! version) or, under [`UpgradePolicy::AllOrNothing`], if any failed, every process resumes
//! its old instance with its state as it was. A downgrade is the same operation with the
//! older code.
//!
//! Two upgrades of one module at once: the second is refused ([`UpgradeError::InProgress`])
//! rather than queued, so that an operator never sees an upgrade apply long after asking.

mod error;
mod slot;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use error::UpgradeError;
pub(crate) use slot::ReloadSlot;

use crate::Pid;
use crate::dest::Dest;
use crate::engine::Module;
use crate::entry::ProcessEntry;
use crate::mailbox::Signal;
use crate::node::{Node, NodeInner};
use crate::process::{Prepared, Refusal, UpgradeOrder};
use crate::term::Term;

/// How long each process's `code-change` may take, by default.
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::file::MAX_MODULE_BYTES;

/// What happens to the processes that migrated when another one fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradePolicy {
    /// They go back to the old version too: the module runs one version (the default).
    #[default]
    AllOrNothing,
    /// They keep the new version; the failed ones stay on the old.
    PerProcess,
}

/// How to upgrade.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// `code-change`'s `extra` argument (CBOR). Default `null`.
    pub extra: Term,
    /// Default [`UpgradePolicy::AllOrNothing`].
    pub policy: UpgradePolicy,
    /// Upgrade even if the new code reports the running `vsn` (a hot fix whose author did
    /// not bump it). Default `false`.
    pub force: bool,
    /// Migrate hibernating processes now rather than when each wakes. Default `false`.
    pub eager: bool,
    /// How long each process's `code-change` may take; a process must also reach a message
    /// boundary within twice this time. Default [`DEFAULT_UPGRADE_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        UpgradeOptions {
            extra: crate::term::encode(&()).expect("null encodes"),
            policy: UpgradePolicy::default(),
            force: false,
            eager: false,
            timeout: DEFAULT_UPGRADE_TIMEOUT,
        }
    }
}

/// A process that stays on its old version, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFailure {
    /// The process.
    pub pid: Pid,
    /// One line: the refusal, the trap, the timeout.
    pub reason: String,
}

/// What an upgrade did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeReport {
    /// The module.
    pub module: String,
    /// The version it ran.
    pub from_vsn: String,
    /// The version it was upgraded to.
    pub to_vsn: String,
    /// Whether the new version is now the module's (new spawns and restarts use it).
    pub committed: bool,
    /// Processes now running the new version.
    pub upgraded: Vec<Pid>,
    /// Hibernating processes that migrate when they wake.
    pub deferred: Vec<Pid>,
    /// Processes that had migrated and went back, because another failed.
    pub rolled_back: Vec<Pid>,
    /// Processes that stay on the old version, with the reason.
    pub failed: Vec<ProcessFailure>,
}

/// A loaded module version and how many processes run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// The name it was loaded under.
    pub name: String,
    /// Its version.
    pub vsn: String,
    /// The file it came from.
    pub path: String,
    /// Whether new processes of the name start from it (else only old processes run it).
    pub current: bool,
    /// How many live processes run it.
    pub processes: usize,
}

/// One process's part in an upgrade.
struct Asked {
    entry: Arc<ProcessEntry>,
    prepared: oneshot::Receiver<Result<Prepared, Refusal>>,
    decision: oneshot::Sender<bool>,
}

/// What one round of orders came back with.
#[derive(Default)]
struct Answers {
    ready: Vec<(Arc<ProcessEntry>, Prepared, oneshot::Sender<bool>)>,
    failed: Vec<ProcessFailure>,
    not_suspended: Vec<Pid>,
}

/// Send `to` to each process in `entries`, and wait for them to answer.
///
/// A process still inside a callback after the timeout may be blocked calling one that
/// already waits for the decision (its call queued behind the upgrade order), which would
/// wait for it in turn. So the ready ones are then let go back to their old instance to run
/// on (answering such a call), the late ones get another timeout to answer, and the ones
/// let go are asked again, with one more timeout.
async fn ask(
    entries: &[Arc<ProcessEntry>],
    to: &Arc<Module>,
    opts: &UpgradeOptions,
    only_if_suspended: bool,
) -> Answers {
    let mut answers = Answers::default();
    let asked = order(entries, to, opts, only_if_suspended);
    let late = collect(asked, opts.timeout, &mut answers).await;
    if late.is_empty() {
        return answers;
    }
    let released: Vec<Arc<ProcessEntry>> = std::mem::take(&mut answers.ready)
        .into_iter()
        .map(|(entry, _, decision)| {
            let _ = decision.send(false);
            entry
        })
        .collect();
    let late = collect(late, opts.timeout, &mut answers).await;
    let mut late_pids: Vec<Pid> = late.iter().map(|a| a.entry.pid).collect();
    if !released.is_empty() {
        let again = order(&released, to, opts, only_if_suspended);
        let late = collect(again, opts.timeout, &mut answers).await;
        late_pids.extend(late.iter().map(|a| a.entry.pid));
    }
    answers
        .failed
        .extend(late_pids.into_iter().map(|pid| ProcessFailure {
            pid,
            reason: format!(
                "timeout: still inside a callback after {} ms",
                opts.timeout.saturating_mul(2).as_millis()
            ),
        }));
    answers
}

/// Send each process in `entries` an order to change to `to`.
fn order(
    entries: &[Arc<ProcessEntry>],
    to: &Arc<Module>,
    opts: &UpgradeOptions,
    only_if_suspended: bool,
) -> Vec<Asked> {
    let mut asked = Vec::with_capacity(entries.len());
    for entry in entries {
        let (prepared_tx, prepared) = oneshot::channel();
        let (decision, decision_rx) = oneshot::channel();
        let order = UpgradeOrder {
            to: to.clone(),
            extra: opts.extra.clone(),
            timeout: opts.timeout,
            eager: opts.eager,
            only_if_suspended,
            prepared: prepared_tx,
            decision: decision_rx,
        };
        // A process that exited is no longer the module's: nothing to upgrade.
        if entry
            .mailbox
            .signal(Signal::Upgrade(Box::new(order)))
            .is_ok()
        {
            asked.push(Asked {
                entry: entry.clone(),
                prepared,
                decision,
            });
        }
    }
    asked
}

/// Record the answers that come within `timeout` into `answers`; return the processes
/// that did not answer yet.
async fn collect(asked: Vec<Asked>, timeout: Duration, answers: &mut Answers) -> Vec<Asked> {
    // None: too far to count (`Duration::MAX`), that is, no limit.
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let mut late = Vec::new();
    for mut a in asked {
        let answer = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, &mut a.prepared).await,
            None => Ok((&mut a.prepared).await),
        };
        match answer {
            Ok(Ok(Ok(prepared))) => answers.ready.push((a.entry, prepared, a.decision)),
            Ok(Ok(Err(Refusal::NotSuspended))) => answers.not_suspended.push(a.entry.pid),
            Ok(Ok(Err(Refusal::Failed(reason)))) => answers.failed.push(ProcessFailure {
                pid: a.entry.pid,
                reason,
            }),
            // It exited first: it is not the module's any more.
            Ok(Err(_)) => {}
            Err(_) => late.push(a),
        }
    }
    late
}

impl Node {
    /// Upgrade (or downgrade) the module loaded as `module` to the code in the file at
    /// `path`, migrating every live process's state with the new code's `code-change`.
    ///
    /// ```no_run
    /// # async fn demo(node: otter::Node) -> Result<(), otter::UpgradeError> {
    /// let report = node.upgrade("kv", "kv_v2.wasm", Default::default()).await?;
    /// println!("{} processes now run vsn {}", report.upgraded.len(), report.to_vsn);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Before anything changes: [`UpgradeError::UnknownModule`], [`UpgradeError::Io`],
    /// [`UpgradeError::TooLarge`], [`UpgradeError::Load`] (not a valid Otter server, with
    /// the reason), [`UpgradeError::Unchanged`] (the very bytes it runs),
    /// [`UpgradeError::SameVsn`] (other bytes, same `vsn`, without
    /// [`UpgradeOptions::force`]), [`UpgradeError::InProgress`], [`UpgradeError::Reloading`].
    /// After:
    /// [`UpgradeError::Failed`] if any process stays on the old version, with its pid and
    /// reason (see [`UpgradePolicy`] for the others).
    ///
    /// # Cancel safety
    /// Dropping the future before every process has answered resumes them all on the old
    /// version; after, the upgrade has committed.
    pub async fn upgrade(
        &self,
        module: &str,
        path: impl AsRef<Path>,
        opts: UpgradeOptions,
    ) -> Result<UpgradeReport, UpgradeError> {
        let path = path.as_ref();
        let io = |source| UpgradeError::Io {
            path: path.to_owned(),
            source,
        };
        // Only a regular file: a FIFO or a device (`/dev/zero`) would block or never end.
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_file() && meta.len() > MAX_MODULE_BYTES {
            return Err(UpgradeError::TooLarge {
                size: meta.len(),
                limit: MAX_MODULE_BYTES,
            });
        }
        let bytes = crate::file::read_regular_async(path, MAX_MODULE_BYTES)
            .await
            .map_err(io)?;
        self.upgrade_bytes(module, path, &bytes, opts).await
    }

    /// [`Node::upgrade`] from bytes; `path` is only used in messages.
    ///
    /// # Errors
    /// As [`Node::upgrade`].
    pub async fn upgrade_bytes(
        &self,
        module: &str,
        path: &Path,
        bytes: &[u8],
        opts: UpgradeOptions,
    ) -> Result<UpgradeReport, UpgradeError> {
        if bytes.len() as u64 > MAX_MODULE_BYTES {
            return Err(UpgradeError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_MODULE_BYTES,
            });
        }
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytes).into();
        let (from, _slot) = self.prepare(module, &digest, &opts, false)?;
        let to = Arc::new(crate::engine::compile(&self.inner, module, path, bytes).await?);
        self.upgrade_from(module, &from, to, &opts).await
    }

    /// Upgrade `module`'s processes to `to`, compiled already (a reload's plan compiled it,
    /// or it is the code that ran before, to undo one), as a step of the reload.
    pub(crate) async fn upgrade_compiled(
        &self,
        module: &str,
        to: Arc<Module>,
        opts: UpgradeOptions,
    ) -> Result<UpgradeReport, UpgradeError> {
        let (from, _slot) = self.prepare(module, to.digest(), &opts, true)?;
        self.upgrade_from(module, &from, to, &opts).await
    }

    /// What every upgrade checks first: the module runs, `extra` fits a message, the
    /// module's upgrade slot is free (taken until the guard drops; `in_reload` for a
    /// reload's own step), and the new code (by `digest`) is not the running code.
    fn prepare(
        &self,
        module: &str,
        digest: &[u8; 32],
        opts: &UpgradeOptions,
        in_reload: bool,
    ) -> Result<(Arc<Module>, slot::Slot<'_>), UpgradeError> {
        let node = &self.inner;
        node.check_size("extra", &opts.extra)
            .map_err(UpgradeError::Badarg)?;
        let slot = node.upgrade_slot(module, in_reload)?;
        // Read under the slot: an upgrade that held it until just now has changed it.
        let from = node
            .module(module)
            .ok_or_else(|| UpgradeError::UnknownModule(module.to_owned()))?;
        if digest == from.digest() {
            return Err(UpgradeError::Unchanged {
                module: module.to_owned(),
                vsn: from.vsn().to_owned(),
            });
        }
        Ok((from, slot))
    }

    /// Move `module`'s processes from `from` to `to`; the caller holds the upgrade slot.
    async fn upgrade_from(
        &self,
        module: &str,
        from: &Arc<Module>,
        to: Arc<Module>,
        opts: &UpgradeOptions,
    ) -> Result<UpgradeReport, UpgradeError> {
        let node = &self.inner;
        if to.vsn() == from.vsn() && !opts.force {
            return Err(UpgradeError::SameVsn {
                module: module.to_owned(),
                vsn: to.vsn().to_owned(),
            });
        }
        let mut report = UpgradeReport {
            module: module.to_owned(),
            from_vsn: from.vsn().to_owned(),
            to_vsn: to.vsn().to_owned(),
            ..UpgradeReport::default()
        };
        let entries = of_module(node, module, &to);
        tracing::info!(
            module,
            from = %report.from_vsn,
            to = %report.to_vsn,
            processes = entries.len(),
            "upgrade starting"
        );
        let answers = ask(&entries, &to, opts, false).await;
        let commit = answers.failed.is_empty() || opts.policy == UpgradePolicy::PerProcess;
        settle(&mut report, answers, &to, commit);
        if commit {
            node.install_module(to.clone());
            // Processes started from the old version while the others were migrating.
            let mut late = of_module(node, module, &to);
            late.retain(|e| entries.binary_search_by_key(&e.pid, |a| a.pid).is_err());
            if !late.is_empty() {
                let answers = ask(&late, &to, opts, false).await;
                settle(&mut report, answers, &to, true);
            }
        }
        report.committed = commit;
        tracing::info!(
            module,
            from = %report.from_vsn,
            to = %report.to_vsn,
            committed = commit,
            upgraded = report.upgraded.len(),
            deferred = report.deferred.len(),
            failed = report.failed.len(),
            "upgrade"
        );
        if report.failed.is_empty() {
            Ok(report)
        } else {
            Err(UpgradeError::Failed(Box::new(report)))
        }
    }

    /// Change one suspended process to the code its module's name now loads (OTP's
    /// `sys:change_code`): its state goes through that code's `code-change(old-vsn, state,
    /// extra)`. It stays suspended. A process that already runs that code migrates too
    /// (its `code-change` receives its own `vsn`).
    ///
    /// # Errors
    /// [`UpgradeError::NoProc`]; [`UpgradeError::NotSuspended`];
    /// [`UpgradeError::InProgress`] or [`UpgradeError::Reloading`] while its module is being
    /// upgraded or the node reloaded;
    /// [`UpgradeError::UnknownModule`] for a process of the embedding program;
    /// [`UpgradeError::Failed`] (the process keeps its code and state).
    pub async fn change_code(
        &self,
        dest: impl Into<Dest>,
        extra: Term,
        timeout: Duration,
    ) -> Result<UpgradeReport, UpgradeError> {
        let node = &self.inner;
        node.check_size("extra", &extra)
            .map_err(UpgradeError::Badarg)?;
        let entry = node.resolve(&dest.into()).ok_or(UpgradeError::NoProc)?;
        let running = entry
            .module()
            .ok_or_else(|| UpgradeError::UnknownModule(crate::entry::EMBEDDED_MODULE.into()))?;
        // Its module's upgrade slot, as an upgrade's: the code it changes to is read under
        // it, so an upgrade or reload of the module at the same time cannot have the process
        // taken forward and then back again.
        let _slot = node.upgrade_slot(running.name(), false)?;
        let to = node
            .module(running.name())
            .ok_or_else(|| UpgradeError::UnknownModule(running.name().to_owned()))?;
        let opts = UpgradeOptions {
            extra,
            timeout,
            eager: true,
            ..UpgradeOptions::default()
        };
        let mut report = UpgradeReport {
            module: running.name().to_owned(),
            from_vsn: running.vsn().to_owned(),
            to_vsn: to.vsn().to_owned(),
            ..UpgradeReport::default()
        };
        let answers = ask(std::slice::from_ref(&entry), &to, &opts, true).await;
        if !answers.not_suspended.is_empty() {
            return Err(UpgradeError::NotSuspended(entry.pid));
        }
        if answers.ready.is_empty() && answers.failed.is_empty() {
            return Err(UpgradeError::NoProc);
        }
        settle(&mut report, answers, &to, true);
        report.committed = report.failed.is_empty();
        if report.failed.is_empty() {
            Ok(report)
        } else {
            Err(UpgradeError::Failed(Box::new(report)))
        }
    }

    /// Every loaded module version: the current one of each name, and older ones that
    /// processes still run, with how many processes run each.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        let node = &self.inner;
        let mut versions: Vec<(Arc<Module>, bool, usize)> = node
            .loaded_modules()
            .into_iter()
            .map(|m| (m, true, 0))
            .collect();
        for entry in node.entries() {
            let Some(m) = entry.module() else { continue };
            match versions.iter_mut().find(|(v, ..)| Arc::ptr_eq(v, &m)) {
                Some((.., n)) => *n += 1,
                None => versions.push((m, false, 1)),
            }
        }
        let mut list: Vec<ModuleInfo> = versions
            .into_iter()
            .map(|(m, current, processes)| ModuleInfo {
                name: m.name().to_owned(),
                vsn: m.vsn().to_owned(),
                path: m.path().display().to_string(),
                current,
                processes,
            })
            .collect();
        list.sort_by(|a, b| (&a.name, !a.current, &a.vsn).cmp(&(&b.name, !b.current, &b.vsn)));
        list
    }
}

/// The live processes of `module` that do not run `to` yet.
fn of_module(node: &NodeInner, module: &str, to: &Arc<Module>) -> Vec<Arc<ProcessEntry>> {
    let mut entries: Vec<Arc<ProcessEntry>> = node
        .entries()
        .into_iter()
        .filter(|e| {
            e.module()
                .is_some_and(|m| m.name() == module && !Arc::ptr_eq(&m, to))
        })
        .collect();
    entries.sort_unstable_by_key(|e| e.pid);
    entries
}

/// Tell each ready process whether to commit, and record the outcome.
fn settle(report: &mut UpgradeReport, answers: Answers, to: &Arc<Module>, commit: bool) {
    for (entry, prepared, decision) in answers.ready {
        let pid = entry.pid;
        // Shown at once, before the process takes the decision: whatever is sent to it
        // from now on is handled by the new version.
        if commit {
            entry.set_module(to.clone());
        }
        // A process that exited meanwhile no longer waits for it.
        let _ = decision.send(commit);
        match (commit, prepared) {
            (true, Prepared::Migrated) => report.upgraded.push(pid),
            (true, Prepared::Deferred) => report.deferred.push(pid),
            (false, _) => report.rolled_back.push(pid),
        }
    }
    report.failed.extend(answers.failed);
}

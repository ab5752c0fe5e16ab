//! A process as the rest of the node sees it: its entry in the process table, who is told
//! when it exits, and what `ps` shows of it. Below both the node and the process task, which
//! share it.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::Pid;
use crate::engine::Module;
use crate::exit::ExitReason;
use crate::mailbox::MailboxSender;

/// How a process came to be, as its entry keeps it.
#[derive(Default)]
pub(crate) struct Start {
    /// How many times its supervisor had restarted its child spec.
    pub(crate) restarts: u32,
    /// Its supervisor.
    pub(crate) parent: Option<Pid>,
    /// Its supervisor's exit channel.
    pub(crate) exit_to: Option<ExitSender>,
    /// The process that started it with `start-link`.
    pub(crate) link: Option<Pid>,
    /// `(monitor ref, watcher)` of a `start-monitor`.
    pub(crate) monitor: Option<(u64, Pid)>,
}

/// What `ps` shows of a process (and what the control endpoint's `ps` answers with).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: Pid,
    /// Its registered name.
    pub name: Option<String>,
    /// The module it runs.
    pub module: String,
    /// The module's version.
    pub vsn: String,
    /// Whether it is hibernating (its instance dropped, only its state kept).
    pub hibernating: bool,
    /// Messages waiting in its mailbox.
    pub queue_len: usize,
    /// Its mailbox's bound, if it has one ([`crate::MailboxBound`]).
    #[serde(default)]
    pub mailbox_bound: Option<usize>,
    /// Messages its full mailbox refused ([`crate::Overflow::Reject`]).
    #[serde(default)]
    pub rejected: u64,
    /// Messages its full mailbox dropped ([`crate::Overflow::DropOldest`],
    /// [`crate::Overflow::DropNewest`]).
    #[serde(default)]
    pub dropped: u64,
    /// Bytes of linear memory (0 while hibernating).
    pub memory: usize,
    /// How many times its supervisor had restarted its child spec when it started (0 for a
    /// process no supervisor started).
    pub restarts: u32,
    /// Milliseconds since it started.
    pub uptime_ms: u64,
}

/// Who is told when a process exits.
pub(crate) enum Watcher {
    /// A process monitor: a `down` message goes to `watcher`.
    Monitor { mref: u64, watcher: Pid },
    /// Someone in Rust waiting for the exit (stop, wait_exit).
    Waiter(oneshot::Sender<ExitReason>),
    /// A supervisor: `(pid, reason)` goes down its exit channel.
    Channel(ExitSender),
}

/// Where a supervisor learns of its children's exits.
pub(crate) type ExitSender = tokio::sync::mpsc::UnboundedSender<(Pid, ExitReason)>;

/// A process's watchers through its exit.
enum Watchers {
    /// Running: they will be told.
    Live {
        /// Supervisors' exit channels and Rust waiters, in arrival order.
        others: Vec<Watcher>,
        /// Monitors, ref → watcher (in the order they were made, as refs grow): a map, so
        /// that a demonitor stays cheap however many processes watch this one (a list was
        /// scanned whole); made at the first, freed with the last.
        #[allow(clippy::box_collection)] // a pointer inline, not the map's 24 bytes
        monitors: Option<Box<BTreeMap<u64, Pid>>>,
    },
    /// Exited, and the exit sequence is telling the watchers it took (then links, then
    /// callers): someone in Rust waiting for the exit (`wait_exit`, `stop`), from before it
    /// or from meanwhile, waits here to be told after them, so that whoever returns from
    /// waiting for an exit finds its supervisor, monitors and links told. A monitor is
    /// refused as from an exited process (OTP: a monitor of an exiting process is `noproc`).
    Exiting(Vec<Watcher>),
    /// Everyone has been told: a new watcher learns of the exit at once.
    Exited,
}

/// A process as the rest of the node sees it.
pub(crate) struct ProcessEntry {
    pub(crate) pid: Pid,
    /// The module whose code it runs (changed by an upgrade); `None` for a process of the
    /// embedding program (`Node::embedded_process`).
    module: Mutex<Option<Arc<Module>>>,
    pub(crate) mailbox: MailboxSender,
    pub(crate) name: Mutex<Option<String>>,
    started: Instant,
    /// How many times its supervisor had restarted its child spec.
    restarts: u32,
    /// Its supervisor's pid: an exit signal from it is an order to terminate, not a message.
    parent: Option<Pid>,
    hibernating: AtomicBool,
    /// Bytes of linear memory, kept current by the store's limiter.
    pub(crate) memory: Arc<AtomicUsize>,
    exit: OnceLock<ExitReason>,
    /// Who is told of its exit, and how far the telling has gone.
    watchers: Mutex<Watchers>,
    /// Linked processes; `None` once the process has exited.
    links: Mutex<Option<HashSet<Pid>>>,
    abort: OnceLock<AbortHandle>,
    /// Set by a kill; read after `abort` is set, so a kill that comes before the task
    /// exists is not lost.
    kill_requested: AtomicBool,
}

/// What `ps` shows as the module of a process of the embedding program.
pub(crate) const EMBEDDED_MODULE: &str = "<embedded>";

impl ProcessEntry {
    /// A new process's entry, watched from the start by `start.exit_to` (a supervisor),
    /// `start.monitor` and linked to `start.link` (a starter).
    pub(crate) fn new(
        pid: Pid,
        module: Option<Arc<Module>>,
        mailbox: MailboxSender,
        start: Start,
    ) -> Self {
        let watchers = Watchers::Live {
            others: start.exit_to.map(Watcher::Channel).into_iter().collect(),
            monitors: start
                .monitor
                .map(|(mref, watcher)| Box::new(BTreeMap::from([(mref, watcher)]))),
        };
        ProcessEntry {
            pid,
            module: Mutex::new(module),
            mailbox,
            name: Mutex::new(None),
            started: Instant::now(),
            restarts: start.restarts,
            parent: start.parent,
            hibernating: AtomicBool::new(false),
            memory: Arc::new(AtomicUsize::new(0)),
            exit: OnceLock::new(),
            // Registered before the process runs, so that no exit of it, however early, goes
            // unobserved (OTP's `start_link` and `start_monitor` are atomic).
            watchers: Mutex::new(watchers),
            links: Mutex::new(Some(start.link.into_iter().collect())),
            abort: OnceLock::new(),
            kill_requested: AtomicBool::new(false),
        }
    }

    /// The module whose code it runs now.
    pub(crate) fn module(&self) -> Option<Arc<Module>> {
        self.module.lock().expect("module lock").clone()
    }

    /// After an upgrade: it runs `module`'s code now.
    pub(crate) fn set_module(&self, module: Arc<Module>) {
        *self.module.lock().expect("module lock") = Some(module);
    }

    /// The module's name, or [`EMBEDDED_MODULE`].
    pub(crate) fn module_name(&self) -> String {
        self.module()
            .map_or_else(|| EMBEDDED_MODULE.to_owned(), |m| m.name().to_owned())
    }

    /// Let a kill abort `task`; aborts it now if a kill came first.
    pub(crate) fn set_abort(&self, task: AbortHandle) {
        let _ = self.abort.set(task.clone());
        if self.kill_requested.load(Ordering::SeqCst) {
            task.abort();
        }
    }

    pub(crate) fn exit_reason(&self) -> ExitReason {
        self.exit.get().cloned().unwrap_or(ExitReason::Killed)
    }

    /// Add a watcher; gives it back once the process has exited, except a waiter that comes
    /// while the exit sequence runs: it is told at its end (see
    /// [`ProcessEntry::set_announced`]).
    pub(crate) fn add_watcher(&self, w: Watcher) -> Result<(), Watcher> {
        match &mut *self.watchers.lock().expect("watchers lock") {
            Watchers::Live { others, monitors } => {
                match w {
                    Watcher::Monitor { mref, watcher } => {
                        monitors
                            .get_or_insert_with(Box::default)
                            .insert(mref, watcher);
                    }
                    w => {
                        // A `stop` or `wait_exit` that gave up (a timeout, a dropped future)
                        // leaves its waiter behind: pruned as the list doubles, so that
                        // polling a long-lived process's exit with a timeout does not grow
                        // it without bound.
                        if others.len() == others.capacity() {
                            others.retain(|w| !matches!(w, Watcher::Waiter(tx) if tx.is_closed()));
                        }
                        others.push(w);
                    }
                }
                Ok(())
            }
            Watchers::Exiting(late) if matches!(w, Watcher::Waiter(_)) => {
                late.push(w);
                Ok(())
            }
            Watchers::Exiting(_) | Watchers::Exited => Err(w),
        }
    }

    /// Drop monitor `mref` (an exiting process holds none but those it is telling).
    pub(crate) fn remove_monitor(&self, mref: u64) {
        if let Watchers::Live { monitors, .. } = &mut *self.watchers.lock().expect("watchers lock")
            && let Some(held) = monitors
        {
            held.remove(&mref);
            if held.is_empty() {
                *monitors = None;
            }
        }
    }

    /// Add a link to `other`; false if this process has exited.
    pub(crate) fn add_link(&self, other: Pid) -> bool {
        match self.links.lock().expect("links lock").as_mut() {
            Some(set) => {
                set.insert(other);
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove_link(&self, other: Pid) {
        if let Some(set) = self.links.lock().expect("links lock").as_mut() {
            set.remove(&other);
            // A process that once held many links (a pool's owner) does not keep their room
            // for life: shrunk to twice what is left once it is a quarter full, which costs
            // O(1) per unlink, amortised.
            if set.len() < set.capacity() / 4 {
                set.shrink_to(set.len() * 2);
            }
        }
    }

    pub(crate) fn kill(&self) {
        self.kill_requested.store(true, Ordering::SeqCst);
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }

    pub(crate) fn is_hibernating(&self) -> bool {
        self.hibernating.load(Ordering::Relaxed)
    }

    /// The process dropped its instance (`true`) or has one again.
    pub(crate) fn set_hibernating(&self, hibernating: bool) {
        self.hibernating.store(hibernating, Ordering::Relaxed);
    }

    /// Its supervisor, whose exit signal is an order to terminate.
    pub(crate) fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// The process exited `reason`: from now on nobody may watch or link to it. Returns its
    /// supervisors and monitors (oldest first) and whom it was linked to, for the exit
    /// sequence to tell; those waiting in Rust are told at its end
    /// ([`ProcessEntry::set_announced`]).
    pub(crate) fn set_exited(&self, reason: ExitReason) -> (Vec<Watcher>, HashSet<Pid>) {
        let _ = self.exit.set(reason);
        let watchers = {
            let mut watchers = self.watchers.lock().expect("watchers lock");
            match std::mem::replace(&mut *watchers, Watchers::Exited) {
                Watchers::Live { others, monitors } => {
                    // Supervisors, then monitors; the waiters in Rust wait for the end of the
                    // sequence, with those that come during it, so that whoever returns from
                    // waiting finds everyone told.
                    let (waiters, mut told): (Vec<_>, Vec<_>) = others
                        .into_iter()
                        .partition(|w| matches!(w, Watcher::Waiter(_)));
                    told.extend(
                        monitors
                            .into_iter()
                            .flat_map(|m| m.into_iter())
                            .map(|(mref, watcher)| Watcher::Monitor { mref, watcher }),
                    );
                    *watchers = Watchers::Exiting(waiters);
                    told
                }
                // A process exits once; a second call leaves the first sequence be.
                other => {
                    *watchers = other;
                    Vec::new()
                }
            }
        };
        let links = self
            .links
            .lock()
            .expect("links lock")
            .take()
            .unwrap_or_default();
        (watchers, links)
    }

    /// The exit sequence has told everyone [`ProcessEntry::set_exited`] returned: returns
    /// the watchers that came meanwhile, to be told now; any later one is told at once.
    pub(crate) fn set_announced(&self) -> Vec<Watcher> {
        let mut watchers = self.watchers.lock().expect("watchers lock");
        match std::mem::replace(&mut *watchers, Watchers::Exited) {
            Watchers::Exiting(late) => late,
            live @ Watchers::Live { .. } => {
                *watchers = live;
                Vec::new()
            }
            Watchers::Exited => Vec::new(),
        }
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        let module = self.module();
        let overflowed = self.mailbox.overflowed().unwrap_or_default();
        ProcessInfo {
            pid: self.pid,
            name: self.name.lock().expect("name lock").clone(),
            module: module
                .as_ref()
                .map_or(EMBEDDED_MODULE, |m| m.name())
                .to_owned(),
            vsn: module.as_ref().map_or("", |m| m.vsn()).to_owned(),
            hibernating: self.is_hibernating(),
            queue_len: self.mailbox.queued(),
            mailbox_bound: self.mailbox.bound(),
            rejected: overflowed.rejected,
            dropped: overflowed.dropped,
            memory: self.memory.load(Ordering::Relaxed),
            restarts: self.restarts,
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::{mpsc, oneshot};

    use super::{ProcessEntry, Start, Watcher};
    use crate::Pid;
    use crate::exit::ExitReason;
    use crate::mailbox::Mailbox;

    /// A process's entry with a supervisor watching it, and the supervisor's end of its exit
    /// channel and the process's mailbox, to keep while it is used.
    fn supervised() -> (
        ProcessEntry,
        mpsc::UnboundedReceiver<(Pid, ExitReason)>,
        Mailbox,
    ) {
        let (supervisor, exits) = mpsc::unbounded_channel();
        let (mailbox, receiver) = crate::mailbox::mailbox(None);
        let start = Start {
            exit_to: Some(supervisor),
            ..Start::default()
        };
        (ProcessEntry::new(7, None, mailbox, start), exits, receiver)
    }

    #[test]
    fn links_removed_give_their_room_back() {
        let (entry, _supervisor, _mailbox) = supervised();
        for pid in 0..10_000 {
            assert!(entry.add_link(pid));
        }
        for pid in 1..10_000 {
            entry.remove_link(pid);
        }
        let links = entry.links.lock().unwrap();
        let set = links.as_ref().expect("live");
        assert!(set.contains(&0));
        assert!(
            set.capacity() <= 64,
            "room for {} links kept",
            set.capacity()
        );
    }

    #[test]
    fn waiters_that_gave_up_do_not_pile_up_in_a_live_process_s_entry() {
        let (entry, _supervisor, _mailbox) = supervised();
        let (still, waiting) = oneshot::channel();
        assert!(entry.add_watcher(Watcher::Waiter(still)).is_ok());
        for _ in 0..10_000 {
            let (tx, rx) = oneshot::channel();
            assert!(entry.add_watcher(Watcher::Waiter(tx)).is_ok());
            drop(rx);
        }
        let kept = match &*entry.watchers.lock().unwrap() {
            super::Watchers::Live { others, .. } => others.capacity(),
            _ => unreachable!("the process is live"),
        };
        assert!(kept <= 64, "room for {kept} watchers kept");
        let (told, _) = entry.set_exited(ExitReason::Normal);
        assert!(
            matches!(told.as_slice(), [Watcher::Channel(_)]),
            "the supervisor is told first"
        );
        let late = entry.set_announced();
        assert!(late.len() <= 64, "{} waiters told", late.len());
        assert!(
            late.iter()
                .any(|w| matches!(w, Watcher::Waiter(tx) if !tx.is_closed())),
            "the waiter still waiting is not told"
        );
        drop(waiting);
    }

    /// `wait_exit` on a process whose exit sequence has begun but not yet told its
    /// supervisor must not return first: whoever then asks the supervisor would find the
    /// child still listed.
    #[test]
    fn a_watcher_that_comes_during_the_exit_sequence_is_told_after_the_sequences_watchers() {
        let (entry, _supervisor, _mailbox) = supervised();
        let (told, _) = entry.set_exited(ExitReason::Normal);
        assert!(matches!(told.as_slice(), [Watcher::Channel(_)]));

        let (tx, mut rx) = oneshot::channel();
        assert!(
            entry.add_watcher(Watcher::Waiter(tx)).is_ok(),
            "a watcher that comes while the supervisor is being told waits its turn"
        );
        assert!(rx.try_recv().is_err(), "not told before the announcement");
        assert!(
            entry
                .add_watcher(Watcher::Monitor {
                    mref: 1,
                    watcher: 8
                })
                .is_err(),
            "a monitor of an exiting process is told at once (noproc, as OTP's)"
        );
        let late = entry.set_announced();
        assert!(matches!(late.as_slice(), [Watcher::Waiter(_)]));

        let (tx, _rx) = oneshot::channel();
        assert!(
            entry.add_watcher(Watcher::Waiter(tx)).is_err(),
            "once announced, a new watcher is told at once"
        );
    }

    #[test]
    fn monitors_are_told_in_the_order_they_were_made_and_waiters_after_everyone() {
        let (entry, _supervisor, _mailbox) = supervised();
        let (waiter, mut waited) = oneshot::channel();
        assert!(entry.add_watcher(Watcher::Waiter(waiter)).is_ok());
        for mref in 1..=10_000 {
            let monitor = Watcher::Monitor {
                mref,
                watcher: 100 + mref,
            };
            assert!(entry.add_watcher(monitor).is_ok());
        }
        for mref in (2..=10_000).step_by(2) {
            entry.remove_monitor(mref);
        }
        entry.remove_monitor(20_000);

        let (told, _) = entry.set_exited(ExitReason::Normal);
        assert!(matches!(told.first(), Some(Watcher::Channel(_))));
        let downs: Vec<(u64, u64)> = told[1..]
            .iter()
            .map(|w| match w {
                Watcher::Monitor { mref, watcher } => (*mref, *watcher),
                _ => panic!("only monitors after the supervisor"),
            })
            .collect();
        let expected: Vec<(u64, u64)> = (1..=10_000).step_by(2).map(|m| (m, 100 + m)).collect();
        assert_eq!(downs, expected, "the monitors left, oldest first");
        assert!(
            waited.try_recv().is_err(),
            "a waiter is not told while the sequence tells the others"
        );
        let late = entry.set_announced();
        assert!(matches!(late.as_slice(), [Watcher::Waiter(_)]));
    }
}

//! Spare instances: stores with a module's instance in them, made ahead of the spawns that
//! take them, on a thread of the node's own, so that a spawn's time is `init`'s and not
//! instantiation's (a third of it on this machine: the store, three core instances, their
//! exports looked up and type-checked, the fiber stack and memory taken from the pools).
//!
//! Instantiating runs no guest code for a module that has no start function (see
//! [`Module::runs_code_when_instantiated`]), so an instance made early is the instance the
//! spawn would have made: a spare is made only for such modules. It is made on a stand-in
//! context (no pid, no mailbox) that the spawn's own replaces (`process::ctx::adopt`).
//!
//! Each module has a shelf of at most [`NodeConfig::spare_instances`] spares; it starts at
//! one after the module's first spawn, doubles each time a spawn finds it empty, and halves
//! every half second no spawn comes, so a module spawned in bursts keeps the most and one
//! spawned less than once a second keeps none for long (the spare made after each of its
//! spawns is dropped unused). A spare holds what a live idle process does, less its task and
//! mailbox (~20 KiB for a small server). A shelf whose module is replaced (an upgrade, a
//! reload) is emptied then.
//!
//! The spares hold the node (their stand-in contexts do), so the node cannot be freed while
//! any is on a shelf: [`Spares::close`] empties the shelves and stops the thread when the
//! last [`Node`](super::Node) handle goes, and at [`Node::shutdown`](super::Node::shutdown).
//!
//! [`NodeConfig::spare_instances`]: super::NodeConfig::spare_instances

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::NodeInner;
use crate::bindings::Genserver;
use crate::engine::Module;
use crate::process::{Instantiation, ProcessCtx, adopt, can_adopt, new_store};
use crate::process_limits::ProcessLimits;

/// What a node's spare instances are doing
/// ([`Node::spare_instances`](super::Node::spare_instances)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpareInstances {
    /// Made and waiting for a spawn, all modules together.
    pub ready: usize,
    /// Made since the node started.
    pub made: usize,
    /// Taken by spawns since the node started (a spawn that found none instantiated its own).
    pub taken: usize,
}

/// A store with an instance in it, not yet a process's.
pub(crate) type Spare = (Store<ProcessCtx>, Genserver);

/// The node's shelves of spare instances and the thread that fills them.
pub(crate) struct Spares {
    /// The most spares one module may have ([`super::NodeConfig::spare_instances`]).
    most: usize,
    shelves: Mutex<Vec<Shelf>>,
    /// Where spawns ask for a shelf to be filled; the thread starts at the first request.
    requests: OnceLock<Mutex<Sender<Arc<Module>>>>,
    closed: AtomicBool,
    /// Spares made so far, for tests and the log.
    made: AtomicUsize,
    /// Spares taken by spawns so far.
    taken: AtomicUsize,
}

/// One module's spares.
struct Shelf {
    module: Arc<Module>,
    spares: Vec<Spare>,
    /// How many it should hold: doubles when a spawn finds none, up to `most`.
    want: usize,
    /// A request to fill it is on its way: spawns do not send another.
    requested: bool,
    /// A spawn came for one since the shelves last shrank.
    asked: bool,
    /// When making one last failed (its memory over the node's cap, or the pools out of
    /// address space): none is made for [`RETRY_AFTER`] after.
    failed: Option<Instant>,
}

impl Spares {
    pub(crate) fn new(most: usize) -> Self {
        Spares {
            most,
            shelves: Mutex::default(),
            requests: OnceLock::new(),
            closed: AtomicBool::new(false),
            made: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
        }
    }

    /// `ctx`'s process takes a spare of `module`, if there is one it can take: the spare's
    /// store, now with `ctx` as its data. Otherwise the process is to make its own instance.
    /// Either way the shelf is refilled in the background.
    pub(crate) fn take(
        &self,
        node: &Arc<NodeInner>,
        module: &Arc<Module>,
        ctx: ProcessCtx,
    ) -> Instantiation {
        if self.most == 0 || module.runs_code_when_instantiated() {
            return Instantiation::Make(ctx);
        }
        let (spare, stale, request) = {
            let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
            if self.closed.load(Ordering::Relaxed) {
                return Instantiation::Make(ctx);
            }
            // A replaced module's shelf goes (its spares are dropped below, unlocked).
            let stale = shelves
                .iter()
                .position(|s| s.module.name() == module.name() && !Arc::ptr_eq(&s.module, module))
                .map(|i| shelves.swap_remove(i));
            let shelf = match shelves.iter().position(|s| Arc::ptr_eq(&s.module, module)) {
                Some(i) => &mut shelves[i],
                None => {
                    shelves.push(Shelf {
                        module: module.clone(),
                        spares: Vec::new(),
                        want: 0,
                        requested: false,
                        asked: false,
                        failed: None,
                    });
                    shelves.last_mut().expect("just pushed")
                }
            };
            shelf.asked = true;
            let spare = shelf.spares.pop();
            if spare.is_none() {
                shelf.want = shelf.want.saturating_mul(2).clamp(1, self.most);
            }
            let failing = shelf.failed.is_some_and(|t| t.elapsed() < RETRY_AFTER);
            let request = !failing && !shelf.requested && shelf.spares.len() < shelf.want;
            shelf.requested |= request;
            (spare, stale, request)
        };
        drop(stale);
        if request {
            self.request(node, module.clone());
        }
        let Some((mut store, server)) = spare else {
            return Instantiation::Make(ctx);
        };
        if !can_adopt(&store, &ctx) {
            // Its memory is more than this process may have: the process's own instantiation
            // fails the way it should, and the spare, untouched, goes back for another.
            self.put_back(module, (store, server));
            return Instantiation::Make(ctx);
        }
        adopt(&mut store, ctx);
        self.taken.fetch_add(1, Ordering::Relaxed);
        Instantiation::Made(store, server)
    }

    /// Return a spare a spawn could not take to its shelf (if the shelf is still there).
    fn put_back(&self, module: &Arc<Module>, spare: Spare) {
        let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shelf) = shelves.iter_mut().find(|s| Arc::ptr_eq(&s.module, module))
            && shelf.spares.len() < self.most
        {
            shelf.spares.push(spare);
            return;
        }
        drop(shelves);
        drop(spare);
    }

    /// Whether no shelf holds a spare.
    fn is_empty(&self) -> bool {
        let shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
        shelves.iter().all(|s| s.spares.is_empty())
    }

    /// Halve what each shelf no spawn came to since the last time wants, dropping the spares
    /// past it; a shelf that wants none and holds none goes (so does its module, if nothing
    /// else holds it).
    fn shrink(&self) {
        let mut dropped = Vec::new();
        {
            let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
            for shelf in shelves.iter_mut() {
                if !std::mem::take(&mut shelf.asked) {
                    shelf.want /= 2;
                    if shelf.spares.len() > shelf.want {
                        dropped.extend(shelf.spares.drain(shelf.want..));
                    }
                }
            }
            shelves.retain(|s| s.want > 0 || !s.spares.is_empty() || s.requested);
        }
        // Dropped unlocked, as in `close`.
        drop(dropped);
    }

    /// Drop the spares of the modules named `name` but `keep` (which replaced them).
    pub(crate) fn forget(&self, name: &str, keep: &Arc<Module>) {
        let gone: Vec<Shelf> = {
            let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
            let (gone, kept) = std::mem::take(&mut *shelves)
                .into_iter()
                .partition(|s| s.module.name() == name && !Arc::ptr_eq(&s.module, keep));
            *shelves = kept;
            gone
        };
        // Dropped unlocked, as in `close`.
        drop(gone);
    }

    /// Drop the spares of `module` (unloaded: a release that loaded it was rolled back).
    pub(crate) fn forget_module(&self, module: &Arc<Module>) {
        let gone: Vec<Shelf> = {
            let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
            let (gone, kept) = std::mem::take(&mut *shelves)
                .into_iter()
                .partition(|s| Arc::ptr_eq(&s.module, module));
            *shelves = kept;
            gone
        };
        // Dropped unlocked, as in `close`.
        drop(gone);
    }

    /// Empty every shelf and make no more spares: the node is going.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let shelves = {
            let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *shelves)
        };
        // Dropped unlocked: a spare's store drops its stand-in context, which may free the
        // node, and with it these shelves.
        drop(shelves);
        // The thread ends when its channel closes.
        if let Some(requests) = self.requests.get() {
            let (closed, _) = channel();
            *requests.lock().unwrap_or_else(PoisonError::into_inner) = closed;
        }
    }

    /// How many spares there are, and have been made and taken so far.
    pub(crate) fn counts(&self) -> SpareInstances {
        let ready = self
            .shelves
            .lock()
            .expect("spares lock")
            .iter()
            .map(|s| s.spares.len())
            .sum();
        SpareInstances {
            ready,
            made: self.made.load(Ordering::Relaxed),
            taken: self.taken.load(Ordering::Relaxed),
        }
    }

    fn request(&self, node: &Arc<NodeInner>, module: Arc<Module>) {
        let requests = self.requests.get_or_init(|| {
            let (tx, rx) = channel();
            let weak = Arc::downgrade(node);
            let started = std::thread::Builder::new()
                .name("otter-spares".into())
                .spawn(move || fill(&weak, &rx));
            if let Err(e) = started {
                tracing::warn!(error = %e, "no thread for spare instances: spawns make their own");
            }
            Mutex::new(tx)
        });
        // A send fails only once the thread is gone (no thread, or closed): nothing to do.
        let _ = requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(module);
    }

    /// Fill `module`'s shelf to what it wants; returns once it is full, or closed, or making
    /// one failed.
    fn fill_shelf(
        &self,
        node: &Arc<NodeInner>,
        module: &Arc<Module>,
        rt: &tokio::runtime::Runtime,
    ) {
        loop {
            {
                let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(shelf) = shelves.iter_mut().find(|s| Arc::ptr_eq(&s.module, module))
                else {
                    return;
                };
                if self.closed.load(Ordering::Relaxed) || shelf.spares.len() >= shelf.want {
                    shelf.requested = false;
                    return;
                }
            }
            let made = rt.block_on(make(node, module));
            let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(shelf) = shelves.iter_mut().find(|s| Arc::ptr_eq(&s.module, module)) else {
                // Closed or replaced meanwhile: the spare is dropped, unlocked.
                drop(shelves);
                return;
            };
            match made {
                Ok(spare) if !self.closed.load(Ordering::Relaxed) => {
                    shelf.spares.push(spare);
                    self.made.fetch_add(1, Ordering::Relaxed);
                }
                Ok(spare) => {
                    shelf.requested = false;
                    drop(shelves);
                    drop(spare);
                    return;
                }
                Err(e) => {
                    tracing::debug!(
                        module = module.name(),
                        error = %e,
                        "no spare instance of this module for a second"
                    );
                    shelf.failed = Some(Instant::now());
                    shelf.requested = false;
                    return;
                }
            }
        }
    }
}

/// How long after a spare could not be made no other is tried for its module.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often the shelves shrink: each that no spawn came to since wants half as many.
const SHRINK_EVERY: Duration = Duration::from_millis(500);

/// The thread: fill each shelf asked for, and shrink the shelves no spawn comes to, until the
/// node is gone or closes the channel.
fn fill(node: &Weak<NodeInner>, requests: &Receiver<Arc<Module>>) {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "no runtime for spare instances: spawns make their own");
            return;
        }
    };
    let mut shrunk = Instant::now();
    loop {
        // With every shelf empty there is nothing to shrink: wait for a spawn.
        let empty = node.upgrade().is_none_or(|n| n.spares.is_empty());
        let next = if empty {
            requests.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            requests.recv_timeout(SHRINK_EVERY.saturating_sub(shrunk.elapsed()))
        };
        let Some(node) = node.upgrade() else {
            return;
        };
        match next {
            Ok(module) => node.spares.fill_shelf(&node, &module, &rt),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if shrunk.elapsed() >= SHRINK_EVERY {
            node.spares.shrink();
            shrunk = Instant::now();
        }
    }
}

/// A spare of `module`: a store on a stand-in context, instantiated as a spawn would.
async fn make(node: &Arc<NodeInner>, module: &Module) -> wasmtime::Result<Spare> {
    let ctx = ProcessCtx::new(
        0,
        node.clone(),
        module.name().into(),
        crate::mailbox::mailbox(None).1,
        Arc::new(AtomicUsize::new(0)),
        &ProcessLimits::default(),
    );
    let mut store = new_store(&node.engine, ctx);
    let server = module.pre.instantiate_async(&mut store).await?;
    Ok((store, server))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::{Node, NodeConfig, SpawnOptions};

    async fn node_with_counter() -> Node {
        let dir = xtask::build_guests().expect("build the guests");
        let node = Node::new(NodeConfig::default()).expect("node");
        node.load_module("counter", dir.join("counter.wasm"))
            .await
            .expect("load");
        node
    }

    async fn until(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            if Instant::now() > end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    #[test]
    fn a_node_asked_for_unbounded_spares_keeps_at_most_the_bound() {
        let mut config = NodeConfig::default();
        config.spare_instances(usize::MAX);
        assert_eq!(config.spare_instances, crate::MAX_SPARE_INSTANCES);
    }

    /// A release rolled back unloads the version it loaded, which may no longer be the one
    /// its name starts: the one that is keeps its spares.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unloading_a_replaced_version_keeps_the_current_versions_spares() {
        let node = node_with_counter().await;
        let dir = xtask::guest_dir();
        let old = node.module("counter").unwrap();
        node.load_module("counter", dir.join("counter.wasm"))
            .await
            .unwrap();
        let unit = crate::encode(&()).unwrap();
        node.spawn("counter", unit, SpawnOptions::default())
            .await
            .unwrap();
        assert!(until(|| node.spare_instances().ready > 0).await);
        node.inner.unload_module(&old);
        assert!(node.spare_instances().ready > 0);
    }

    /// The spares hold the node: without the last handle emptying them, a node dropped with
    /// spares on its shelves would be freed (with its epoch thread and pools) only once they
    /// shrank away, or never while spawns keep its shelves full.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_node_handle_frees_the_node_with_its_spares() {
        let node = node_with_counter().await;
        let unit = crate::encode(&()).unwrap();
        let pid = node
            .spawn("counter", unit, SpawnOptions::default())
            .await
            .unwrap();
        node.kill(pid);
        node.wait_exit(pid).await;
        assert!(until(|| node.spare_instances().ready > 0).await);
        let inner = Arc::downgrade(&node.inner);
        let other = node.clone();
        drop(node);
        // Another handle still holds it, spares and all.
        assert!(other.spare_instances().ready > 0);
        drop(other);
        // At once, not when the shelves would have shrunk (a second or more from now).
        if let Some(node) = inner.upgrade() {
            assert_eq!(
                node.spares.counts().ready,
                0,
                "the spares outlived the handles"
            );
        }
        assert!(
            until(|| inner.upgrade().is_none()).await,
            "the node was not freed"
        );
    }
}

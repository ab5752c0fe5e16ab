//! Spare instances: stores with a module's instance in them, made ahead of the spawns that
//! take them, so that a spawn's time is `init`'s and not instantiation's (a third of it on
//! this machine: the store, three core instances, their exports looked up and type-checked,
//! the fiber stack and memory taken from the pools). They are made by a task on the node's
//! runtime, which a worker with nothing else to do runs at once (a thread of their own was
//! measured: woken per spare, it made one for only half the spawns and gained nothing
//! outside real-time priority).
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
//! any is on a shelf: [`Spares::close`] empties the shelves and makes no more when the last
//! [`Node`](super::Node) handle goes, and at [`Node::shutdown`](super::Node::shutdown).
//!
//! [`NodeConfig::spare_instances`]: super::NodeConfig::spare_instances

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::NodeInner;
use crate::callbacks::Callbacks;
use crate::engine::Module;
use crate::process::{Instantiation, ProcessCtx, adopt, can_adopt, new_store};
use crate::process_limits::ProcessLimits;

/// How long after a spare could not be made no other is tried for its module.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often the shelves shrink: each that no spawn came to since wants half as many.
const SHRINK_EVERY: Duration = Duration::from_millis(500);

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
pub(crate) type Spare = (Store<ProcessCtx>, Callbacks);

/// The node's shelves of spare instances.
pub(crate) struct Spares {
    /// The most spares one module may have ([`super::NodeConfig::spare_instances`]).
    most: usize,
    shelves: Mutex<Shelves>,
    closed: AtomicBool,
    /// Spares made so far.
    made: AtomicUsize,
    /// Spares taken by spawns so far.
    taken: AtomicUsize,
}

/// Every module's shelf, and whether a task shrinks them.
#[derive(Default)]
struct Shelves {
    shelves: Vec<Shelf>,
    /// A task shrinks the shelves every [`SHRINK_EVERY`]; it ends when there are none.
    shrinking: bool,
}

impl Shelves {
    /// `module`'s shelf, if it has one.
    fn of(&mut self, module: &Arc<Module>) -> Option<&mut Shelf> {
        self.shelves
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.module, module))
    }

    /// `module`'s shelf, made empty (wanting none yet) if it has none.
    fn of_or_new(&mut self, module: &Arc<Module>) -> &mut Shelf {
        if self.of(module).is_none() {
            self.shelves.push(Shelf {
                module: module.clone(),
                spares: Vec::new(),
                want: 0,
                filling: false,
                asked: false,
                failed: None,
            });
        }
        self.of(module).expect("just made")
    }
}

/// One module's spares.
struct Shelf {
    module: Arc<Module>,
    spares: Vec<Spare>,
    /// How many it should hold: doubles when a spawn finds none, up to `most`.
    want: usize,
    /// A task fills it now: spawns start no other.
    filling: bool,
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
            closed: AtomicBool::new(false),
            made: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shelves> {
        self.shelves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `ctx`'s process takes a spare of `module`, if there is one it can take: the spare's
    /// store, now with `ctx` as its data. Otherwise the process is to make its own instance.
    /// Either way the shelf is refilled in the background. Called on the node's runtime.
    pub(crate) fn take(
        &self,
        node: &Arc<NodeInner>,
        module: &Arc<Module>,
        ctx: ProcessCtx,
    ) -> Instantiation {
        if self.most == 0 || module.runs_code_when_instantiated() {
            return Instantiation::Make(ctx);
        }
        let (spare, fill, shrink) = {
            let mut all = self.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Instantiation::Make(ctx);
            }
            let shelf = all.of_or_new(module);
            shelf.asked = true;
            let spare = shelf.spares.pop();
            if spare.is_none() {
                shelf.want = shelf.want.saturating_mul(2).clamp(1, self.most);
            }
            let failing = shelf.failed.is_some_and(|t| t.elapsed() < RETRY_AFTER);
            let fill = !failing && !shelf.filling && shelf.spares.len() < shelf.want;
            shelf.filling |= fill;
            // Decided under the lock the shrinking task ends under: one of them sees the other.
            let shrink = !std::mem::replace(&mut all.shrinking, true);
            (spare, fill, shrink)
        };
        if fill {
            let (node, module) = (node.clone(), module.clone());
            tokio::spawn(crate::runtime::NodeTask(async move {
                node.spares.fill(&node, &module).await;
            }));
        }
        if shrink {
            tokio::spawn(shrink_while_stocked(Arc::downgrade(node)));
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
        let mut all = self.lock();
        if let Some(shelf) = all.of(module)
            && shelf.spares.len() < self.most
        {
            shelf.spares.push(spare);
            return;
        }
        drop(all);
        drop(spare);
    }

    /// Fill `module`'s shelf to what it wants; returns once it is full, or gone, or closed,
    /// or making one failed.
    async fn fill(&self, node: &Arc<NodeInner>, module: &Arc<Module>) {
        loop {
            {
                let mut all = self.lock();
                let Some(shelf) = all.of(module) else {
                    return;
                };
                if self.closed.load(Ordering::Relaxed) || shelf.spares.len() >= shelf.want {
                    shelf.filling = false;
                    return;
                }
            }
            let made = make(node, module).await;
            let mut all = self.lock();
            let Some(shelf) = all.of(module) else {
                // Closed or replaced meanwhile: the spare is dropped, unlocked.
                drop(all);
                return;
            };
            match made {
                Ok(spare) if !self.closed.load(Ordering::Relaxed) => {
                    shelf.spares.push(spare);
                    self.made.fetch_add(1, Ordering::Relaxed);
                }
                Ok(spare) => {
                    shelf.filling = false;
                    drop(all);
                    drop(spare);
                    return;
                }
                Err(e) => {
                    shelf.failed = Some(Instant::now());
                    shelf.filling = false;
                    drop(all);
                    tracing::debug!(
                        module = module.name(),
                        error = %e,
                        "no spare instance of this module for a second"
                    );
                    return;
                }
            }
        }
    }

    /// Halve what each shelf no spawn came to since the last time wants, dropping the spares
    /// past it; a shelf that wants none and holds none goes (so does its module, if nothing
    /// else holds it). Whether any shelf is left.
    fn shrink(&self) -> bool {
        let mut dropped = Vec::new();
        let left = {
            let mut all = self.lock();
            for shelf in all.shelves.iter_mut() {
                if !std::mem::take(&mut shelf.asked) {
                    shelf.want /= 2;
                    if shelf.spares.len() > shelf.want {
                        dropped.extend(shelf.spares.drain(shelf.want..));
                    }
                }
            }
            all.shelves
                .retain(|s| s.want > 0 || !s.spares.is_empty() || s.filling);
            let left = !all.shelves.is_empty();
            // The shrinking task ends with the last shelf; the next spawn starts another.
            all.shrinking = left;
            left
        };
        // Dropped unlocked, as in `close`.
        drop(dropped);
        left
    }

    /// Drop the spares of the modules named `name` but `keep` (which replaced them).
    pub(crate) fn forget(&self, name: &str, keep: &Arc<Module>) {
        self.forget_where(|m| m.name() == name && !Arc::ptr_eq(m, keep));
    }

    /// Drop the spares of `module` (unloaded: a release that loaded it was rolled back).
    pub(crate) fn forget_module(&self, module: &Arc<Module>) {
        self.forget_where(|m| Arc::ptr_eq(m, module));
    }

    fn forget_where(&self, gone: impl Fn(&Arc<Module>) -> bool) {
        let gone: Vec<Shelf> = {
            let mut all = self.lock();
            let (gone, kept) = std::mem::take(&mut all.shelves)
                .into_iter()
                .partition(|s| gone(&s.module));
            all.shelves = kept;
            gone
        };
        // Dropped unlocked, as in `close`.
        drop(gone);
    }

    /// Empty every shelf and make no more spares: the node is going.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let shelves = std::mem::take(&mut self.lock().shelves);
        // Dropped unlocked: a spare's store drops its stand-in context, which may free the
        // node, and with it these shelves.
        drop(shelves);
    }

    /// How many spares there are, and have been made and taken so far.
    pub(crate) fn counts(&self) -> SpareInstances {
        let ready = self.lock().shelves.iter().map(|s| s.spares.len()).sum();
        SpareInstances {
            ready,
            made: self.made.load(Ordering::Relaxed),
            taken: self.taken.load(Ordering::Relaxed),
        }
    }
}

/// Shrink the node's shelves every [`SHRINK_EVERY`] until there are none; holds the node
/// only while it shrinks them.
async fn shrink_while_stocked(node: Weak<NodeInner>) {
    loop {
        tokio::time::sleep(SHRINK_EVERY).await;
        let Some(node) = node.upgrade() else {
            return;
        };
        if !node.spares.shrink() {
            return;
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

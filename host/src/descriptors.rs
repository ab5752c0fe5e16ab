//! The budget of OS descriptors that guests may hold open: files and directories
//! opened through WASI, the granted directories of every WASI context, TCP sockets (for
//! modules granted `connect`), and SQLite connections.
//!
//! One process may hold at most `MAX_WASI_RESOURCES` WASI resources, but nothing else
//! bounds the sum over processes: a few hundred hostile processes with a directory grant
//! could open files until the OS process reaches its descriptor limit (`RLIMIT_NOFILE`),
//! and then the node itself fails (the control socket cannot accept, databases and the
//! compile cache cannot open). So every descriptor opened for a guest first takes a
//! [`DescriptorToken`] from its node's [`DescriptorBudget`], and the token is dropped with
//! the descriptor: closing it, the process's exit, hibernation, or an upgrade that rolls
//! back all give it back. When the budget is spent the guest's open fails with the error
//! it would get from the OS at `EMFILE` (WASI's `io` for a file, `new-socket-limit` for
//! a socket, `too-many-connections` for a database); the process goes on.
//!
//! The limit is the OS process's, whatever number of nodes it runs, so each node's budget
//! draws on one budget of the whole program ([`program_budget`]): a quarter of the soft
//! descriptor limit, at least [`NODE_RESERVE`], is kept for the program ([`guest_share`]),
//! and a node may take less ([`NodeConfig::max_guest_files`](crate::NodeConfig::max_guest_files)).
//! `otter run` first raises its soft limit to the hard one ([`raise_open_file_limit`], as servers
//! do); a library does not change its host program's limits. The reserve also covers what
//! the node opens for guests only for the length of one call (a directory listing, the
//! parent directories a path is resolved through): as many at once as WASI calls run on
//! blocking threads, which a reserve of a quarter covers at the usual limits, not at every
//! limit (a hard limit near 1,024 with hundreds of such calls at once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The fewest descriptors the node keeps for itself, whatever its limit.
pub(crate) const NODE_RESERVE: usize = 256;

/// How many descriptors guests may hold in all, and how many they hold now.
#[derive(Debug)]
pub(crate) struct DescriptorBudget {
    limit: usize,
    held: AtomicUsize,
    /// The budget this one draws on too (a node's: the program's).
    parent: Option<Arc<DescriptorBudget>>,
}

/// `n` descriptors of the budget, held until dropped.
#[derive(Debug)]
pub(crate) struct DescriptorToken {
    budget: Arc<DescriptorBudget>,
    n: usize,
}

impl DescriptorBudget {
    pub(crate) fn new(limit: usize) -> Arc<DescriptorBudget> {
        Arc::new(DescriptorBudget {
            limit,
            held: AtomicUsize::new(0),
            parent: None,
        })
    }

    /// A budget of at most `limit` that draws on `parent` too.
    pub(crate) fn within(parent: Arc<DescriptorBudget>, limit: usize) -> Arc<DescriptorBudget> {
        Arc::new(DescriptorBudget {
            limit,
            held: AtomicUsize::new(0),
            parent: Some(parent),
        })
    }

    /// `n` descriptors, if that many are left here and in the budgets this one draws on.
    pub(crate) fn take(self: &Arc<Self>, n: usize) -> Option<DescriptorToken> {
        if !self.reserve(n) {
            return None;
        }
        Some(DescriptorToken {
            budget: self.clone(),
            n,
        })
    }

    /// Its own count first, then its parent's: a node past its own limit never holds the
    /// program's count, even for a moment, against another node.
    fn reserve(&self, n: usize) -> bool {
        let taken = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|&after| after <= self.limit)
            })
            .is_ok();
        if !taken {
            return false;
        }
        if let Some(parent) = &self.parent
            && !parent.reserve(n)
        {
            self.held.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
        if let Some(parent) = &self.parent {
            parent.give_back(n);
        }
    }

    /// How many descriptors guests hold now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// How many they may hold: its own limit, or less if a budget it draws on is smaller.
    pub(crate) fn limit(&self) -> usize {
        match &self.parent {
            Some(parent) => self.limit.min(parent.limit()),
            None => self.limit,
        }
    }
}

impl Drop for DescriptorToken {
    fn drop(&mut self) {
        self.budget.give_back(self.n);
    }
}

/// The program's budget, shared by its nodes: [`guest_share`] of the soft descriptor limit
/// when the first node starts.
pub(crate) fn program_budget() -> Arc<DescriptorBudget> {
    static PROGRAM: OnceLock<Arc<DescriptorBudget>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| DescriptorBudget::new(guest_share(soft_limit())))
        .clone()
}

/// The soft `RLIMIT_NOFILE`: the descriptors this process may open now.
fn soft_limit() -> usize {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(usize::MAX, to_usize)
}

/// The descriptors guests may hold when the OS lets the node have `limit`: all but a
/// quarter, and never the last [`NODE_RESERVE`].
pub(crate) const fn guest_share(limit: usize) -> usize {
    let reserve = if limit / 4 > NODE_RESERVE {
        limit / 4
    } else {
        NODE_RESERVE
    };
    limit.saturating_sub(reserve)
}

/// The most a manifest may ask for (`[node] max_guest_files`): past any limit an OS gives a
/// process; a node lowers what it is given to its own share.
pub(crate) const MAX_GUEST_FILES: usize = 1 << 30;

/// Raise this process's soft limit of open files (`RLIMIT_NOFILE`) to its hard limit, as
/// servers do, so that guests get a share of the hard limit rather than of a soft one meant
/// for shells. `otter run` calls it before its node starts; a program embedding nodes may,
/// before its first [`Node::new`](crate::Node::new) (the nodes' share is set then). A node
/// never changes its host program's limits itself. If the OS refuses, the limit stays.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    if let Some(hard) = before.maximum
        && before.current != Some(hard)
    {
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        ) {
            Ok(()) => tracing::debug!(from = ?before.current, to = hard,
                "raised the soft limit of open files to the hard limit"),
            Err(e) => tracing::debug!(error = %e, soft = ?before.current,
                "the soft limit of open files cannot be raised"),
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_limit_and_a_dropped_token_gives_back() {
        let budget = DescriptorBudget::new(3);
        let two = budget.take(2).expect("two of three");
        assert!(budget.take(2).is_none(), "four of three");
        let one = budget.take(1).expect("the third");
        assert!(budget.take(1).is_none());
        assert_eq!(budget.held(), 3);
        drop(two);
        assert_eq!(budget.held(), 1);
        assert!(budget.take(2).is_some(), "given back");
        drop(one);
        assert_eq!(budget.held(), 0);
        assert!(budget.take(usize::MAX).is_none(), "no overflow");
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn nodes_draw_on_the_program_s_budget_and_give_back_to_both() {
        let program = DescriptorBudget::new(5);
        let a = DescriptorBudget::within(program.clone(), 4);
        let b = DescriptorBudget::within(program.clone(), 4);
        assert_eq!(a.limit(), 4);
        let held_by_a = a.take(4).expect("a's four");
        assert!(a.take(1).is_none(), "past a's own limit");
        assert_eq!(
            program.held(),
            4,
            "a's refusal gave the program back what it took"
        );
        let one = b.take(1).expect("the program's last");
        assert!(b.take(1).is_none(), "the program is spent though b is not");
        assert_eq!((program.held(), b.held()), (5, 1));
        drop(held_by_a);
        assert_eq!((program.held(), a.held()), (1, 0));
        drop(one);
        assert_eq!(program.held(), 0);
        let small = DescriptorBudget::within(program, 10);
        assert_eq!(small.limit(), 5, "never more than the program's");
    }

    #[test]
    fn the_node_keeps_a_quarter_of_its_limit_and_never_less_than_its_reserve() {
        assert_eq!(guest_share(1024), 1024 - NODE_RESERVE);
        assert_eq!(guest_share(100), 0);
        assert_eq!(guest_share(1 << 20), 3 << 18);
        assert_eq!(guest_share(usize::MAX), usize::MAX - usize::MAX / 4);
    }
}

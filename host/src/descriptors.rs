//! The node's budget of OS descriptors that guests may hold open: files and directories
//! opened through WASI, the granted directories of every WASI context, TCP sockets (for
//! modules granted `connect`), and SQLite connections.
//!
//! One process may hold at most `MAX_WASI_RESOURCES` WASI resources, but nothing else
//! bounds the sum over processes: a few hundred hostile processes with a directory grant
//! could open files until the OS process reaches its descriptor limit (`RLIMIT_NOFILE`),
//! and then the node itself fails (the control socket cannot accept, databases and the
//! compile cache cannot open). So every descriptor opened for a guest first takes a
//! [`DescriptorToken`] from the node's [`DescriptorBudget`], and the token is dropped with
//! the descriptor: closing it, the process's exit, hibernation, or an upgrade that rolls
//! back all give it back. When the budget is spent the guest's open fails with the error
//! it would get from the OS at `EMFILE` (WASI's `io` for a file, `new-socket-limit` for
//! a socket, `too-many-connections` for a database); the process goes on.
//!
//! At start the node raises its soft descriptor limit to the hard one ([`raise_limit`],
//! as servers do) and leaves itself a reserve of a quarter of it, at least
//! [`NODE_RESERVE`] ([`guest_share`]); the rest is the guests' unless
//! [`NodeConfig::max_guest_files`](crate::NodeConfig::max_guest_files) asks for less. The
//! reserve also covers what the node opens for guests only for the length of one call (a
//! directory listing, the parent directories a path is resolved through).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The fewest descriptors the node keeps for itself, whatever its limit.
pub(crate) const NODE_RESERVE: usize = 256;

/// How many descriptors guests may hold in all, and how many they hold now.
#[derive(Debug)]
pub(crate) struct DescriptorBudget {
    limit: usize,
    held: AtomicUsize,
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
        })
    }

    /// `n` descriptors, if that many are left.
    pub(crate) fn take(self: &Arc<Self>, n: usize) -> Option<DescriptorToken> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|&after| after <= self.limit)
            })
            .ok()?;
        Some(DescriptorToken {
            budget: self.clone(),
            n,
        })
    }

    /// How many descriptors guests hold now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// How many they may hold.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

impl Drop for DescriptorToken {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.n, Ordering::AcqRel);
    }
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

/// The descriptor limit this process can reach: the hard `RLIMIT_NOFILE` if it is finite,
/// else the soft one.
pub(crate) fn reachable_limit() -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile) {
        rustix::process::Rlimit {
            maximum: Some(hard),
            ..
        } => to_usize(hard),
        rustix::process::Rlimit { current, .. } => current.map_or(usize::MAX, to_usize),
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (when finite); the soft limit after.
/// If the OS refuses, the soft limit stays as it was.
pub(crate) fn raise_limit() -> usize {
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
    getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, to_usize)
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
    fn the_node_keeps_a_quarter_of_its_limit_and_never_less_than_its_reserve() {
        assert_eq!(guest_share(1024), 1024 - NODE_RESERVE);
        assert_eq!(guest_share(100), 0);
        assert_eq!(guest_share(1 << 20), 3 << 18);
        assert_eq!(guest_share(usize::MAX), usize::MAX - usize::MAX / 4);
    }
}

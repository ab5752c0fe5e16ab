//! The node's budget of descriptors for guests ([`NodeConfig::max_guest_files`]): its size
//! at start and what operators read of it.

use super::{Node, NodeConfig};
use crate::descriptors::{guest_share, raise_limit};

/// How many descriptors guests may hold: the configured number, at most the share the
/// node's descriptor limit leaves them once raised.
pub(super) fn guest_files(config: &NodeConfig) -> usize {
    let share = guest_share(raise_limit());
    match config.max_guest_files {
        Some(n) if n > share => {
            tracing::warn!(
                asked = n,
                share,
                "max_guest_files is more than the node's descriptor limit leaves guests; lowered"
            );
            share
        }
        Some(n) => n,
        None => share,
    }
}

impl Node {
    /// How many OS descriptors guests hold open now (files, directories and sockets
    /// through WASI, granted directories, SQLite connections), of [`max_guest_files`](Self::max_guest_files).
    pub fn open_guest_files(&self) -> usize {
        self.inner.descriptors.held()
    }

    /// How many OS descriptors guests may hold open in all
    /// ([`NodeConfig::max_guest_files`]).
    pub fn max_guest_files(&self) -> usize {
        self.inner.descriptors.limit()
    }
}

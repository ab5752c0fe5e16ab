//! The node's budget of descriptors for guests ([`NodeConfig::max_guest_files`]): its size
//! at start and what operators read of it.

use std::sync::Arc;

use super::{Node, NodeConfig};
use crate::descriptors::{DescriptorBudget, program_budget};

/// The node's budget: the configured number, drawn on the program's, whose share of the
/// descriptor limit it never exceeds (a larger number is lowered, with a warning).
pub(super) fn guest_files(config: &NodeConfig) -> Arc<DescriptorBudget> {
    let program = program_budget();
    let share = program.limit();
    let limit = match config.max_guest_files {
        Some(n) if n > share => {
            tracing::warn!(
                asked = n,
                share,
                "max_guest_files is more than the open-file limit leaves guests; lowered"
            );
            share
        }
        Some(n) => n,
        None => share,
    };
    DescriptorBudget::within(program, limit)
}

impl Node {
    /// How many OS descriptors guests hold open now (files, directories and sockets
    /// through WASI, granted directories, SQLite connections), of [`max_guest_files`](Self::max_guest_files).
    pub fn open_guest_files(&self) -> usize {
        self.inner.descriptors.held()
    }

    /// How many OS descriptors guests may hold open in all
    /// ([`NodeConfig::max_guest_files`], at most the program's share). Other nodes of the
    /// same program draw on that share too, so an open may be refused before this many.
    pub fn max_guest_files(&self) -> usize {
        self.inner.descriptors.limit()
    }
}

//! A process's memory cap: all its linear memories together, and the tables and instances a
//! store may hold. The same limiter caps the throwaway instance a module is checked on at
//! load.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use wasmtime::ResourceLimiter;

use crate::limits::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

/// Caps a process's linear memories, all together, and reports their size to the process
/// table.
pub(crate) struct MemoryLimit {
    cap: usize,
    used: Arc<AtomicUsize>,
    /// A growth was refused: an `unreachable` trap that follows is the guest's allocator
    /// giving up, and the process exits `memory_limit`.
    refused: bool,
    /// Elements in all of the store's tables, which live in host memory.
    table_elements: usize,
}

impl MemoryLimit {
    pub(crate) fn new(cap: usize, used: Arc<AtomicUsize>) -> Self {
        MemoryLimit {
            cap,
            used,
            refused: false,
            table_elements: 0,
        }
    }

    /// The most linear memory the process may have, in bytes.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Whether this store was refused memory.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }

    /// What the store counts now, to [`MemoryLimit::restore`] once another store that took
    /// this limit over is dropped (an upgrade that did not commit).
    pub(crate) fn save(&self) -> (usize, usize) {
        (
            self.used.load(std::sync::atomic::Ordering::Relaxed),
            self.table_elements,
        )
    }

    /// Count again what [`MemoryLimit::save`] saved.
    pub(crate) fn restore(&mut self, (used, table_elements): (usize, usize)) {
        self.used.store(used, std::sync::atomic::Ordering::Relaxed);
        self.table_elements = table_elements;
        self.refused = false;
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The cap is the process's, not each memory's: a component may have many memories.
        let growth = desired.saturating_sub(current);
        let used = self.used.load(std::sync::atomic::Ordering::Relaxed);
        if used.saturating_add(growth) > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.used
            .fetch_add(growth, std::sync::atomic::Ordering::Relaxed);
        // A guest that handled a refused allocation and grew since is not out of memory.
        self.refused = false;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_elements
            .saturating_add(desired.saturating_sub(current));
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl MemoryLimit {
    /// The store this limiter served is gone (hibernation) or new: no memory yet.
    pub(crate) fn reset(&mut self) {
        self.used.store(0, std::sync::atomic::Ordering::Relaxed);
        self.refused = false;
        self.table_elements = 0;
    }
}

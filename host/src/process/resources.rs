//! What a process's context holds for its current instance only: the handles the guest's
//! code knows by number (WASI's open files, directories and streams; SQL connections).
//!
//! They belong to the instance that opened them, not to the process: a new instance
//! (starting, waking, an upgrade) starts with none, and hibernating closes them, since no
//! instance is left to use them. An upgrade lends the process's context to the new
//! version's store and sets the old instance's resources aside
//! ([`ProcessCtx::set_aside_instance_resources`]); if the upgrade fails they are given back
//! untouched ([`ProcessCtx::give_back_instance_resources`]) and whatever the new instance
//! opened is closed; if it commits they are dropped, which closes them. A resource kept
//! for one instance is added here, and every path above handles it.

use super::ctx::ProcessCtx;
use crate::host::wasi::WasiState;
use crate::sql::Connections;

/// An instance's resources set aside while another instance borrows its process's context.
/// Dropping it closes them.
pub(crate) struct InstanceResources {
    wasi: Option<Box<WasiState>>,
    connections: Option<Connections>,
}

impl ProcessCtx {
    /// Take the resources the current instance holds, leaving none, for an instance that
    /// may come back to them (an upgrade not yet committed).
    pub(crate) fn set_aside_instance_resources(&mut self) -> InstanceResources {
        InstanceResources {
            wasi: self.wasi.as_mut().and_then(|w| w.state.take()),
            connections: self.sql.as_mut().map(|sql| sql.set_aside()),
        }
    }

    /// Give back what [`set_aside_instance_resources`](Self::set_aside_instance_resources)
    /// took, closing what the current instance holds (it is being dropped).
    pub(crate) fn give_back_instance_resources(&mut self, kept: InstanceResources) {
        let InstanceResources { wasi, connections } = kept;
        // The grants are the process's and stay; only the instance's state comes back. A
        // context that had WASI state keeps its `wasi` for life, so it is there.
        if let Some(w) = &mut self.wasi {
            w.state = wasi;
        }
        if let Some(sql) = &mut self.sql {
            match connections {
                Some(kept) => sql.give_back(kept),
                None => sql.close_all(),
            }
        }
    }

    /// Close every resource the current instance holds: a new instance holds none of
    /// the old one's, and a hibernating process has no instance.
    pub(crate) fn close_instance_resources(&mut self) {
        drop(self.set_aside_instance_resources());
    }
}

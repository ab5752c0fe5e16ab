//! What the node grants each module through WASI, kept by module name (see
//! [`crate::grants`]).

use std::sync::Arc;

use super::{Node, NodeInner};
use crate::grants::{GrantError, ModuleGrants};

impl Node {
    /// Grant the processes of `module` started from now on what `grants` allows through
    /// WASI; replaces the module's earlier grants. A running process keeps the grants it
    /// started with (its WASI context is its own) until it restarts. A module
    /// without grants gets nothing (see [`ModuleGrants`]); one without WASI imports is not
    /// affected. The directories are checked now.
    ///
    /// # Errors
    /// [`GrantError`] if a directory is missing, not a directory or not accessible as
    /// granted; the module's grants are then unchanged.
    pub fn grant(&self, module: &str, mut grants: ModuleGrants) -> Result<(), GrantError> {
        grants.check()?;
        grants.pin()?;
        self.inner
            .grants
            .write()
            .expect("grants lock")
            .insert(module.to_owned(), Arc::new(grants));
        Ok(())
    }
}

impl NodeInner {
    /// What `module`'s processes may reach through WASI: nothing unless granted.
    pub(crate) fn grants(&self, module: &str) -> Arc<crate::grants::ModuleGrants> {
        self.grants
            .read()
            .expect("grants lock")
            .get(module)
            .cloned()
            .unwrap_or_default()
    }

    /// Put back grants `module` had before (a reload undone): unchecked, as they were
    /// checked when given, and a directory gone since is refused when a process opens it.
    pub(crate) fn restore_grants(&self, module: &str, grants: Arc<crate::grants::ModuleGrants>) {
        self.grants
            .write()
            .expect("grants lock")
            .insert(module.to_owned(), grants);
    }
}

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
        self.inner.set_grants(module, Arc::new(grants));
        Ok(())
    }
}

impl NodeInner {
    /// What `module`'s processes may reach through WASI: nothing unless granted.
    pub(crate) fn grants(&self, module: &str) -> Arc<ModuleGrants> {
        self.grants
            .read()
            .expect("grants lock")
            .get(module)
            .cloned()
            .unwrap_or_default()
    }

    /// `module`'s grants if they grant a database (most modules' do not: no allocation).
    pub(crate) fn database_grants(&self, module: &str) -> Option<Arc<ModuleGrants>> {
        self.grants
            .read()
            .expect("grants lock")
            .get(module)
            .filter(|g| !g.databases.is_empty())
            .cloned()
    }

    /// Make `grants` (checked and pinned) `module`'s: new ones from [`Node::grant`], or
    /// those it had before a reload that is being undone.
    pub(crate) fn set_grants(&self, module: &str, grants: Arc<ModuleGrants>) {
        self.grants
            .write()
            .expect("grants lock")
            .insert(module.to_owned(), grants);
    }
}

//! One code change at a time: a module is upgraded by one upgrade at once, and a reload
//! (which upgrades the modules it changes itself) runs alone.

use super::UpgradeError;
use crate::node::NodeInner;

/// A module's upgrade slot, released however the upgrade ends.
pub(crate) struct Slot<'a> {
    node: &'a NodeInner,
    module: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.node
            .upgrading
            .lock()
            .expect("upgrading lock")
            .modules
            .remove(&self.module);
    }
}

/// The node's reload slot, released however the reload ends.
pub(crate) struct ReloadSlot<'a> {
    node: &'a NodeInner,
}

impl Drop for ReloadSlot<'_> {
    fn drop(&mut self) {
        self.node
            .upgrading
            .lock()
            .expect("upgrading lock")
            .reloading = false;
    }
}

impl NodeInner {
    /// Take `module`'s upgrade slot; `in_reload` when the running reload's own step asks.
    pub(crate) fn upgrade_slot(
        &self,
        module: &str,
        in_reload: bool,
    ) -> Result<Slot<'_>, UpgradeError> {
        let mut upgrading = self.upgrading.lock().expect("upgrading lock");
        if upgrading.reloading && !in_reload {
            return Err(UpgradeError::Reloading);
        }
        if !upgrading.modules.insert(module.to_owned()) {
            return Err(UpgradeError::InProgress(module.to_owned()));
        }
        Ok(Slot {
            node: self,
            module: module.to_owned(),
        })
    }

    /// Take the node's reload slot; the error names a module being upgraded.
    pub(crate) fn reload_slot(&self) -> Result<ReloadSlot<'_>, String> {
        let mut upgrading = self.upgrading.lock().expect("upgrading lock");
        if let Some(module) = upgrading.modules.iter().next() {
            return Err(module.clone());
        }
        upgrading.reloading = true;
        Ok(ReloadSlot { node: self })
    }
}

//! `otter:genserver/log`: guest log lines become `tracing` events tagged with pid and module.

use crate::bindings::otter::genserver::log::{Host, Level};
use crate::host::ProcessCtx;

impl Host for ProcessCtx {
    fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let fields = Fields(&fields);
        let (pid, module) = (self.pid, &*self.module);
        match level {
            Level::Trace => {
                tracing::trace!(target: "otter::guest", pid, module, %fields, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "otter::guest", pid, module, %fields, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "otter::guest", pid, module, %fields, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "otter::guest", pid, module, %fields, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "otter::guest", pid, module, %fields, "{message}")
            }
        }
        Ok(())
    }
}

/// Guest fields printed as `k=v k=v`.
struct Fields<'a>(&'a [(String, String)]);

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

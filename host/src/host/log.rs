//! `otter:genserver/log`: guest log lines become `tracing` events tagged with pid and module.
//!
//! The guest's text is escaped (control characters as `\n`, `\u{1b}`) and cut, so one
//! guest log call is one log line and cannot forge the host's.

use crate::bindings::otter::genserver::log::{Host, Level};
use crate::guest_text::one_line;
use crate::host::ProcessCtx;

use crate::limits::MAX_LOG_TEXT;

impl Host for ProcessCtx {
    fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        // Escaped as the event is written, so a level that is filtered out costs nothing.
        let message = Text(&message);
        let fields = Fields(&fields);
        let (pid, module) = (self.pid, &*self.module);
        if let Some(kept) = self.node.guest_log.get() {
            kept.push(pid, module, level.into(), message.0, fields.0);
        }
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

impl From<Level> for crate::LogLevel {
    fn from(level: Level) -> crate::LogLevel {
        match level {
            Level::Trace => crate::LogLevel::Trace,
            Level::Debug => crate::LogLevel::Debug,
            Level::Info => crate::LogLevel::Info,
            Level::Warn => crate::LogLevel::Warn,
            Level::Error => crate::LogLevel::Error,
        }
    }
}

/// A guest string printed as [`one_line`] makes it, cut at [`MAX_LOG_TEXT`] bytes.
struct Text<'a>(&'a str);

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&one_line(self.0, MAX_LOG_TEXT))
    }
}

/// Guest fields printed as `k=v k=v`, cut with `…` once they take [`MAX_LOG_TEXT`] bytes (a
/// guest may pass any number of them).
struct Fields<'a>(&'a [(String, String)]);

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut written = 0;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if written >= MAX_LOG_TEXT {
                return f.write_str(" …");
            }
            let field = format!(
                "{}{}={}",
                if i > 0 { " " } else { "" },
                one_line(k, MAX_LOG_TEXT),
                one_line(v, MAX_LOG_TEXT)
            );
            written += field.len();
            f.write_str(&field)?;
        }
        Ok(())
    }
}

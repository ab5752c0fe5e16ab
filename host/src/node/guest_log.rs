//! Guest log lines kept for a reader of the node ([`Node::keep_guest_log`]), beside the
//! `tracing` events they become: how a test checks what its server logged.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use super::Node;
use crate::Pid;
use crate::guest_text::one_line;
use crate::limits::MAX_LOG_TEXT;

pub use otter_common::LogLevel;

/// One line a guest logged (`otter_guest::log`), as the node's log shows it: its message
/// and fields escaped to one line each and cut at 4 KiB, the fields cut once they take
/// 4 KiB in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLogLine {
    /// The process that logged it.
    pub pid: Pid,
    /// Its module.
    pub module: String,
    /// Its level.
    pub level: LogLevel,
    /// The message.
    pub message: String,
    /// The fields, in the order given.
    pub fields: Vec<(String, String)>,
}

impl GuestLogLine {
    /// The value of the first field named `key`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `<5> batch INFO flushed a batch items=3`.
impl fmt::Display for GuestLogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        };
        write!(f, "<{}> {} {level} {}", self.pid, self.module, self.message)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// The last lines guests logged, at most `capacity`.
pub(crate) struct GuestLog {
    capacity: usize,
    lines: Mutex<VecDeque<GuestLogLine>>,
}

impl GuestLog {
    /// Keep `line`, forgetting the oldest past the capacity. The texts are cut here, so a
    /// guest that logs its largest strings holds a bounded amount of the node's memory.
    pub(crate) fn push(
        &self,
        pid: Pid,
        module: &str,
        level: LogLevel,
        message: &str,
        fields: &[(String, String)],
    ) {
        // As the node's log shows them: cut once they take MAX_LOG_TEXT bytes, an empty one
        // counting for its `=` (a guest may pass any number of them).
        let mut kept = Vec::new();
        let mut written = 0;
        for (k, v) in fields {
            if written >= MAX_LOG_TEXT {
                break;
            }
            let field = (one_line(k, MAX_LOG_TEXT), one_line(v, MAX_LOG_TEXT));
            written += field.0.len() + field.1.len() + 1;
            kept.push(field);
        }
        let line = GuestLogLine {
            pid,
            module: module.to_owned(),
            level,
            message: one_line(message, MAX_LOG_TEXT),
            fields: kept,
        };
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

impl Node {
    /// Keep the last `lines` lines the node's guests log from now on, for
    /// [`Node::guest_log`] (they still become `tracing` events too). Only the first call
    /// sets the number; by default none are kept. A tool for tests: each kept line may hold
    /// some 12 KiB.
    pub fn keep_guest_log(&self, lines: usize) {
        if lines > 0 {
            let _ = self.inner.guest_log.set(GuestLog {
                capacity: lines,
                lines: Mutex::new(VecDeque::with_capacity(lines.min(1024))),
            });
        }
    }

    /// The guest log lines kept since [`Node::keep_guest_log`], oldest first (none if it
    /// was not called).
    pub fn guest_log(&self) -> Vec<GuestLogLine> {
        match self.inner.guest_log.get() {
            Some(log) => log
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(capacity: usize) -> GuestLog {
        GuestLog {
            capacity,
            lines: Mutex::default(),
        }
    }

    #[test]
    fn a_line_of_the_largest_texts_and_countless_fields_is_kept_cut() {
        let kept = log(1);
        let huge = "x".repeat(1 << 20);
        let empty = vec![(String::new(), String::new()); 1 << 20];
        kept.push(1, "m", LogLevel::Info, &huge, &empty);
        let line = kept.lines.lock().unwrap()[0].clone();
        assert!(line.message.len() <= MAX_LOG_TEXT + '…'.len_utf8());
        assert!(line.fields.len() <= MAX_LOG_TEXT, "{}", line.fields.len());
        let many = vec![(huge.clone(), huge); 64];
        kept.push(1, "m", LogLevel::Info, "", &many);
        let line = kept.lines.lock().unwrap()[0].clone();
        let bytes: usize = line.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= 3 * MAX_LOG_TEXT + 8, "{bytes}");
    }

    #[test]
    fn the_oldest_lines_go_past_the_capacity() {
        let kept = log(2);
        for message in ["a", "b", "c"] {
            kept.push(1, "m", LogLevel::Warn, message, &[]);
        }
        let messages: Vec<_> = kept
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.message.clone())
            .collect();
        assert_eq!(messages, ["b", "c"]);
    }
}

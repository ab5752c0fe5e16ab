//! A guest log line's severity, as the host's kept log and the SDK's test fake record it.

/// How important a guest said its log line is (`otter_guest::log::{trace, debug, info,
/// warn, error}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `otter_guest::log::trace`.
    Trace,
    /// `otter_guest::log::debug`.
    Debug,
    /// `otter_guest::log::info`.
    Info,
    /// `otter_guest::log::warn`.
    Warn,
    /// `otter_guest::log::error`.
    Error,
}

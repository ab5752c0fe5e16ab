//! What client commands print to a stdout that may close.

use std::io::Write;

/// Whoever reads stdout has gone (`EPIPE`, as when piped into `head`). A client command
/// then stops quietly and successfully, as Unix tools do.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
pub(super) struct StdoutClosed;

/// Write `text` to stdout and flush it.
///
/// # Errors
/// [`StdoutClosed`] if the reader has gone; what the OS said otherwise.
pub(super) fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => anyhow::Error::new(StdoutClosed),
            _ => anyhow::Error::new(e).context("writing to stdout"),
        })
}

//! What client commands print: text made safe for a terminal, and a stdout that may close.

use std::borrow::Cow;
use std::io::Write;

/// `text` with control characters (C0, DEL, C1) and backslashes escaped as Rust writes
/// them (`\n`, `\u{1b}`, `\\`), so that text a guest chose (a registered name, a version,
/// an exit reason) cannot start a new row, move the cursor or clear the screen.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || c == '\\';
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_and_backslashes_are_escaped() {
        assert_eq!(escape("echo"), "echo");
        assert_eq!(escape("naïve ✓"), "naïve ✓");
        assert_eq!(
            escape("a\n\u{1b}[2J\t\u{7f}\u{9b}\\b"),
            r"a\n\u{1b}[2J\t\u{7f}\u{9b}\\b"
        );
    }
}

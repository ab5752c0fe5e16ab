//! A WASI guest's stdout and stderr: each line becomes a log event with the process's pid,
//! bounded so that a guest printing in a loop costs the node neither memory nor its log.
//!
//! A line is cut at [`MAX_OUTPUT_LINE`] bytes (the rest of it up to the newline is
//! dropped), and each stream logs at most [`MAX_OUTPUT_LINES`] lines per second, with a
//! burst of as many; lines past that are dropped and counted, and the count is logged with
//! the next line that gets through. A last line without a newline is logged when the
//! instance that wrote it ends (the process exits, hibernates or is upgraded), under the
//! same bounds.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::Pid;
use crate::guest_text::one_line;

/// The longest line of guest output logged; the rest of a longer line is dropped.
pub(crate) const MAX_OUTPUT_LINE: usize = 1024;
/// Lines per second one stream of one process may log.
pub(crate) const MAX_OUTPUT_LINES: u32 = 100;

/// Which of the guest's streams.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One stream of one process, shared by every handle the guest opens on it.
#[derive(Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<Lines>>);

impl GuestOutput {
    pub(crate) fn new(pid: Pid, module: Arc<str>, stream: Stream) -> Self {
        GuestOutput(Arc::new(Mutex::new(Lines {
            pid,
            module,
            stream,
            line: Vec::new(),
            cut: false,
            tokens: MAX_OUTPUT_LINES,
            refilled: Instant::now(),
            dropped: 0,
        })))
    }
}

/// The line being written, and the stream's rate budget.
struct Lines {
    pid: Pid,
    module: Arc<str>,
    stream: Stream,
    line: Vec<u8>,
    /// The line passed [`MAX_OUTPUT_LINE`]: the rest of it is dropped.
    cut: bool,
    tokens: u32,
    refilled: Instant,
    dropped: u64,
}

impl Lines {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let (text, ends) = match chunk.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (chunk, false),
            };
            let room = MAX_OUTPUT_LINE - self.line.len();
            if text.len() > room {
                self.cut = true;
            }
            self.line.extend_from_slice(&text[..text.len().min(room)]);
            if ends {
                self.emit();
            }
        }
    }

    /// Log the line if the budget allows, and start the next.
    fn emit(&mut self) {
        let elapsed = self.refilled.elapsed();
        let earned = (elapsed.as_millis() as u64 * u64::from(MAX_OUTPUT_LINES) / 1000)
            .min(u64::from(MAX_OUTPUT_LINES)) as u32;
        if earned > 0 {
            self.tokens = (self.tokens.saturating_add(earned)).min(MAX_OUTPUT_LINES);
            self.refilled = Instant::now();
        }
        if self.tokens == 0 {
            self.dropped += 1;
        } else {
            self.tokens -= 1;
            let text = String::from_utf8_lossy(&self.line);
            let text = one_line(&text, MAX_OUTPUT_LINE);
            let cut = if self.cut { " …" } else { "" };
            let (pid, module, dropped) = (self.pid, &*self.module, self.dropped);
            match (self.stream, dropped) {
                (Stream::Stdout, 0) => {
                    tracing::info!(target: "otter::guest::stdout", pid, module, "{text}{cut}")
                }
                (Stream::Stdout, _) => {
                    tracing::info!(target: "otter::guest::stdout", pid, module, dropped, "{text}{cut}")
                }
                (Stream::Stderr, 0) => {
                    tracing::warn!(target: "otter::guest::stderr", pid, module, "{text}{cut}")
                }
                (Stream::Stderr, _) => {
                    tracing::warn!(target: "otter::guest::stderr", pid, module, dropped, "{text}{cut}")
                }
            }
            self.dropped = 0;
        }
        self.line.clear();
        self.cut = false;
    }
}

impl Drop for Lines {
    /// Every handle on the stream is gone with its instance: what is left of the last line
    /// is logged rather than lost.
    fn drop(&mut self) {
        if !self.line.is_empty() || self.cut {
            self.emit();
        }
        // Lines dropped since the last one logged are counted, not forgotten.
        if self.dropped > 0 {
            let (pid, module, dropped) = (self.pid, &*self.module, self.dropped);
            tracing::warn!(target: "otter::guest", pid, module, dropped,
                "output lines dropped (over the rate limit) before the instance ended");
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A poisoned lock only means a log call panicked; the buffer is still sound.
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

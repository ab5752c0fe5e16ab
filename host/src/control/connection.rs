//! Serving one control connection: request lines read with a bound on their length and on
//! the time they take, each answered in order.

use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};

use super::slots::{Idle, Slots};
use super::{App, ControlError, ErrorKind, Limits, Request, Response, handle_app};
use crate::node::Node;

/// What every connection of one endpoint shares.
pub(super) struct Shared {
    pub(super) node: Node,
    pub(super) app: Option<Arc<App>>,
    pub(super) limits: Limits,
    pub(super) slots: Arc<Slots>,
    /// How many requests are being answered.
    pub(super) in_flight: Arc<watch::Sender<usize>>,
}

/// What waiting for the next request ended with.
pub(crate) enum Next {
    /// A whole line is in the buffer (without its newline).
    Line,
    /// The client closed the connection.
    Closed,
    /// The line is longer than the limit.
    TooLong,
    /// No whole line within the idle timeout.
    Idle,
    /// A new connection took this one's slot.
    Evicted,
}

/// A connection admitted under the cap, counted as idle from the moment it is accepted
/// (so that a burst of new ones can already take its place).
pub(super) struct Admitted {
    stream: UnixStream,
    /// Its place under the connection cap, given back when it is dropped.
    _slot: OwnedSemaphorePermit,
    close: Arc<Notify>,
    idle: Idle,
}

impl Admitted {
    pub(super) fn new(slots: &Arc<Slots>, stream: UnixStream, slot: OwnedSemaphorePermit) -> Self {
        let close = Arc::new(Notify::new());
        Admitted {
            stream,
            _slot: slot,
            idle: slots.idle(&close),
            close,
        }
    }
}

/// Serve a connection until it closes, times out or misbehaves.
pub(super) async fn serve(shared: Arc<Shared>, admitted: Admitted) {
    let Admitted {
        stream,
        _slot,
        close,
        idle,
    } = admitted;
    let limits = shared.limits;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let mut idle = Some(idle);
    loop {
        line.clear();
        let next = {
            let _idle = idle.take().unwrap_or_else(|| shared.slots.idle(&close));
            tokio::select! {
                biased;
                () = close.notified() => Next::Evicted,
                read = tokio::time::timeout(
                    limits.idle_timeout,
                    read_line(&mut reader, &mut line, limits.max_request_bytes),
                ) => match read {
                    Ok(Ok(next)) => next,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "control connection: read failed");
                        return;
                    }
                    Err(_) => Next::Idle,
                },
            }
        };
        let last = match next {
            Next::Line => None,
            Next::Closed => return,
            Next::TooLong => Some(error(
                ErrorKind::Badrequest,
                format!(
                    "the request line is longer than {} bytes; closing the connection",
                    limits.max_request_bytes
                ),
            )),
            Next::Idle => Some(error(
                ErrorKind::Timeout,
                format!(
                    "no whole request within {} ms; closing the connection",
                    limits.idle_timeout.as_millis()
                ),
            )),
            Next::Evicted => Some(busy(
                "the node is at its limit of control connections and this one was idle the longest; closing it",
            )),
        };
        if let Some(last) = last {
            tracing::debug!(answer = ?last, "control connection: closing");
            let _ = write_answer(&mut write, &last, &limits).await;
            return;
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        // Counted from the request until its answer is written (or writing fails).
        shared.in_flight.send_modify(|n| *n += 1);
        let _answered = Answered(&shared.in_flight);
        let response = match decode_request(&line) {
            Ok(request) => {
                tracing::debug!(?request, "control request");
                let abandon = request.abandoned_with_its_client();
                let answer = handle_app(&shared.node, shared.app.as_deref(), request);
                if !abandon {
                    answer.await
                } else if let Some(response) = unless_client_leaves(answer, &mut reader).await {
                    response
                } else {
                    tracing::debug!("control connection: the client left; its request abandoned");
                    return;
                }
            }
            Err(refusal) => refusal,
        };
        if write_answer(&mut write, &response, &limits).await.is_err() {
            return;
        }
    }
}

/// `answer`, or `None` if the client closes its side first: a request that waits on a
/// process for as long as the client asked (a call with a long timeout, a state of a process
/// stuck in a callback) would otherwise hold its connection slot after the client is gone.
/// What the client sends meanwhile (its next request) stays unread until then.
async fn unless_client_leaves(
    answer: impl Future<Output = Response>,
    reader: &mut BufReader<OwnedReadHalf>,
) -> Option<Response> {
    let mut answer = std::pin::pin!(answer);
    tokio::select! {
        biased;
        response = &mut answer => return Some(response),
        read = reader.fill_buf() => {
            if read.map_or(true, |bytes| bytes.is_empty()) {
                return None;
            }
        }
    }
    Some(answer.await)
}

/// A request line (without its newline) as the request it holds, or the `badrequest`
/// answer that refuses it.
pub(crate) fn decode_request(line: &[u8]) -> Result<Request, Response> {
    let text = std::str::from_utf8(line).map_err(|e| {
        error(
            ErrorKind::Badrequest,
            format!("the request is not UTF-8 (byte offset {})", e.valid_up_to()),
        )
    })?;
    serde_json::from_str(text).map_err(|e| error(ErrorKind::Badrequest, e.to_string()))
}

/// Read up to and including a newline into `line`, holding at most `max + 1` bytes of it.
pub(crate) async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Next> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.take(limit).read_until(b'\n', line).await?;
    Ok(if n == 0 {
        Next::Closed
    } else if line.last() == Some(&b'\n') {
        line.pop();
        Next::Line
    } else if line.len() > max {
        Next::TooLong
    } else {
        // The last line, ended by the client closing its side.
        Next::Line
    })
}

/// Write one answer line, giving up if the client does not take it within the idle timeout.
async fn write_answer(
    write: &mut OwnedWriteHalf,
    response: &Response,
    limits: &Limits,
) -> std::io::Result<()> {
    let out = answer_line(response);
    match tokio::time::timeout(limits.idle_timeout, write.write_all(&out)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// A response as the line sent for it.
pub(crate) fn answer_line(response: &Response) -> Vec<u8> {
    let mut out = serde_json::to_vec(response).expect("responses are JSON");
    out.push(b'\n');
    out
}

pub(super) fn busy(message: &str) -> Response {
    error(ErrorKind::Busy, message)
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ControlError::new(kind, message))
}

/// Counts a request as answered when dropped, however its connection task ends.
struct Answered<'a>(&'a watch::Sender<usize>);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

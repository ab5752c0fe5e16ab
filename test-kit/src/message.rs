//! What a probe's or a mock's mailbox holds ([`Message`]), and how a pattern in
//! [`assert_receive!`](crate::assert_receive) sees it ([`Receive`] and its matchers).

use std::fmt;

use otter::{ExitReason, MonitorRef, Pid, Term};
use serde::de::DeserializeOwned;

/// One message in a probe's or a mock's mailbox, as it arrived: the bodies are CBOR terms.
///
/// Patterns rarely name it: they name the decoded body (a plain message), or one of the
/// matchers [`Cast`], [`Call`], [`Down`], [`Exit`], [`Timer`]. Matching `Message` itself
/// takes any message, undecoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A plain message (`send`), which a server would get in `handle_info`.
    Info(Term),
    /// A cast.
    Cast(Term),
    /// A call. A probe never answers one (`reply` is `None`; its caller waits until it
    /// times out or the probe ends); a mock's calls carry the reply it gave.
    Call {
        /// The calling process.
        caller: Pid,
        /// The request.
        request: Term,
        /// What a mock answered.
        reply: Option<Term>,
    },
    /// A monitored process exited.
    Down {
        /// The monitor, as [`Probe::monitor`](crate::Probe::monitor) returned it.
        monitor: MonitorRef,
        /// The process that exited.
        pid: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// An exit signal, received as a message because the probe traps exits.
    Exit {
        /// The linked process that exited, or the sender of the signal.
        from: Pid,
        /// Its reason.
        reason: ExitReason,
    },
    /// A timer another process armed at this one fired.
    Timer {
        /// The timer's reference.
        timer: u64,
        /// Its message.
        msg: Term,
    },
}

impl From<otter::Received> for Message {
    fn from(received: otter::Received) -> Message {
        match received {
            otter::Received::Message(term) => Message::Info(term),
            otter::Received::Cast(term) => Message::Cast(term),
            // Dropped unanswered, the call stays pending until its caller gives up.
            otter::Received::Call(call) => Message::Call {
                caller: call.caller(),
                request: call.request().clone(),
                reply: None,
            },
            otter::Received::Down {
                monitor,
                pid,
                reason,
            } => Message::Down {
                monitor,
                pid,
                reason,
            },
            otter::Received::Exit { from, reason } => Message::Exit { from, reason },
            otter::Received::Timer { timer, msg } => Message::Timer { timer, msg },
        }
    }
}

/// Shown as a person reads it: kind, then the body as JSON-like text (bounded).
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = otter_common::shown;
        match self {
            Message::Info(term) => write!(f, "message {}", shown(term)),
            Message::Cast(term) => write!(f, "cast {}", shown(term)),
            Message::Call {
                caller,
                request,
                reply,
            } => {
                write!(f, "call from <{caller}> {}", shown(request))?;
                match reply {
                    Some(reply) => write!(f, " -> replied {}", shown(reply)),
                    None => f.write_str(" (unanswered)"),
                }
            }
            Message::Down {
                monitor,
                pid,
                reason,
            } => write!(f, "DOWN <{pid}> (monitor {monitor}): {reason}"),
            Message::Exit { from, reason } => write!(f, "EXIT from <{from}>: {reason}"),
            Message::Timer { timer, msg } => write!(f, "timer {timer}: {}", shown(msg)),
        }
    }
}

/// What a pattern of [`assert_receive!`](crate::assert_receive) or
/// [`refute_receive!`](crate::refute_receive) is matched against: the macro decodes each
/// message as the type the pattern names, and a message that is not one is no match.
///
/// - any `T: Deserialize`: a plain message (`send`) whose body decodes as `T`;
/// - [`Cast<T>`], [`Call<T>`], [`Timer<T>`]: a cast, call or timer message whose body does;
/// - [`Down`], [`Exit`]: a monitor's `DOWN`, a trapped exit signal;
/// - [`Message`]: any message, undecoded.
pub trait Receive: Sized {
    /// `message` as `Self`, if it is one.
    fn receive(message: &Message) -> Option<Self>;

    /// Why `message` is of the kind `Self` takes yet not a `Self` (a body that does not
    /// decode), for the failure report.
    fn mismatch(message: &Message) -> Option<String> {
        let _ = message;
        None
    }
}

fn decoded<T: DeserializeOwned>(term: &Term) -> Option<T> {
    otter::decode(term).ok()
}

fn why_not<T: DeserializeOwned>(term: &Term) -> Option<String> {
    otter::decode::<T>(term)
        .err()
        .map(|e| format!("does not decode as {}: {}", short_type_name::<T>(), e.0))
}

impl<T: DeserializeOwned> Receive for T {
    fn receive(message: &Message) -> Option<T> {
        match message {
            Message::Info(term) => decoded(term),
            _ => None,
        }
    }

    fn mismatch(message: &Message) -> Option<String> {
        match message {
            Message::Info(term) => why_not::<T>(term),
            _ => None,
        }
    }
}

/// Matches a cast whose body decodes as `T`: `Cast(Note::Hello)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast<T>(pub T);

impl<T: DeserializeOwned> Receive for Cast<T> {
    fn receive(message: &Message) -> Option<Self> {
        match message {
            Message::Cast(term) => decoded(term).map(Cast),
            _ => None,
        }
    }

    fn mismatch(message: &Message) -> Option<String> {
        match message {
            Message::Cast(term) => why_not::<T>(term),
            _ => None,
        }
    }
}

/// Matches a call whose request decodes as `T`: `Call(Req::Get(key))`. On a mock, the call
/// has been answered; on a probe it is never answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<T>(pub T);

impl<T: DeserializeOwned> Receive for Call<T> {
    fn receive(message: &Message) -> Option<Self> {
        match message {
            Message::Call { request, .. } => decoded(request).map(Call),
            _ => None,
        }
    }

    fn mismatch(message: &Message) -> Option<String> {
        match message {
            Message::Call { request, .. } => why_not::<T>(request),
            _ => None,
        }
    }
}

/// Matches a timer message whose body decodes as `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timer<T>(pub T);

impl<T: DeserializeOwned> Receive for Timer<T> {
    fn receive(message: &Message) -> Option<Self> {
        match message {
            Message::Timer { msg, .. } => decoded(msg).map(Timer),
            _ => None,
        }
    }

    fn mismatch(message: &Message) -> Option<String> {
        match message {
            Message::Timer { msg, .. } => why_not::<T>(msg),
            _ => None,
        }
    }
}

/// Matches a monitor's `DOWN`: `Down { pid, reason: ExitReason::Normal, .. }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// The monitor.
    pub monitor: MonitorRef,
    /// The process that exited.
    pub pid: Pid,
    /// Why.
    pub reason: ExitReason,
}

impl Receive for Down {
    fn receive(message: &Message) -> Option<Self> {
        match message {
            Message::Down {
                monitor,
                pid,
                reason,
            } => Some(Down {
                monitor: *monitor,
                pid: *pid,
                reason: reason.clone(),
            }),
            _ => None,
        }
    }
}

/// Matches an exit signal the probe received as a message (it traps exits):
/// `Exit { from, reason: ExitReason::Error(_) }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Who sent it.
    pub from: Pid,
    /// Its reason.
    pub reason: ExitReason,
}

impl Receive for Exit {
    fn receive(message: &Message) -> Option<Self> {
        match message {
            Message::Exit { from, reason } => Some(Exit {
                from: *from,
                reason: reason.clone(),
            }),
            _ => None,
        }
    }
}

impl Receive for Message {
    fn receive(message: &Message) -> Option<Self> {
        Some(message.clone())
    }
}

/// `T`'s name without module paths: `Option<String>`, not
/// `core::option::Option<alloc::string::String>`.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let mut short = String::new();
    let mut segment = String::new();
    for c in std::any::type_name::<T>().chars() {
        if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else if c == ':' {
            // A path separator: what came before was a module.
            segment.clear();
        } else {
            short.push_str(&segment);
            segment.clear();
            short.push(c);
        }
    }
    short + &segment
}

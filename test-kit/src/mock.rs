//! Mock servers, as Mox's: registered under a name the guest under test calls or casts to,
//! answering from expectations and stubs, recording what they got, verified at the end.

use std::fmt::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use otter::{EmbeddedProcess, ExitReason, Pid, Received, Term, decode, encode};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::inbox::{Inbox, Mailbox};
use crate::message::{Message, short_type_name};

/// How long [`Mock::verify`] waits for expectations still short to be met: casts reach a
/// mock after the guest's callback has returned.
pub const VERIFY_GRACE: Duration = Duration::from_millis(100);

/// A mock server: an [`EmbeddedProcess`] registered under a name the server under test
/// calls or casts to, that answers calls from expectations and stubs, and records all it
/// receives. Made with [`TestNode::mock`](crate::TestNode::mock).
///
/// ```no_run
/// # async fn demo(node: &otter_test::TestNode) {
/// use otter_test::{Cast, assert_receive, reply};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// #[serde(rename_all = "snake_case")]
/// enum StoreCall { Get(String) }
///
/// let store = node.mock("kv");
/// // Answers exactly two calls with this closure; a third is unexpected.
/// store.expect_call(2, |StoreCall::Get(key)| Some(format!("value of {key}")));
/// // Then answers any number of calls with a canned reply.
/// store.stub_call(reply(Option::<String>::None));
/// // Accepts one cast.
/// store.expect_cast(1);
///
/// // ... exercise the server under test ...
///
/// // What it got can be asserted on, as on a probe; this waits for the cast.
/// assert_receive!(store, Cast(serde_json::Value::Object(_)));
/// // Expectations met, nothing unexpected: else this panics listing what it received.
/// store.verify().await;
/// # }
/// ```
///
/// ## Expectations
///
/// Calls are answered by the first [`expect_call`](Mock::expect_call) not yet used up, in
/// the order they were set, then by the [`stub_call`](Mock::stub_call) if any. Casts count
/// against [`expect_cast`](Mock::expect_cast) the same way, then
/// [`stub_cast`](Mock::stub_cast). Plain messages (`send`) are recorded and need no
/// expectation.
///
/// A call nothing answers, one whose request does not decode as the handler's type, or
/// whose handler panics, is *unexpected*: the mock exits at once with a reason saying so,
/// so the guest's call fails with that reason (`exited: error(mock ...)`) instead of
/// waiting for its timeout, and [`verify`](Mock::verify) reports it. An unexpected cast is
/// recorded and reported by `verify`; the mock lives on.
///
/// ## Recording
///
/// Everything it receives stays in [`received`](Mock::received) (calls with the reply they
/// got), and also goes to a mailbox that [`assert_receive!`](crate::assert_receive) reads
/// as a probe's: `Call(request)`, `Cast(msg)`, plain messages.
///
/// Dropping the mock ends its process; it does not verify.
pub struct Mock {
    shared: Arc<Shared>,
    task: AbortHandle,
}

pub(crate) struct Shared {
    name: String,
    pid: Pid,
    inbox: Inbox,
    state: Mutex<State>,
    /// Told whenever something is recorded, for `verify`'s wait.
    recorded: Notify,
}

/// Answers a call's request, or says why it cannot.
type Handler = Box<dyn FnMut(&Term) -> Result<Term, String> + Send>;

struct Expectation {
    times: usize,
    seen: usize,
    handler: Option<Handler>,
    /// `expect_call #1 (times 2, Req -> Resp)`.
    label: String,
}

#[derive(Default)]
struct State {
    calls: Vec<Expectation>,
    call_stub: Option<Handler>,
    casts: Vec<Expectation>,
    cast_stub: bool,
    history: Vec<Message>,
    unexpected: Vec<String>,
}

impl Mock {
    pub(crate) fn start(process: EmbeddedProcess, name: &str) -> Mock {
        if let Err(e) = process.register(name) {
            panic!("registering the mock `{name}`: {e}");
        }
        let pid = process.pid();
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            pid,
            inbox: Inbox::fed(format!("mock `{name}` <{pid}>")),
            state: Mutex::default(),
            recorded: Notify::new(),
        });
        let task = tokio::spawn(serve(process, shared.clone())).abort_handle();
        Mock { shared, task }
    }

    /// The name it is registered under.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.shared.pid
    }

    /// Expect exactly `times` calls, answered with `handler`'s reply to each request.
    /// Expectations are used in the order they were set.
    pub fn expect_call<Req, Resp, F>(&self, times: usize, handler: F) -> &Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: FnMut(Req) -> Resp + Send + 'static,
    {
        let mut state = self.shared.state();
        let label = format!(
            "expect_call #{} ({times} call{}, {} -> {})",
            state.calls.len() + 1,
            plural(times),
            short_type_name::<Req>(),
            short_type_name::<Resp>()
        );
        state.calls.push(Expectation {
            times,
            seen: 0,
            handler: Some(typed(handler)),
            label,
        });
        self
    }

    /// Answer any number of calls, once the expectations are used up, with `handler`
    /// (replacing an earlier stub).
    pub fn stub_call<Req, Resp, F>(&self, handler: F) -> &Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: FnMut(Req) -> Resp + Send + 'static,
    {
        self.shared.state().call_stub = Some(typed(handler));
        self
    }

    /// Expect exactly `times` casts, whatever they hold (assert on their content with
    /// [`assert_receive!`](crate::assert_receive) and [`Cast`](crate::Cast), or
    /// [`Mock::casts`]).
    pub fn expect_cast(&self, times: usize) -> &Self {
        let mut state = self.shared.state();
        let label = format!(
            "expect_cast #{} ({times} cast{})",
            state.casts.len() + 1,
            plural(times)
        );
        state.casts.push(Expectation {
            times,
            seen: 0,
            handler: None,
            label,
        });
        self
    }

    /// Accept any number of casts once the expectations are used up.
    pub fn stub_cast(&self) -> &Self {
        self.shared.state().cast_stub = true;
        self
    }

    /// Everything it has received, in order (calls with the reply they got).
    pub fn received(&self) -> Vec<Message> {
        self.shared.state().history.clone()
    }

    /// The requests of the calls it has received, decoded.
    ///
    /// # Panics
    /// If one does not decode as `T`.
    pub fn calls<T: DeserializeOwned>(&self) -> Vec<T> {
        self.bodies(|m| match m {
            Message::Call { request, .. } => Some(request),
            _ => None,
        })
    }

    /// The casts it has received, decoded.
    ///
    /// # Panics
    /// If one does not decode as `T`.
    pub fn casts<T: DeserializeOwned>(&self) -> Vec<T> {
        self.bodies(|m| match m {
            Message::Cast(term) => Some(term),
            _ => None,
        })
    }

    fn bodies<T: DeserializeOwned>(&self, body: impl Fn(&Message) -> Option<&Term>) -> Vec<T> {
        let state = self.shared.state();
        state
            .history
            .iter()
            .filter_map(|m| body(m).map(|term| (m, term)))
            .map(|(m, term)| match decode(term) {
                Ok(value) => value,
                Err(e) => panic!(
                    "{} received {m}, which does not decode as {}: {}",
                    self.shared.inbox.owner(),
                    short_type_name::<T>(),
                    e.0
                ),
            })
            .collect()
    }

    /// Check that every expectation was met and nothing unexpected came, waiting up to
    /// [`VERIFY_GRACE`] for expectations still short (a cast arrives after the callback that
    /// made it has returned).
    ///
    /// # Panics
    /// Listing each expectation not met, each unexpected call or cast, and everything the
    /// mock received.
    pub async fn verify(&self) {
        self.shared.verify().await;
    }

    /// What a node keeps of its mocks, to verify them all.
    pub(crate) fn shared(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }
}

impl Shared {
    /// See [`Mock::verify`].
    pub(crate) async fn verify(&self) {
        let deadline = tokio::time::Instant::now() + VERIFY_GRACE;
        loop {
            let recorded = self.recorded.notified();
            if self.problems().is_empty() {
                return;
            }
            let only_short = self.state().unexpected.is_empty();
            if !only_short || tokio::time::timeout_at(deadline, recorded).await.is_err() {
                panic!("{}", self.report(&self.problems()));
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A handler that panicked is caught outside the lock; nothing else panics in it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answer a call, or say why it is unexpected.
    fn answer(&self, request: &Term) -> Result<Term, String> {
        // The handler runs outside the lock, so that it may use the mock's handle.
        let (index, mut handler) = {
            let mut state = self.state();
            match state.calls.iter_mut().position(|e| e.seen < e.times) {
                Some(i) => {
                    state.calls[i].seen += 1;
                    (Some(i), state.calls[i].handler.take())
                }
                None => (None, state.call_stub.take()),
            }
        };
        let Some(handler_fn) = handler.as_mut() else {
            return Err("no expectation left and no stub".to_owned());
        };
        let answer = catch_unwind(AssertUnwindSafe(|| handler_fn(request)))
            .unwrap_or_else(|panic| Err(format!("its handler panicked: {}", panic_text(&panic))));
        let mut state = self.state();
        match index {
            Some(i) => state.calls[i].handler = handler,
            None if state.call_stub.is_none() => state.call_stub = handler,
            None => {}
        }
        answer
    }

    /// Count a cast against the expectations; `false` if it is unexpected.
    fn cast(&self) -> bool {
        let mut state = self.state();
        match state.casts.iter_mut().find(|e| e.seen < e.times) {
            Some(e) => {
                e.seen += 1;
                true
            }
            None => state.cast_stub,
        }
    }

    fn record(&self, message: Message) {
        self.state().history.push(message.clone());
        self.inbox.push(message);
        self.recorded.notify_waiters();
    }

    fn unexpected(&self, what: String) {
        self.state().unexpected.push(what);
        self.recorded.notify_waiters();
    }

    /// What `verify` complains about, one line each.
    fn problems(&self) -> Vec<String> {
        let state = self.state();
        let short = state
            .calls
            .iter()
            .chain(&state.casts)
            .filter(|e| e.seen < e.times)
            .map(|e| format!("{}: received {}", e.label, e.seen));
        let unexpected = state.unexpected.iter().map(|u| format!("unexpected {u}"));
        short.chain(unexpected).collect()
    }

    fn report(&self, problems: &[String]) -> String {
        let mut text = format!("{} was not used as expected:", self.inbox.owner());
        for p in problems {
            let _ = write!(text, "\n  - {p}");
        }
        let history = &self.state().history;
        if history.is_empty() {
            text.push_str("\nit received nothing");
        } else {
            let _ = write!(
                text,
                "\nit received {} message{}:",
                history.len(),
                plural(history.len())
            );
            for (n, m) in history.iter().enumerate() {
                let _ = write!(text, "\n  {}. {m}", n + 1);
            }
        }
        text
    }
}

/// The mock's process: answer, record, until the handle is dropped or a call is unexpected.
async fn serve(process: EmbeddedProcess, shared: Arc<Shared>) {
    while let Ok(received) = process.receive(None).await {
        match received {
            Received::Call(call) => {
                let (caller, request) = (call.caller(), call.request().clone());
                match shared.answer(&request) {
                    Ok(reply) => {
                        // Recorded before the reply, so that the caller, once answered,
                        // finds the call in the mock's records.
                        shared.record(Message::Call {
                            caller,
                            request,
                            reply: Some(reply.clone()),
                        });
                        call.reply(reply);
                    }
                    Err(why) => {
                        let what = format!(
                            "call from <{caller}> {}: {why}",
                            otter_common::shown(&request)
                        );
                        shared.record(Message::Call {
                            caller,
                            request,
                            reply: None,
                        });
                        shared.unexpected(what.clone());
                        // Left pending, the call is answered with the exit reason.
                        drop(call);
                        process.close(ExitReason::Error(format!(
                            "mock `{}`: unexpected {what}",
                            shared.name
                        )));
                        return;
                    }
                }
            }
            Received::Cast(term) => {
                if !shared.cast() {
                    shared.unexpected(format!(
                        "cast {}: no expectation left and no stub",
                        otter_common::shown(&term)
                    ));
                }
                shared.record(Message::Cast(term));
            }
            other => shared.record(other.into()),
        }
    }
}

impl Mailbox for Mock {
    fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        // The task owns the process; dropped with it, the process ends `normal`.
        self.task.abort();
    }
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("name", &self.shared.name)
            .field("pid", &self.shared.pid)
            .finish_non_exhaustive()
    }
}

/// A handler that answers every request with `value`, whatever the request:
/// `mock.expect_call(1, reply("ok"))`.
pub fn reply<T: Serialize + Clone + Send + 'static>(
    value: T,
) -> impl FnMut(IgnoredAny) -> T + Send + 'static {
    move |_| value.clone()
}

fn typed<Req, Resp, F>(mut handler: F) -> Handler
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnMut(Req) -> Resp + Send + 'static,
{
    Box::new(move |request: &Term| {
        let request: Req = decode(request)
            .map_err(|e| format!("does not decode as {}: {}", short_type_name::<Req>(), e.0))?;
        encode(&handler(request)).map_err(|e| format!("its reply does not encode: {}", e.0))
    })
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-text panic)".to_owned()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

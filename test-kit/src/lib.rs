//! Testing your Otter server from `#[tokio::test]`, as ExUnit, `assert_receive` and Mox
//! test an Elixir GenServer: a node with your `.wasm`, a test process whose mailbox the
//! test reads, and mock servers under the names your server calls.
//!
//! A read-through cache (this repository's `guests/kv_cache`) calls the store named in its
//! args on a miss, casts writes to it, and tells subscribers what changed. Its test mocks
//! the store and subscribes a probe:
//!
//! ```no_run
//! use otter_test::{Cast, TestNode, assert_receive, refute_receive};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! // The messages, typed as your server writes them.
//! #[derive(Deserialize, Debug, PartialEq)]
//! #[serde(rename_all = "snake_case")]
//! enum StoreCall { Get(String) }
//!
//! #[derive(Deserialize, Debug, PartialEq)]
//! #[serde(rename_all = "snake_case")]
//! enum StoreCast { Put(String, String) }
//!
//! #[derive(Deserialize, Debug, PartialEq)]
//! #[serde(rename_all = "snake_case")]
//! enum Event { Changed { key: String, value: String } }
//!
//! #[tokio::test]
//! async fn a_miss_asks_the_store_once_and_a_put_tells_subscribers() {
//!     let node = TestNode::with_modules([("kv_cache", "target/wasm32-unknown-unknown/release/kv_cache.wasm")]).await;
//!
//!     // A mock under the name the cache calls: one `get`, answered by a closure.
//!     let store = node.mock("store");
//!     store.expect_call(1, |StoreCall::Get(key)| Some(format!("{key}!")));
//!     store.expect_cast(1);
//!
//!     let cache = node.start_server("kv_cache").name("cache").args(&json!({"store": "store"})).await;
//!
//!     // The test's own process: it calls, and its mailbox is asserted on.
//!     let probe = node.probe();
//!     let _: String = probe.call(cache, &json!({"subscribe": probe.pid()})).await.unwrap();
//!
//!     let first: Option<String> = probe.call("cache", &json!({"get": "a"})).await.unwrap();
//!     let again: Option<String> = probe.call("cache", &json!({"get": "a"})).await.unwrap();
//!     assert_eq!((first.as_deref(), again.as_deref()), (Some("a!"), Some("a!")));
//!     assert_eq!(store.calls::<StoreCall>(), [StoreCall::Get("a".into())]);
//!
//!     let _: String = probe.call("cache", &json!({"put": ["b", "2"]})).await.unwrap();
//!     // Waits up to 100 ms for a message that matches; returns what `=>` says.
//!     let value = assert_receive!(probe, Event::Changed { key, value } if key == "b" => value);
//!     assert_eq!(value, "2");
//!     // Nothing more comes within 100 ms.
//!     refute_receive!(probe, Event::Changed { .. });
//!     // A mock's mailbox is asserted on the same way.
//!     assert_receive!(store, Cast(StoreCast::Put(k, v)) if k == "b" && v == "2");
//!
//!     // Every expectation met, nothing unexpected; else a panic lists what came.
//!     node.verify_mocks().await;
//! }
//! ```
//!
//! ## The node
//!
//! [`TestNode`] loads modules by name from `.wasm` paths and starts servers:
//! `node.start_server("kv").name("kv").args(&args).await` gives the pid, panicking with the
//! reason if `init` fails ([`StartServer::try_start`] returns it instead). It derefs to
//! [`otter::Node`] for the rest: `call`, `cast`, `stop`, `kill`, `get_state`, `whereis`.
//!
//! ## Probes and `assert_receive!`
//!
//! A [`Probe`] is a process of the test: give its pid to your server, and assert on what it
//! sends with [`assert_receive!`] (wait up to a timeout, default 100 ms as in ExUnit),
//! [`refute_receive!`] (nothing matching within the timeout), [`assert_received!`] and
//! [`refute_received!`] (no waiting). A pattern names the type it decodes a message as:
//! your serde type for a plain message; [`Cast`], [`Call`], [`Timer`] around it for those
//! kinds; [`Down`] and [`Exit`] for monitors and trapped exits; [`Message`] for anything.
//!
//! Receive is *selective*, as Erlang's: the first message that matches is taken; the
//! others stay in the mailbox, in order, for later assertions. A failing assertion panics
//! with the pattern and every message in the mailbox, shown as JSON-like text, with why
//! each did not decode as the pattern's type:
//!
//! ```text
//! assert_receive!: no message matching `Event::Changed { key, .. } if key == "b"` reached probe <4> within 100ms
//! probe <4>'s mailbox holds 2 messages:
//!   1. message {"changed": {"key": "a", "value": "1"}}
//!   2. message "hello"
//!      (does not decode as my_test::Event: ...)
//! ```
//!
//! ## Mocks
//!
//! A [`Mock`] is registered under a name your server calls or casts to. It answers calls
//! from [`expect_call`](Mock::expect_call)`(times, handler)` (used in order, each exactly
//! `times`) then [`stub_call`](Mock::stub_call)`(handler)`; [`reply`]`(value)` is a handler
//! with a canned answer. Casts count against [`expect_cast`](Mock::expect_cast) and
//! [`stub_cast`](Mock::stub_cast). A call nothing answers makes the mock exit at once, so
//! your server's call fails with a reason naming the mock instead of waiting 5 s.
//! [`Mock::verify`] (or [`TestNode::verify_mocks`]) panics if an expectation is short or
//! something unexpected came, listing all the mock received. Mocks record everything
//! ([`Mock::received`], [`Mock::calls`], [`Mock::casts`]) and are mailboxes too:
//! `assert_receive!(mock, Call(Req::Get(key)) => key)`.
//!
//! ## The log
//!
//! What your servers log (`otter_guest::log`) is kept: [`TestNode::log`] lists it, and
//! [`TestNode::assert_logged`] waits for a line that matches, failing with the whole log.
//!
//! ## Files
//!
//! A server built for WASI (`wasm32-wasip2`, `std::fs`) reaches only the directories its
//! module is granted: [`TestNode::grant_dir`] grants one (a temporary directory of the
//! test, say) to the servers started after it, and the test reads what they wrote there.
//! [`Node::stop`](otter::Node::stop) returns once `terminate` has run, so what `terminate`
//! writes is in the file by then.
//!
//! ## Databases
//!
//! A server using the `sql` interface opens only the SQLite files its module is granted:
//! [`TestNode::grant_database`] grants one under the name the server opens, and the test
//! reads the file itself (with `rusqlite`, say) to check what was written.
//!
//! ## Runtime
//!
//! Either flavour of `#[tokio::test]` works. On the default current-thread runtime the
//! node's processes run on the test's thread whenever the test awaits (a call, an
//! assertion's wait); `#[tokio::test(flavor = "multi_thread")]` runs them beside it.
#![warn(missing_docs, unreachable_pub)]

mod assert;
mod inbox;
mod message;
mod mock;
mod node;
mod probe;

pub use assert::{DEFAULT_RECEIVE_TIMEOUT, DEFAULT_REFUTE_TIMEOUT};
pub use inbox::Mailbox;
pub use message::{Call, Cast, Down, Exit, Message, Receive, Timer};
pub use mock::{Mock, VERIFY_GRACE, reply};
pub use node::{KEPT_LOG_LINES, StartServer, TestNode};
pub use probe::Probe;

/// The host library the kit drives, for what a test needs beyond the kit ([`otter::Node`]'s
/// whole API, [`otter::CallError`], [`otter::SpawnOptions`], ...).
pub use otter;
pub use otter::{ExitReason, GuestLogLine, LogLevel, Pid};

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::assert::{Matcher, inbox, matcher, missed, refuted};
    pub use crate::inbox::{Inbox, Missed};
}

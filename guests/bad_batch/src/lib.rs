//! A hostile test module: a server whose `handle-batch` lies, as its start argument says.
//!
//! - `"none"`: says it handled no message.
//! - `"more"`: says it handled one message more than the batch holds.
//! - `"kind"`: answers every message with a cast's outcome, calls too.
//! - `"extra"`: handles the batch honestly, then adds an outcome nobody asked for.
//! - `"past_stop"`: answers every call with a reply that asks for a timeout (which ends a
//!   batch), and says it handled them all.
//! - anything else: honest.
//!
//! `export_genserver!` writes every export from the SDK's glue, so this crate writes the
//! exports by hand, each but `handle-batch` going to the glue.

use otter_guest::__private::bindings::otter::genserver::types::Next;
use otter_guest::__private::{
    BatchResult, CallResult, Envelope, Guest, InitResult, NoreplyResult, Outcome, WitExitReason,
    WitFrom, WitInfo,
};
use otter_guest::{GenServer, Init, Reply, ReplyTo};

/// The server: remembers how its `handle-batch` lies, and answers every call with `"ok"`.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Liar {
    mode: String,
}

impl GenServer for Liar {
    type Args = String;
    type Call = serde::de::IgnoredAny;
    type Reply = String;
    type Cast = serde::de::IgnoredAny;
    type Info = ();
    type Continue = ();

    fn init(mode: String) -> Init<Self> {
        Init::ok(Liar { mode })
    }

    fn handle_call(&mut self, _: serde::de::IgnoredAny, _from: ReplyTo) -> Reply<String> {
        Reply::ok("ok".to_owned())
    }
}

otter_guest::__private::process_local! {
    static STATE: std::cell::Cell<Option<Liar>> = std::cell::Cell::new(None);
}

fn mode() -> String {
    STATE.with(|s| {
        let state = s.take();
        let mode = state.as_ref().map(|l| l.mode.clone()).unwrap_or_default();
        s.set(state);
        mode
    })
}

struct Export;

impl Guest for Export {
    fn init(args: Vec<u8>) -> InitResult {
        otter_guest::__private::init::<Liar>(&STATE, args)
    }
    fn handle_call(request: Vec<u8>, from: WitFrom) -> CallResult {
        otter_guest::__private::handle_call::<Liar>(&STATE, &request, from)
    }
    fn handle_cast(request: Vec<u8>) -> NoreplyResult {
        otter_guest::__private::handle_cast::<Liar>(&STATE, &request)
    }
    fn handle_info(msg: WitInfo) -> NoreplyResult {
        otter_guest::__private::handle_info::<Liar>(&STATE, msg)
    }
    fn handle_batch(terms: Vec<u8>, batch: Vec<Envelope>) -> BatchResult {
        let len = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        match mode().as_str() {
            "none" => BatchResult {
                handled: 0,
                outcomes: Vec::new(),
            },
            "more" => BatchResult {
                handled: len.saturating_add(1),
                outcomes: Vec::new(),
            },
            "kind" => BatchResult {
                handled: len,
                outcomes: batch
                    .iter()
                    .map(|_| Outcome::Noreply(NoreplyResult::Noreply(Next::None)))
                    .collect(),
            },
            "past_stop" => BatchResult {
                handled: len,
                outcomes: batch
                    .iter()
                    .filter(|e| matches!(e, Envelope::Call(_)))
                    .map(|_| {
                        let ok = otter_guest::encode(&"ok");
                        Outcome::Call(CallResult::Reply((ok, Next::Timeout(60_000))))
                    })
                    .collect(),
            },
            "extra" => {
                let mut result = otter_guest::__private::handle_batch::<Liar>(&STATE, terms, batch);
                result
                    .outcomes
                    .push(Outcome::Noreply(NoreplyResult::Noreply(Next::None)));
                result
            }
            _ => otter_guest::__private::handle_batch::<Liar>(&STATE, terms, batch),
        }
    }
    fn handle_continue(arg: Vec<u8>) -> NoreplyResult {
        otter_guest::__private::handle_continue::<Liar>(&STATE, arg)
    }
    fn terminate(reason: WitExitReason) {
        otter_guest::__private::terminate::<Liar>(&STATE, reason)
    }
    fn code_change(old_vsn: String, old_state: Vec<u8>, extra: Vec<u8>) -> Result<(), String> {
        otter_guest::__private::code_change::<Liar>(&STATE, old_vsn, old_state, extra)
    }
    fn export_state() -> Vec<u8> {
        otter_guest::__private::export_state::<Liar>(&STATE)
    }
    fn restore_state(state: Vec<u8>) -> Result<(), String> {
        otter_guest::__private::restore_state::<Liar>(&STATE, state)
    }
    fn vsn() -> String {
        "1".to_owned()
    }
}

otter_guest::__private::bindings::__export_genserver_bindings!(
    Export with_types_in otter_guest::__private::bindings
);

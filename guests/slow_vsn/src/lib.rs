//! A hostile test module: `vsn`, which the host calls once while loading, never returns.
//! The host must give up after its load time limit and refuse the module.
//!
//! `export_genserver!` generates `vsn` from a constant, so this crate writes the export by
//! hand: every other callback goes to the SDK's glue for a server that does nothing.

use otter_guest::__private::{
    BatchResult, CallResult, Envelope, Guest, InitResult, NoreplyResult, WitExitReason, WitFrom,
    WitInfo,
};
use otter_guest::{GenServer, Init, Reply, ReplyTo};

/// A server with no state and no requests.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Idle;

impl GenServer for Idle {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(_: ()) -> Init<Self> {
        Init::ok(Idle)
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo) -> Reply<()> {
        Reply::ok(())
    }
}

otter_guest::__private::process_local! {
    static STATE: std::cell::Cell<Option<Idle>> = std::cell::Cell::new(None);
}

struct Export;

impl Guest for Export {
    fn init(args: Vec<u8>) -> InitResult {
        otter_guest::__private::init::<Idle>(&STATE, args)
    }
    fn handle_call(request: Vec<u8>, from: WitFrom) -> CallResult {
        otter_guest::__private::handle_call::<Idle>(&STATE, &request, from)
    }
    fn handle_cast(request: Vec<u8>) -> NoreplyResult {
        otter_guest::__private::handle_cast::<Idle>(&STATE, &request)
    }
    fn handle_info(msg: WitInfo) -> NoreplyResult {
        otter_guest::__private::handle_info::<Idle>(&STATE, msg)
    }
    fn handle_batch(terms: Vec<u8>, batch: Vec<Envelope>) -> BatchResult {
        otter_guest::__private::handle_batch::<Idle>(&STATE, terms, batch)
    }
    fn handle_continue(arg: Vec<u8>) -> NoreplyResult {
        otter_guest::__private::handle_continue::<Idle>(&STATE, arg)
    }
    fn terminate(reason: WitExitReason) {
        otter_guest::__private::terminate::<Idle>(&STATE, reason)
    }
    fn code_change(old_vsn: String, old_state: Vec<u8>, extra: Vec<u8>) -> Result<(), String> {
        otter_guest::__private::code_change::<Idle>(&STATE, old_vsn, old_state, extra)
    }
    fn export_state() -> Vec<u8> {
        otter_guest::__private::export_state::<Idle>(&STATE)
    }
    fn restore_state(state: Vec<u8>) -> Result<(), String> {
        otter_guest::__private::restore_state::<Idle>(&STATE, state)
    }
    fn vsn() -> String {
        // Spins without calling the host (wasting cycles is the point): only the host's time
        // limit can stop it.
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

otter_guest::__private::bindings::__export_genserver_bindings!(
    Export with_types_in otter_guest::__private::bindings
);

//! The glue between the exported WIT callbacks and a [`GenServer`] implementation.
//!
//! [`crate::export_genserver!`] expands to an implementation of the generated `Guest` trait
//! whose every method calls one function here. The state lives in this instance's memory
//! between callbacks; it is taken out while a callback runs so that a callback may call other
//! servers without holding a borrow.

use std::cell::Cell;

use crate::bindings::exports::otter::genserver::server::{
    BatchResult, CallResult, Envelope, ExitReason as WitExitReason, Info as WitInfo, InitResult,
    NoreplyResult, ReplyTo as WitFrom,
};
use crate::bindings::otter::genserver::types::{Next as WitNext, Outcome};
use crate::server::{GenServer, Init, Next, NoReply, Reply};
use crate::types::{ExitReason, Info, ReplyTo, WitReason};
use crate::{decode, encode};

/// Where the macro keeps the server's state: one per exported server type, declared with
/// `otter_common::process_local!`. A `Cell` rather than a `RefCell`: the state is taken out
/// and put back, never borrowed across a callback, and a `RefCell`'s borrow checks would
/// link their panic texts and locations into every server's data.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
pub type StateSlot<S> = otter_common::ProcessLocal<Cell<Option<S>>>;

/// Where the macro keeps the server's state (natively: a thread-local, for tests).
#[cfg(not(all(target_family = "wasm", not(target_feature = "atomics"))))]
pub type StateSlot<S> = std::thread::LocalKey<Cell<Option<S>>>;

fn take<S: GenServer>(slot: &'static StateSlot<S>) -> S {
    match slot.with(Cell::take) {
        Some(state) => state,
        // The host never calls back before `init` has put a state: a trap, without a panic
        // message of its own in every server's data.
        None => std::process::abort(),
    }
}

fn put<S: GenServer>(slot: &'static StateSlot<S>, state: S) {
    slot.with(|s| s.set(Some(state)));
}

/// The state for a `handle-*` callback: a panic from now on runs `terminate` on the state
/// as the previous callback left it (see [`crate::panic`]).
fn begin<S: GenServer>(slot: &'static StateSlot<S>) -> S {
    let state = take(slot);
    crate::panic::arm::<S>();
    state
}

/// The `handle-*` callback returned this state: it is what a later panic's `terminate` gets.
fn end<S: GenServer>(slot: &'static StateSlot<S>, state: S) {
    crate::panic::disarm();
    crate::panic::snapshot(&state);
    put(slot, state);
}

fn next_to_wit<C: serde::Serialize>(next: Next<C>) -> WitNext {
    match next {
        Next::None => WitNext::None,
        Next::Timeout(ms) => WitNext::Timeout(ms),
        Next::Hibernate => WitNext::Hibernate,
        Next::Continue(c) => WitNext::Continue(encode(&c)),
    }
}

fn noreply_to_wit<C: serde::Serialize>(r: NoReply<C>) -> NoreplyResult {
    match r {
        NoReply::NoReply(next) => NoreplyResult::Noreply(next_to_wit(next)),
        NoReply::Stop(reason) => NoreplyResult::Stop(reason.to_wit()),
    }
}

/// `init`: decode the arguments, build the state. Arguments that do not decode stop the
/// start with a `badarg` reason rather than trapping.
pub fn init<S: GenServer>(slot: &'static StateSlot<S>, args: Vec<u8>) -> InitResult {
    crate::panic::install_hook();
    let args: S::Args = match decode(&args) {
        Ok(a) => a,
        Err(e) => {
            return InitResult::Stop(WitExitReason::Error(format!("badarg: init args: {e}")));
        }
    };
    match S::init(args) {
        Init::Ok(state, next) => {
            crate::panic::snapshot(&state);
            put(slot, state);
            InitResult::Ok(next_to_wit(next))
        }
        Init::Ignore => InitResult::Ignore,
        Init::Stop(reason) => InitResult::Stop(reason.to_wit()),
    }
}

/// `handle-call`: a request that does not decode is answered `badarg`.
pub fn handle_call<S: GenServer>(
    slot: &'static StateSlot<S>,
    request: &[u8],
    from: WitFrom,
) -> CallResult {
    let request: S::Call = match decode(request) {
        Ok(r) => r,
        Err(e) => return CallResult::Badarg(e),
    };
    let mut state = begin(slot);
    let result = state.handle_call(request, ReplyTo::from_wit(from));
    end(slot, state);
    match result {
        Reply::Reply(r, next) => CallResult::Reply((encode(&r), next_to_wit(next))),
        Reply::NoReply(next) => CallResult::Noreply(next_to_wit(next)),
        Reply::StopReply(reason, r) => CallResult::StopReply((reason.to_wit(), encode(&r))),
        Reply::Stop(reason) => CallResult::Stop(reason.to_wit()),
    }
}

/// The first bytes of an undecodable term in hex, and its length, for a log line.
fn preview(term: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in term.iter().take(32) {
        let _ = write!(out, "{b:02x}");
    }
    if term.len() > 32 {
        out.push('…');
    }
    let _ = write!(out, " ({} bytes of CBOR)", term.len());
    out
}

/// `handle-cast`: a request that does not decode is logged (with the decoding error and its
/// first bytes) and dropped; nobody waits for a cast, so the log is where it shows.
pub fn handle_cast<S: GenServer>(slot: &'static StateSlot<S>, request: &[u8]) -> NoreplyResult {
    let request: S::Cast = match decode(request) {
        Ok(r) => r,
        Err(e) => {
            crate::log::warn(
                "cast did not decode; dropped",
                &[("error", &e), ("cast", &preview(request))],
            );
            return NoreplyResult::Noreply(WitNext::None);
        }
    };
    let mut state = begin(slot);
    let result = state.handle_cast(request);
    end(slot, state);
    noreply_to_wit(result)
}

/// `handle-info`: a plain message that does not decode is logged and dropped.
pub fn handle_info<S: GenServer>(slot: &'static StateSlot<S>, msg: WitInfo) -> NoreplyResult {
    if let WitInfo::Message(bytes) = &msg {
        return handle_message(slot, bytes);
    }
    let msg: Info<S::Info> = match Info::from_wit(msg) {
        Ok(m) => m,
        Err(e) => {
            crate::log::warn("message did not decode; dropped", &[("error", &e)]);
            return NoreplyResult::Noreply(WitNext::None);
        }
    };
    info_to(slot, msg)
}

/// `handle-info` for a plain message, decoded from its bytes.
fn handle_message<S: GenServer>(slot: &'static StateSlot<S>, bytes: &[u8]) -> NoreplyResult {
    match decode(bytes) {
        Ok(m) => info_to(slot, Info::Message(m)),
        Err(e) => {
            crate::log::warn("message did not decode; dropped", &[("error", &e)]);
            NoreplyResult::Noreply(WitNext::None)
        }
    }
}

fn info_to<S: GenServer>(slot: &'static StateSlot<S>, msg: Info<S::Info>) -> NoreplyResult {
    let mut state = begin(slot);
    let result = state.handle_info(msg);
    end(slot, state);
    noreply_to_wit(result)
}

otter_common::process_local! {
    /// Messages of the current batch not yet handled: still queued, as the server sees it.
    static BATCH_REMAINING: Cell<u32> = Cell::new(0);
    /// What the current batch has handled so far (see [`answer_handled_calls`]): taken out
    /// while the batch's own bookkeeping changes it, so that a panic there finds it empty.
    static HANDLED: Cell<Handled> = Cell::new(Handled::new());
}

/// The outcomes of the messages a batch has handled so far, and the callers of its calls,
/// in order: kept where the panic hook can reach them.
struct Handled {
    outcomes: Vec<Outcome>,
    callers: Vec<WitFrom>,
}

impl Default for Handled {
    fn default() -> Self {
        Handled::new()
    }
}

impl Handled {
    const fn new() -> Self {
        Handled {
            outcomes: Vec::new(),
            callers: Vec::new(),
        }
    }
}

/// The batch under way panicked: answer the calls it handled before the panic, as OTP's
/// server had answered them before it crashed (the host ends the batch with the trap that
/// follows, and answers every call still pending, the failing one among them, with the crash).
/// Nothing else of those outcomes matters to a process about to end; a request that did not
/// decode (`badarg` to its caller) has no reply to send, and its caller gets the crash too. (Only the wasm panic
/// hook calls it.)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn answer_handled_calls() {
    HANDLED.with(|h| {
        // Empty if the panic came from inside this module's own bookkeeping: nothing answered.
        let mut handled = h.take();
        let Handled { outcomes, callers } = &mut handled;
        let mut callers = callers.iter();
        for outcome in outcomes.iter_mut() {
            let Outcome::Call(result) = outcome else {
                continue;
            };
            let Some(from) = callers.next() else {
                break;
            };
            if let CallResult::Reply((reply, _)) = result {
                crate::imports::process::reply(*from, reply);
                // Answered: were the batch ever to return after all, the host would not
                // answer it twice, and its outcome still pairs with its message.
                *result = CallResult::Noreply(WitNext::None);
            }
        }
        h.set(handled);
    });
}

/// Messages of the batch being handled that come after the current one.
pub(crate) fn batch_remaining() -> u32 {
    BATCH_REMAINING.with(|r| r.get())
}

/// `handle-batch`: each message goes to its callback in order, until one asks for anything
/// but the next message (a stop, continue, timeout or hibernate).
pub fn handle_batch<S: GenServer>(
    slot: &'static StateSlot<S>,
    terms: Vec<u8>,
    batch: Vec<Envelope>,
) -> BatchResult {
    let mut remaining = u32::try_from(batch.len()).unwrap_or(u32::MAX);
    let mut handled = 0;
    HANDLED.with(|h| {
        let mut kept = h.take();
        kept.outcomes.clear();
        kept.callers.clear();
        h.set(kept);
    });
    let mut rest = terms.as_slice();
    let mut term = |len: u32| {
        let (term, after) =
            rest.split_at(usize::try_from(len).unwrap_or(usize::MAX).min(rest.len()));
        rest = after;
        term
    };
    for envelope in batch {
        remaining -= 1;
        handled += 1;
        BATCH_REMAINING.with(|r| r.set(remaining));
        let mut caller = None;
        // A cast's or plain message's `noreply(none)` is left out (see `batch-result`): the
        // common case builds no outcome at all.
        let outcome = match envelope {
            Envelope::Call((len, from)) => {
                caller = Some(from);
                Outcome::Call(handle_call(slot, term(len), from))
            }
            Envelope::Cast(len) => match handle_cast(slot, term(len)) {
                NoreplyResult::Noreply(WitNext::None) => continue,
                result => Outcome::Noreply(result),
            },
            Envelope::Info(len) => match handle_message(slot, term(len)) {
                NoreplyResult::Noreply(WitNext::None) => continue,
                result => Outcome::Noreply(result),
            },
        };
        // An outcome of a cast or plain message asks for something: never a plain one.
        let go_on = matches!(
            outcome,
            Outcome::Call(
                CallResult::Reply((_, WitNext::None))
                    | CallResult::Noreply(WitNext::None)
                    | CallResult::Badarg(_)
            )
        );
        if caller.is_some() || !go_on {
            HANDLED.with(|h| {
                let mut kept = h.take();
                kept.outcomes.push(outcome);
                kept.callers.extend(caller);
                h.set(kept);
            });
        }
        if !go_on {
            break;
        }
    }
    BATCH_REMAINING.with(|r| r.set(0));
    let outcomes = HANDLED.with(|h| {
        let mut kept = h.take();
        kept.callers.clear();
        let outcomes = std::mem::take(&mut kept.outcomes);
        h.set(kept);
        outcomes
    });
    BatchResult { handled, outcomes }
}

/// `handle-continue`.
pub fn handle_continue<S: GenServer>(slot: &'static StateSlot<S>, arg: Vec<u8>) -> NoreplyResult {
    let arg: S::Continue = match decode(&arg) {
        Ok(a) => a,
        Err(e) => {
            return NoreplyResult::Stop(WitExitReason::Error(format!("badarg: continue: {e}")));
        }
    };
    let mut state = begin(slot);
    let result = state.handle_continue(arg);
    end(slot, state);
    noreply_to_wit(result)
}

/// `terminate`.
pub fn terminate<S: GenServer>(slot: &'static StateSlot<S>, reason: WitExitReason) {
    let mut state = take(slot);
    state.terminate(ExitReason::from_wit(reason));
    put(slot, state);
}

/// `code-change`: build this version's state from an older version's bytes.
pub fn code_change<S: GenServer>(
    slot: &'static StateSlot<S>,
    old_vsn: String,
    old_state: Vec<u8>,
    extra: Vec<u8>,
) -> Result<(), String> {
    crate::panic::install_hook();
    let state = S::code_change(crate::CodeChange::new(&old_vsn, &old_state, &extra))?;
    crate::panic::snapshot(&state);
    put(slot, state);
    Ok(())
}

/// `export-state`.
pub fn export_state<S: GenServer>(slot: &'static StateSlot<S>) -> Vec<u8> {
    let state = take(slot);
    let bytes = encode(&state);
    put(slot, state);
    bytes
}

/// `restore-state`: the bytes this same version exported.
pub fn restore_state<S: GenServer>(
    slot: &'static StateSlot<S>,
    bytes: Vec<u8>,
) -> Result<(), String> {
    crate::panic::install_hook();
    let state: S = decode(&bytes)?;
    crate::panic::snapshot_bytes::<S>(bytes);
    put(slot, state);
    Ok(())
}

/// `vsn`.
pub fn vsn<S: GenServer>() -> String {
    crate::panic::install_hook();
    S::VSN.to_owned()
}

/// `vsn` as the bytes of the `otter-vsn` custom section ([`otter_common::VSN_SECTION`]), at
/// compile time.
pub const fn vsn_section<const N: usize>(vsn: &str) -> [u8; N] {
    let bytes = vsn.as_bytes();
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Export a [`GenServer`] as this component's `server` interface, and write its version
/// into the module's `otter-vsn` custom section.
///
/// Use it once per guest crate, at the top level:
///
/// ```ignore
/// otter_guest::export_genserver!(Counter);
/// ```
#[macro_export]
macro_rules! export_genserver {
    ($server:ty) => {
        #[doc(hidden)]
        pub struct __OtterGenServerExport;

        $crate::__private::process_local! {
            static __OTTER_STATE: ::std::cell::Cell<::std::option::Option<$server>> =
                ::std::cell::Cell::new(::std::option::Option::None);
        }

        impl $crate::__private::Guest for __OtterGenServerExport {
            fn init(args: ::std::vec::Vec<u8>) -> $crate::__private::InitResult {
                $crate::__private::init::<$server>(&__OTTER_STATE, args)
            }
            fn handle_call(
                request: ::std::vec::Vec<u8>,
                from: $crate::__private::WitFrom,
            ) -> $crate::__private::CallResult {
                $crate::__private::handle_call::<$server>(&__OTTER_STATE, &request, from)
            }
            fn handle_cast(request: ::std::vec::Vec<u8>) -> $crate::__private::NoreplyResult {
                $crate::__private::handle_cast::<$server>(&__OTTER_STATE, &request)
            }
            fn handle_info(msg: $crate::__private::WitInfo) -> $crate::__private::NoreplyResult {
                $crate::__private::handle_info::<$server>(&__OTTER_STATE, msg)
            }
            fn handle_batch(
                terms: ::std::vec::Vec<u8>,
                batch: ::std::vec::Vec<$crate::__private::Envelope>,
            ) -> $crate::__private::BatchResult {
                $crate::__private::handle_batch::<$server>(&__OTTER_STATE, terms, batch)
            }
            fn handle_continue(arg: ::std::vec::Vec<u8>) -> $crate::__private::NoreplyResult {
                $crate::__private::handle_continue::<$server>(&__OTTER_STATE, arg)
            }
            fn terminate(reason: $crate::__private::WitExitReason) {
                $crate::__private::terminate::<$server>(&__OTTER_STATE, reason)
            }
            fn code_change(
                old_vsn: ::std::string::String,
                old_state: ::std::vec::Vec<u8>,
                extra: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::code_change::<$server>(&__OTTER_STATE, old_vsn, old_state, extra)
            }
            fn export_state() -> ::std::vec::Vec<u8> {
                $crate::__private::export_state::<$server>(&__OTTER_STATE)
            }
            fn restore_state(
                state: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::restore_state::<$server>(&__OTTER_STATE, state)
            }
            fn vsn() -> ::std::string::String {
                $crate::__private::vsn::<$server>()
            }
        }

        $crate::__private::bindings::__export_genserver_bindings!(
            __OtterGenServerExport with_types_in $crate::__private::bindings
        );

        // The section is `otter_common::VSN_SECTION`; an attribute takes only a literal.
        #[cfg(target_family = "wasm")]
        const _: () = {
            const VSN: &str = <$server as $crate::GenServer>::VSN;
            #[used]
            #[unsafe(link_section = "otter-vsn")]
            static OTTER_VSN: [u8; VSN.len()] = $crate::__private::vsn_section::<{ VSN.len() }>(VSN);
        };
    };
}

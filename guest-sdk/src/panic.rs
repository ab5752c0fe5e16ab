//! What a panic does: the hook tells the host its message, then runs `terminate` on the
//! state as it stood before the failing callback, as OTP runs `terminate/2` when a callback
//! raises.
//!
//! Guests are built with `panic = "abort"` (wasm has no unwinding on stable Rust), so the
//! hook is the last code the instance runs: the trap that follows ends the process. It must
//! not touch the state the failing callback holds `&mut`: the panic may have come between
//! two writes to it (a `Vec` whose buffer is freed but whose pointer is not yet rewritten),
//! and the compiler may have kept writes in registers that never reached memory. So after
//! every callback that returns, the state is encoded ([`snapshot`]) into a buffer of its
//! own, and the hook decodes a fresh state from those bytes and runs `terminate` on it.
//!
//! That snapshot is the cost: one CBOR encoding of the state per callback, taking as long as
//! the state is large (measured in BENCHMARKS.md), and its bytes kept beside the state; so a
//! server asks for it with [`GenServer::TERMINATE_ON_PANIC`], and one that does not pays
//! nothing (the checks are on a constant).

use std::cell::Cell;

use crate::server::GenServer;
use crate::types::ExitReason;

/// Runs `terminate` on the snapshot with the panic's reason; false if there was none.
type Terminate = fn(ExitReason) -> bool;

otter_common::process_local! {
    /// The state's CBOR as the last callback that returned left it: taken out while it is
    /// written or read.
    static SNAPSHOT: Cell<Vec<u8>> = Cell::new(Vec::new());
    /// Whether [`SNAPSHOT`] holds a whole state (not while it is being written).
    static SNAPSHOT_WHOLE: Cell<bool> = Cell::new(false);
    /// `terminate` on the snapshot, armed while a `handle-*` callback runs: a panic in
    /// `init`, `terminate` itself, `code-change` or the state's own export runs none, as in
    /// OTP.
    static ARMED: Cell<Option<Terminate>> = Cell::new(None);
    #[cfg(target_arch = "wasm32")]
    /// Whether the panic hook is installed (a flag rather than `std::sync::Once`, whose
    /// poisoning texts would land in every server's data).
    static HOOKED: Cell<bool> = Cell::new(false);
}

/// Install the panic hook; once per instance. Called by the callbacks an instance starts
/// with (`init`, `restore-state`, `code-change`, `vsn`).
pub(crate) fn install_hook() {
    // Natively (unit tests) the test harness's own hook reports panics.
    #[cfg(target_arch = "wasm32")]
    if !HOOKED.replace(true) {
        std::panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or("(not a string)");
            let reason = crate::imports::process::panicking(message);
            crate::export::answer_handled_calls();
            // Taken, so that nothing runs it twice.
            if let Some(terminate) = ARMED.take()
                && terminate(ExitReason::Error(reason))
            {
                crate::imports::process::terminated_after_panic();
            }
        }));
    }
}

/// Keep the state's bytes as the one `terminate` gets if a later callback panics.
pub(crate) fn snapshot<S: GenServer>(state: &S) {
    if !S::TERMINATE_ON_PANIC {
        return;
    }
    SNAPSHOT.with(|s| {
        let mut bytes = s.take();
        SNAPSHOT_WHOLE.set(false);
        bytes.clear();
        // A state whose `Serialize` fails leaves no snapshot: its `terminate` is skipped.
        if otter_common::encode_into(state, &mut bytes).is_ok() {
            SNAPSHOT_WHOLE.set(true);
        }
        s.set(bytes);
    });
}

/// Keep these bytes of the state (restored from them) as its snapshot, without encoding.
pub(crate) fn snapshot_bytes<S: GenServer>(bytes: Vec<u8>) {
    if !S::TERMINATE_ON_PANIC {
        return;
    }
    SNAPSHOT.with(|s| s.set(bytes));
    SNAPSHOT_WHOLE.set(true);
}

/// A `handle-*` callback begins: a panic from here runs `terminate` on the snapshot.
pub(crate) fn arm<S: GenServer>() {
    if S::TERMINATE_ON_PANIC {
        ARMED.set(Some(terminate_snapshot::<S>));
    }
}

/// The callback returned.
pub(crate) fn disarm() {
    ARMED.set(None);
}

/// `terminate` on a state decoded from the snapshot; false if there is none to decode.
fn terminate_snapshot<S: GenServer>(reason: ExitReason) -> bool {
    if !SNAPSHOT_WHOLE.get() {
        return false;
    }
    let state = SNAPSHOT.with(|s| {
        let bytes = s.take();
        let state = crate::decode::<S>(&bytes).ok();
        s.set(bytes);
        state
    });
    let Some(mut state) = state else {
        return false;
    };
    state.terminate(reason);
    true
}

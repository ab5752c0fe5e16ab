//! What a callback's result does next: answer the caller, go on (and how), stop, or crash.
//! One message's result is acted on here whether it entered the guest alone (`serve`) or in
//! a batch (`batch`).

use super::ctx::{ProcessCtx, crash};
use crate::bindings::{CallResult, NoreplyResult, WitNext};
use crate::error::CallError;
use crate::exit::{ExitReason, WitReason};
use crate::mailbox::ReplySlot;
use crate::term::Term;

/// What happens after a callback.
pub(super) enum Flow {
    /// The process goes on, as `next` says.
    Next(WitNext),
    /// A clean or chosen stop: `terminate` runs.
    Stop(ExitReason),
    /// A trap: the instance is unusable, so `terminate` cannot run.
    Crash(ExitReason),
}

/// Act on the result of a callback that answers nobody (`handle-cast`, `handle-info`,
/// `handle-continue`).
pub(super) fn noreply_flow(ctx: &ProcessCtx, r: wasmtime::Result<NoreplyResult>) -> Flow {
    match r {
        Ok(NoreplyResult::Noreply(next)) => Flow::Next(next),
        Ok(NoreplyResult::Stop(reason)) => Flow::Stop(ExitReason::from_wit(reason)),
        Err(e) => Flow::Crash(crash(ctx, e)),
    }
}

/// Act on `handle-call`'s result. `slot` is the caller's, unless the guest already answered
/// with `reply`.
pub(super) fn call_flow(
    ctx: &mut ProcessCtx,
    tag: u64,
    slot: Option<ReplySlot>,
    result: CallResult,
) -> Flow {
    let answer = |slot: Option<ReplySlot>, r: Result<Term, CallError>| {
        if let Some(s) = slot {
            let _ = s.send(r);
        }
    };
    match result {
        CallResult::Reply((term, next)) => {
            answer(slot, ctx.node.check_reply(term));
            Flow::Next(next)
        }
        CallResult::Noreply(next) => {
            if let Some(s) = slot {
                ctx.calls.keep(tag, s);
            }
            Flow::Next(next)
        }
        CallResult::StopReply((reason, term)) => {
            answer(slot, ctx.node.check_reply(term));
            Flow::Stop(ExitReason::from_wit(reason))
        }
        CallResult::Stop(reason) => {
            // The caller learns the reason when the process has exited.
            if let Some(s) = slot {
                ctx.calls.keep(tag, s);
            }
            Flow::Stop(ExitReason::from_wit(reason))
        }
        CallResult::Badarg(why) => {
            answer(slot, Err(CallError::Badarg(why)));
            Flow::Next(WitNext::None)
        }
    }
}

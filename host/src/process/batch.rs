//! `handle-batch`: messages already queued behind the first enter the guest together.

use wasmtime::Store;

use super::ctx::{ProcessCtx, crash};
use super::flow::{Flow, call_flow, noreply_flow};
use crate::bindings::{WitEnvelope, WitNext, WitOutcome, WitReplyTo};
use crate::callbacks::Callbacks;
use crate::exit::ExitReason;
use crate::mailbox::Message;
use crate::term::QueuedTerm;

/// Most messages one `handle-batch` carries: enough to amortise entering the guest, few enough
/// that signals and the batch's first callers are not kept waiting long.
const BATCH_MAX: usize = 64;

/// Past this many bytes of terms a batch takes no more messages.
const BATCH_BYTES: usize = 64 * 1024;

/// Hand `first` and the messages already queued behind it to `handle-batch`, then act on each
/// outcome as if its message had come alone (a cast or plain message without one returned
/// `noreply(none)`). Messages the guest did not reach go back to the front of the mailbox.
pub(super) async fn handle_batch(
    store: &mut Store<ProcessCtx>,
    server: &Callbacks,
    first: Message,
) -> Flow {
    let ctx = store.data_mut();
    let mut terms = Vec::new();
    let mut batch = Vec::with_capacity(8);
    let mut next = Some(first);
    while let Some(msg) = next {
        batch.push(match msg {
            Message::Call {
                request,
                caller,
                reply,
            } => {
                // Pending from the start, so that `reply` inside the callback finds it.
                let tag = ctx.calls.begin_pending(reply);
                let from = WitReplyTo {
                    server: ctx.pid,
                    caller,
                    tag,
                };
                WitEnvelope::Call((append(&mut terms, &request), from))
            }
            Message::Cast(req) => WitEnvelope::Cast(append(&mut terms, &req)),
            Message::Info(msg) => WitEnvelope::Info(append(&mut terms, &msg)),
            Message::Down { .. } | Message::Exit { .. } | Message::Timer { .. } => {
                unreachable!("a DOWN, EXIT or timer message is never batched")
            }
        });
        next = if batch.len() < BATCH_MAX && terms.len() < BATCH_BYTES {
            ctx.mailbox.next_batchable()
        } else {
            None
        };
    }
    ctx.entering(batch.len());
    let result = match server.call_handle_batch(&mut *store, &terms, &batch).await {
        Ok(r) => r,
        // The batch's callers are pending: the exit answers them.
        Err(e) => return Flow::Crash(crash(store.data(), e)),
    };
    let ctx = store.data_mut();
    let claimed = usize::try_from(result.handled).unwrap_or(usize::MAX);
    if claimed == 0 || claimed > batch.len() {
        return Flow::Crash(ExitReason::Error(format!(
            "handle-batch handled {claimed} of {} messages",
            batch.len()
        )));
    }
    let wrong = || {
        Flow::Crash(ExitReason::Error(
            "handle-batch returned outcomes that do not match its messages".to_owned(),
        ))
    };
    let mut outcomes = result.outcomes.into_iter();
    let mut flow = Flow::Next(WitNext::None);
    let mut handled = 0;
    let mut offset = 0;
    for envelope in &batch[..claimed] {
        handled += 1;
        offset += envelope_len(envelope);
        let last = handled == claimed;
        flow = match envelope {
            WitEnvelope::Call((_, from)) => match outcomes.next() {
                Some(WitOutcome::Call(result)) => {
                    let slot = ctx.calls.take(from.tag);
                    call_flow(ctx, from.tag, slot, result)
                }
                _ => return wrong(),
            },
            WitEnvelope::Cast(_) | WitEnvelope::Info(_) if last && outcomes.len() > 0 => {
                match outcomes.next() {
                    Some(WitOutcome::Noreply(result)) => noreply_flow(ctx, Ok(result)),
                    _ => return wrong(),
                }
            }
            WitEnvelope::Cast(_) | WitEnvelope::Info(_) => Flow::Next(WitNext::None),
        };
        if !matches!(flow, Flow::Next(WitNext::None)) {
            break;
        }
    }
    // The guest stops at the first outcome that is not plain: a count past it, or outcomes
    // left over, would have the host hand it messages it says it handled.
    if handled != claimed || outcomes.len() > 0 {
        return wrong();
    }
    let mut unhandled = Vec::with_capacity(batch.len() - handled);
    for envelope in batch.into_iter().skip(handled) {
        let end = offset + envelope_len(&envelope);
        let term = &terms[offset..end];
        offset = end;
        unhandled.push(match envelope {
            WitEnvelope::Call((_, from)) => match ctx.calls.take(from.tag) {
                Some(reply) => Message::Call {
                    request: term.to_vec(),
                    caller: from.caller,
                    reply,
                },
                None => continue,
            },
            WitEnvelope::Cast(_) => Message::Cast(QueuedTerm::from_slice(term)),
            WitEnvelope::Info(_) => Message::Info(QueuedTerm::from_slice(term)),
        });
    }
    ctx.mailbox.put_back(unhandled.into_iter());
    flow
}

/// Lay `term` after the batch's other terms; its length is what the envelope carries.
fn append(terms: &mut Vec<u8>, term: &[u8]) -> u32 {
    terms.extend_from_slice(term);
    u32::try_from(term.len()).expect("a batched term is at most MAX_BATCHED_TERM bytes")
}

fn envelope_len(envelope: &WitEnvelope) -> usize {
    let (WitEnvelope::Call((len, _)) | WitEnvelope::Cast(len) | WitEnvelope::Info(len)) = envelope;
    *len as usize
}

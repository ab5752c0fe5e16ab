use std::task::{Context, Waker};

use super::queue::CHUNK;
use super::{Mailbox, Message, mailbox};
use crate::process_limits::{MailboxBound, Overflow};

/// Take every message waiting, as a process does, until it would wait.
fn drain(rx: &mut Mailbox) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut taken = 0;
    while rx.poll_recv(&mut cx, true, |_| false).is_ready() {
        taken += 1;
    }
    taken
}

/// Send a mailbox (bounded by `bound`, if any) `n` messages, take them all, and check that
/// it keeps no room for them once its process waits.
fn burst_is_given_back(bound: Option<MailboxBound>, n: usize) {
    let (tx, mut rx) = mailbox(bound);
    for _ in 0..n {
        assert!(tx.send(Message::Cast(smallvec::smallvec![0x01])).is_ok());
    }
    assert_eq!(drain(&mut rx), n);
    assert!(
        rx.slots() <= 2 * CHUNK,
        "a drained mailbox still holds room for {} messages",
        rx.slots()
    );
}

#[test]
fn a_burst_of_messages_does_not_keep_its_queue_s_memory_once_the_process_waits() {
    burst_is_given_back(None, 50_000);
}

#[test]
fn a_bounded_mailbox_gives_back_its_burst_s_memory_too() {
    burst_is_given_back(Some(MailboxBound::new(100_000, Overflow::Reject)), 50_000);
}

#[test]
fn a_queue_that_stays_short_keeps_its_buffer_between_messages() {
    let (tx, mut rx) = mailbox(None);
    for _ in 0..3 {
        for _ in 0..CHUNK / 2 {
            assert!(tx.send(Message::Cast(smallvec::smallvec![0x01])).is_ok());
        }
        assert_eq!(drain(&mut rx), CHUNK / 2);
    }
    assert!(
        rx.slots() >= CHUNK / 2,
        "the buffer of a short queue was freed: {} slots left",
        rx.slots()
    );
}

#[test]
fn a_long_queue_gives_its_memory_back_as_the_process_takes_its_messages() {
    let (tx, mut rx) = mailbox(None);
    let n = 100 * CHUNK;
    for _ in 0..n {
        assert!(tx.send(Message::Cast(smallvec::smallvec![0x01])).is_ok());
    }
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n / 2 {
        assert!(rx.poll_recv(&mut cx, true, |_| false).is_ready());
    }
    assert!(
        rx.slots() <= n / 2 + 2 * CHUNK,
        "half the queue taken, room for {} of {n} messages is kept",
        rx.slots()
    );
}

#[test]
fn queued_counts_what_waits_including_exit_signals_and_messages_put_back() {
    let (tx, mut rx) = mailbox(None);
    for _ in 0..5 {
        assert!(tx.send(Message::Cast(smallvec::smallvec![0x01])).is_ok());
    }
    assert_eq!(tx.queued(), 5);
    let batch: Vec<Message> = std::iter::from_fn(|| rx.next_batchable()).collect();
    assert_eq!(batch.len(), 5);
    assert_eq!(tx.queued(), 0);
    assert!(tx.exit(7, crate::exit::ExitReason::Normal).is_ok());
    assert_eq!(tx.queued(), 1);
    rx.put_back(batch.into_iter().skip(3));
    assert_eq!(tx.queued(), 3, "two messages put back wait again");
    assert_eq!(drain(&mut rx), 3);
    assert_eq!(tx.queued(), 0);
}

/// A queue slot holds a short message's term inline: a message is no larger for it than with
/// a `Vec`, and a long term keeps the buffer it was sent in.
#[test]
fn a_short_term_is_kept_inside_its_message_and_a_long_one_in_its_own_buffer() {
    assert!(
        std::mem::size_of::<Message>() <= 48,
        "a message grew to {} bytes",
        std::mem::size_of::<Message>()
    );
    let short = crate::term::queued(vec![0x63, b'i', b'n', b'c']);
    assert!(!short.spilled(), "a 4-byte term is kept inline");
    let long = vec![0x5A; crate::term::INLINE_TERM + 1];
    let buffer = long.as_ptr();
    let long = crate::term::queued(long);
    assert_eq!(long.as_ptr(), buffer, "a long term is copied");
    // A short term in a roomy buffer is kept inline all the same.
    let mut roomy = Vec::with_capacity(1024);
    roomy.extend_from_slice(&[0x01]);
    assert!(!crate::term::queued(roomy).spilled());
}

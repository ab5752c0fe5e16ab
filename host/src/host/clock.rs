//! `otter:genserver/clock`: the node's clocks, and `sleep`, which suspends only the calling
//! process's fiber.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::bindings::otter::genserver::clock::Host;
use crate::host::ProcessCtx;

/// The origin of `monotonic-time`: fixed the first time any process reads it, so readings
/// from every process of the host compare.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Host for ProcessCtx {
    fn monotonic_time(&mut self) -> wasmtime::Result<u64> {
        Ok(nanos(origin().elapsed()))
    }

    fn system_time(&mut self) -> wasmtime::Result<u64> {
        // A clock set before 1970 reads as the epoch rather than failing the guest.
        Ok(nanos(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        ))
    }

    async fn sleep(&mut self, ms: u32) {
        // A kill aborts the process's task, and with it this future, wherever it waits.
        if ms == 0 {
            // Erlang's `erlang:yield/0`: to the back of the worker's run queue, so that the
            // processes ready there run first, without a trip through the timer wheel (whose
            // next turn may be a millisecond away). Woken here rather than by
            // `tokio::task::yield_now`, which defers the wake until the worker next polls its
            // I/O driver, a system call per yield: 1.0 µs against 0.45 µs
            // (`otter_guest_yield_floor` of `otter-bench guest_call`).
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut yielded, true) {
                    return std::task::Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            })
            .await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
    }
}

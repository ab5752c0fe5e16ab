//! Time in a server: the node's clocks, and waiting without a message.
//!
//! `std::time::Instant::now` and `SystemTime::now` panic on `wasm32-unknown-unknown`, which
//! has no clock; these ask the host.
//!
//! ```no_run
//! use otter_guest::clock;
//! use std::time::Duration;
//!
//! let t0 = clock::monotonic_time();
//! clock::sleep(Duration::from_millis(10)); // only this process waits
//! let waited = clock::monotonic_time() - t0;
//! assert!(waited >= Duration::from_millis(10));
//! let now = clock::system_time(); // a std::time::SystemTime, for timestamps
//! ```

use std::time::{Duration, SystemTime};

use crate::imports::clock as host;

/// The time on a clock that never goes back, since a point fixed for the node's life
/// (Erlang's `erlang:monotonic_time`). Subtract two readings to measure an interval.
pub fn monotonic_time() -> Duration {
    Duration::from_nanos(host::monotonic_time())
}

/// The host's wall-clock time (Erlang's `os:system_time`), which may jump when the clock is
/// set: for timestamps, not for intervals.
pub fn system_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(host::system_time())
}

/// Wait `duration` inside the current callback (Erlang's `timer:sleep`), rounded up to whole
/// milliseconds, at most `u32::MAX` ms (about 49 days) at a time. Only this process waits;
/// messages queue meanwhile. A kill ends the process at once; other signals (a stop, exit
/// signals) are handled after the callback returns, as during a [`crate::call`].
/// `sleep(Duration::ZERO)` yields (Erlang's `erlang:yield/0`): the process goes to the back
/// of its scheduler's run queue and the processes ready to run there go first, so a process
/// that loops over many messages to itself leaves room for the others.
pub fn sleep(duration: Duration) {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    host::sleep(u32::try_from(ms).unwrap_or(u32::MAX));
}

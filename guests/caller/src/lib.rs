//! The many-to-one benchmark's client: the same work as a client process of `beam_bench.erl`
//! (`many_to_one/2`), which makes N sequential `gen_server:call(Server, inc)`. Here one call
//! `{"run": {"to": PID, "n": N}}` makes N calls `inc` to the server `PID`, one after the
//! other, and answers with the last reply.
//!
//! ```text
//! $ otter call client '{"run": {"to": 7, "n": 3}}'
//! 3
//! ```
//!
//! Two more requests measure what a call from a guest is made of (`otter-bench guest_call`):
//! `{"read_clock": {"n": N}}` makes N calls of the cheapest import, `clock.monotonic-time`
//! (entering the host and back), and `{"yield": {"n": N}}` N calls of `clock.sleep(0)`,
//! an import that suspends the process's fiber, lets tokio run the process again and
//! resumes it.

use std::time::Duration;

use otter_guest::{GenServer, Init, Pid, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Caller;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Req {
    Run { to: Pid, n: u64 },
    ReadClock { n: u64 },
    Yield { n: u64 },
}

impl GenServer for Caller {
    type Args = ();
    type Call = Req;
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(Caller)
    }

    fn handle_call(&mut self, req: Req, _from: ReplyTo) -> Reply<u64> {
        match req {
            Req::Run { to, n } => {
                let mut last = 0;
                for _ in 0..n {
                    // A failed call is a failed benchmark: crash, and the driver's call
                    // reports why.
                    last = otter_guest::call(to, "inc").expect("the server answers");
                }
                Reply::ok(last)
            }
            Req::ReadClock { n } => {
                let mut last = Duration::ZERO;
                for _ in 0..n {
                    last = last.max(otter_guest::clock::monotonic_time());
                }
                // The readings are used, so that no loop is optimised away.
                Reply::ok(u64::from(last.subsec_nanos() > 0))
            }
            Req::Yield { n } => {
                for _ in 0..n {
                    otter_guest::clock::sleep(Duration::ZERO);
                }
                Reply::ok(n)
            }
        }
    }
}

otter_guest::export_genserver!(Caller);

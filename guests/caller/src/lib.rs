//! The many-to-one benchmark's client: the same work as a client process of `beam_bench.erl`
//! (`many_to_one/2`), which makes N sequential `gen_server:call(Server, inc)`. Here one call
//! `{"run": {"to": PID, "n": N}}` makes N calls `inc` to the server `PID`, one after the
//! other, and answers with the last reply.
//!
//! ```text
//! $ otter call client '{"run": {"to": 7, "n": 3}}'
//! 3
//! ```

use otter_guest::{GenServer, Init, Pid, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Caller;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Req {
    Run { to: Pid, n: u64 },
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
        let Req::Run { to, n } = req;
        let mut last = 0;
        for _ in 0..n {
            // A failed call is a failed benchmark: crash, and the driver's call reports why.
            last = otter_guest::call(to, "inc").expect("the server answers");
        }
        Reply::ok(last)
    }
}

otter_guest::export_genserver!(Caller);

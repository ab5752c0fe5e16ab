//! The benchmarks' trivial counter: the same server as `bench_counter.erl` in the Erlang
//! baseline harness, so that both sides measure the same work. One addition, which the
//! Erlang server does not need: `hibernate` (as a call it answers the count first), for the
//! benchmark of hibernated-process memory.
//!
//! ```text
//! $ otter call counter '"inc"'
//! 1
//! $ otter cast counter '"inc"'
//! $ otter call counter '"get"'
//! 2
//! ```

use otter_guest::{GenServer, Init, Next, NoReply, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Counter(u64);

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Inc,
    Get,
    Hibernate,
}

impl GenServer for Counter {
    type Args = ();
    type Call = Op;
    type Reply = u64;
    type Cast = Op;
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(Counter(0))
    }

    fn handle_call(&mut self, op: Op, _from: ReplyTo) -> Reply<u64> {
        match op {
            Op::Inc => self.0 += 1,
            Op::Get => {}
            Op::Hibernate => return Reply::Reply(self.0, Next::Hibernate),
        }
        Reply::ok(self.0)
    }

    fn handle_cast(&mut self, op: Op) -> NoReply {
        match op {
            Op::Inc => self.0 += 1,
            Op::Get => {}
            Op::Hibernate => return NoReply::NoReply(Next::Hibernate),
        }
        NoReply::ok()
    }
}

otter_guest::export_genserver!(Counter);

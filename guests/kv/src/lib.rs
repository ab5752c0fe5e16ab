//! The seed's KV.Server: a key-value store whose state is a struct with the data and a
//! count of writes.
//!
//! ```text
//! $ otter call kv '{"put":["a","1"]}'
//! "ok"
//! $ otter call kv '{"get":"a"}'
//! "1"
//! ```

use std::collections::BTreeMap;

use otter_guest::{GenServer, Init, NoReply, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct State {
    data: BTreeMap<String, String>,
    writes: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Get(String),
    Put(String, String),
    Delete(String),
    Writes,
    Size,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Value(Option<String>),
    Ok(&'static str),
    Count(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cast {
    Put(String, String),
    Clear,
}

impl GenServer for State {
    type Args = ();
    type Call = Call;
    type Reply = Answer;
    type Cast = Cast;
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(State::default())
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        Reply::ok(match request {
            Call::Get(k) => Answer::Value(self.data.get(&k).cloned()),
            Call::Put(k, v) => {
                self.data.insert(k, v);
                self.writes += 1;
                Answer::Ok("ok")
            }
            Call::Delete(k) => {
                if self.data.remove(&k).is_some() {
                    self.writes += 1;
                }
                Answer::Ok("ok")
            }
            Call::Writes => Answer::Count(self.writes),
            Call::Size => Answer::Count(self.data.len() as u64),
        })
    }

    fn handle_cast(&mut self, request: Cast) -> NoReply {
        match request {
            Cast::Put(k, v) => {
                self.data.insert(k, v);
                self.writes += 1;
            }
            Cast::Clear => self.data.clear(),
        }
        NoReply::ok()
    }
}

otter_guest::export_genserver!(State);

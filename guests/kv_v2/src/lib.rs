//! KV.Server version 2: the `kv` guest after an edit, to upgrade a running `kv` to. Its
//! state gains a `version` field (the seed's `%{data: m}` → `%{data: m, version: 2}`), and
//! it answers a new call, `version`. Its `code_change` builds the new state from version
//! 1's; version 1's default `code_change` reads this state back, ignoring `version`.
//!
//! ```text
//! $ otter upgrade kv kv_v2.wasm
//! $ otter call kv '"version"'
//! 2
//! ```

use std::collections::BTreeMap;

use otter_guest::{CodeChange, GenServer, Init, NoReply, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct State {
    data: BTreeMap<String, String>,
    writes: u64,
    version: u64,
}

/// Version 1's state, as it exports it.
#[derive(Deserialize)]
struct StateV1 {
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
    /// New in version 2: the version of the state's layout.
    Version,
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
    const VSN: &'static str = "2";

    fn init(_: ()) -> Init<Self> {
        Init::ok(State {
            data: BTreeMap::new(),
            writes: 0,
            version: 2,
        })
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
            Call::Version => Answer::Count(self.version),
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

    fn code_change(change: CodeChange<'_>) -> Result<Self, String> {
        if change.old_vsn() == "1" {
            let old: StateV1 = change.old_state()?;
            return Ok(State {
                data: old.data,
                writes: old.writes,
                version: 2,
            });
        }
        change.old_state()
    }
}

otter_guest::export_genserver!(State);

//! A read-through cache in front of a KV server (guests/kv's protocol), the kind of server
//! whose tests want its neighbours mocked: `get` calls the store named in its args on a
//! miss, `put` casts the write to the store and tells every subscriber `{"changed": ...}`.
//!
//! ```text
//! $ otter call cache '{"put":["a","1"]}'      # casts {"put":["a","1"]} to the store
//! "ok"
//! $ otter call cache '{"get":"b"}'            # a miss: calls the store with {"get":"b"}
//! null
//! ```

use std::collections::BTreeMap;

use otter_guest::{GenServer, Init, NoReply, Pid, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Cache {
    /// The name of the KV server behind the cache.
    store: String,
    cached: BTreeMap<String, Option<String>>,
    subscribers: Vec<Pid>,
}

/// What it starts with: the store's registered name.
#[derive(Deserialize)]
struct Args {
    store: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Get(String),
    Put(String, String),
    Subscribe(Pid),
}

/// What the store is asked (guests/kv's requests).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum StoreCall<'a> {
    Get(&'a str),
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum StoreCast<'a> {
    Put(&'a str, &'a str),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Value(Option<String>),
    Ok(&'static str),
    Error(String),
}

/// What subscribers are sent after each put.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Event<'a> {
    Changed { key: &'a str, value: &'a str },
}

impl GenServer for Cache {
    type Args = Args;
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(args: Args) -> Init<Self> {
        Init::ok(Cache {
            store: args.store,
            cached: BTreeMap::new(),
            subscribers: Vec::new(),
        })
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        Reply::ok(match request {
            Call::Get(key) => match self.cached.get(&key) {
                Some(value) => Answer::Value(value.clone()),
                None => {
                    match otter_guest::call::<_, Option<String>>(
                        self.store.as_str(),
                        &StoreCall::Get(&key),
                    ) {
                        Ok(value) => {
                            self.cached.insert(key, value.clone());
                            Answer::Value(value)
                        }
                        Err(e) => Answer::Error(format!("the store failed: {e}")),
                    }
                }
            },
            Call::Put(key, value) => {
                otter_guest::cast(self.store.as_str(), &StoreCast::Put(&key, &value));
                for &pid in &self.subscribers {
                    let _ = otter_guest::send(
                        pid,
                        &Event::Changed {
                            key: &key,
                            value: &value,
                        },
                    );
                }
                self.cached.insert(key, Some(value));
                Answer::Ok("ok")
            }
            Call::Subscribe(pid) => {
                self.subscribers.push(pid);
                Answer::Ok("ok")
            }
        })
    }

    fn handle_cast(&mut self, _: ()) -> NoReply {
        NoReply::ok()
    }
}

otter_guest::export_genserver!(Cache);

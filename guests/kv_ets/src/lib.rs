//! The chapter's KVWithETS: the server owns a protected shared table; `put` is a call, so
//! writes are serialized through the server; `get` reads the table directly in the caller's
//! process, without a message to the server.
//!
//! One module, two roles (its start args):
//! - none, `{}` or `{"role": "server"}`: the server. It creates the table (`kv_ets` unless
//!   `"table"` says otherwise) and answers `put`, `delete`, `writes`, and `get` (a read in
//!   its own process, for comparison).
//! - `{"role": "reader"}`: a client process. Its `get` goes through [`get`], the client
//!   side: a read of the table in the reader's own process. `put` tries to write the table
//!   directly and is refused (the table is protected). `read` and `start_reading` /
//!   `stop_reading` read in a loop (the benchmark's readers).
//!
//! ```text
//! $ otter call kv_ets '{"put":["a","1"]}'
//! "ok"
//! $ otter call reader '{"get":"a"}'      # read in the reader's process, not the server's
//! "1"
//! $ otter call reader '{"put":["a","2"]}'
//! {"refused":"access denied by the table's protection"}
//! ```

use otter_guest::table::{Access, Kind, Options, Table};
use otter_guest::{GenServer, Info, Init, NoReply, Reply, ReplyTo, self_pid, send};
use serde::{Deserialize, Serialize};

/// The table's name unless the start args give another.
pub const TABLE: &str = "kv_ets";

/// How many reads a reading loop does per message before it lets the others run.
const BATCH: u32 = 256;

/// The client side of the chapter's `KV.get/1`: `:ets.lookup` in the calling process.
pub fn get(table: &str, key: &str) -> Option<String> {
    Table::<String, String>::named(table)
        .get(&key.to_owned())
        .ok()
        .flatten()
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    #[default]
    Server,
    Reader,
}

#[derive(Deserialize)]
#[serde(default)]
struct Args {
    role: Role,
    table: String,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            role: Role::Server,
            table: TABLE.to_owned(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct State {
    role: Role,
    table: String,
    writes: u64,
    /// A reader's reading loop: its keys and how many reads it did.
    reading: Option<u32>,
    reads: u64,
    /// The reading loop's keys, made once.
    #[serde(skip)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Put(String, String),
    Delete(String),
    Get(String),
    Writes,
    Size,
    /// Read keys `k0`..`k{keys-1}` in turn, `reads` times; answers how many were found.
    Read {
        keys: u32,
        reads: u32,
    },
    /// Read `k0`..`k{keys-1}` in a loop, `BATCH` reads per message, until `stop_reading`.
    StartReading {
        keys: u32,
    },
    /// Stop the loop; answers how many reads it did.
    StopReading,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Refused(String),
    #[serde(untagged)]
    Value(Option<String>),
    #[serde(untagged)]
    Ok(&'static str),
    #[serde(untagged)]
    Count(u64),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tick {
    Read,
}

fn key(i: u32) -> String {
    format!("k{i}")
}

impl State {
    fn table(&self) -> Table<String, String> {
        Table::named(&self.table)
    }

    fn read(&mut self, keys: u32, reads: u32) -> u64 {
        let table = self.table();
        let keys = keys.max(1);
        if self.keys.len() != keys as usize {
            self.keys = (0..keys).map(key).collect();
        }
        let mut found = 0;
        for i in 0..reads {
            // Start where the last batch stopped, so every key is read in turn.
            let k = &self.keys[((self.reads + u64::from(i)) % u64::from(keys)) as usize];
            if matches!(table.get(k), Ok(Some(_))) {
                found += 1;
            }
        }
        self.reads += u64::from(reads);
        found
    }
}

impl GenServer for State {
    /// None (no args, `null`) is the server with the default table.
    type Args = Option<Args>;
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = Tick;
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(args: Option<Args>) -> Init<Self> {
        let args = args.unwrap_or_default();
        if args.role == Role::Server {
            // :ets.new(:kv_ets, [:named_table, :set, :protected, read_concurrency: true])
            let options = Options::new(Kind::Set)
                .access(Access::Protected)
                .read_concurrency();
            if let Err(e) = Table::<String, String>::new(&args.table, options) {
                return Init::Stop(otter_guest::ExitReason::Error(format!(
                    "cannot create table {}: {e}",
                    args.table
                )));
            }
        }
        Init::ok(State {
            role: args.role,
            table: args.table,
            writes: 0,
            reading: None,
            reads: 0,
            keys: Vec::new(),
        })
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        Reply::ok(match request {
            Call::Put(k, v) => match self.table().insert(&k, &v) {
                Ok(()) => {
                    self.writes += 1;
                    Answer::Ok("ok")
                }
                Err(e) => Answer::Refused(e.to_string()),
            },
            Call::Delete(k) => match self.table().delete(&k) {
                Ok(()) => {
                    self.writes += 1;
                    Answer::Ok("ok")
                }
                Err(e) => Answer::Refused(e.to_string()),
            },
            Call::Get(k) => Answer::Value(get(&self.table, &k)),
            Call::Writes => Answer::Count(self.writes),
            Call::Size => Answer::Count(self.table().size().unwrap_or(0)),
            Call::Read { keys, reads } => Answer::Count(self.read(keys, reads)),
            Call::StartReading { keys } => {
                self.reads = 0;
                if self.reading.replace(keys).is_none() {
                    let _ = send(self_pid(), &Tick::Read);
                }
                Answer::Ok("ok")
            }
            Call::StopReading => {
                self.reading = None;
                Answer::Count(self.reads)
            }
        })
    }

    fn handle_info(&mut self, msg: Info<Tick>) -> NoReply {
        if let (Info::Message(Tick::Read), Some(keys)) = (msg, self.reading) {
            self.read(keys, BATCH);
            // Let every other ready process run before the next batch, as an Erlang process
            // is descheduled every few thousand reductions: the writer's calls to the server
            // get their turn however many readers there are.
            otter_guest::clock::sleep(std::time::Duration::ZERO);
            let _ = send(self_pid(), &Tick::Read);
        }
        NoReply::ok()
    }
}

otter_guest::export_genserver!(State);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use otter_guest::testing;

    fn put(k: &str, v: &str) -> BTreeMap<&'static str, (String, String)> {
        BTreeMap::from([("put", (k.to_owned(), v.to_owned()))])
    }

    #[test]
    fn a_put_through_the_server_is_read_by_a_reader_and_a_readers_write_is_refused() {
        testing::reset();
        let mut server = testing::init::<State>(None);
        let ok = testing::call(&mut server, &put("a", "1")).unwrap();
        assert!(matches!(ok, Reply::Reply(Answer::Ok("ok"), _)));
        assert_eq!(get(TABLE, "a").as_deref(), Some("1"));

        // Another process: the fake host tells processes apart by their pid.
        testing::set_self(testing::SELF_PID + 1);
        let mut reader = testing::init::<State>(Some(Args {
            role: Role::Reader,
            table: TABLE.to_owned(),
        }));
        let refused = testing::call(&mut reader, &put("a", "2")).unwrap();
        assert!(matches!(refused, Reply::Reply(Answer::Refused(_), _)));
        assert_eq!(get(TABLE, "a").as_deref(), Some("1"));
    }
}

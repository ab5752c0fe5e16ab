//! A test guest for the host's shared tables: each call runs one table operation in this
//! process and answers `{"ok": result}` or `{"err": "why"}`. Keys and values are any JSON
//! value; `raw_*` requests hand the host bytes as they come, to attack it.

use otter_guest::bindings::otter::genserver::table as raw;
use otter_guest::table::{Access, Kind, Options, Table, TableError, Transfer};
use otter_guest::{GenServer, Info, Init, NoReply, Pid, Reply, ReplyTo};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type Any = Table<Value, Value>;

#[derive(Serialize, Deserialize, Default)]
struct State {
    /// `ETS-TRANSFER` messages received, in order.
    transfers: Vec<Transfer<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    New {
        table: String,
        kind: String,
        access: String,
        heir: Option<Pid>,
    },
    Insert {
        table: String,
        key: Value,
        value: Value,
    },
    InsertMany {
        table: String,
        objects: Vec<(Value, Value)>,
    },
    InsertNew {
        table: String,
        key: Value,
        value: Value,
    },
    Lookup {
        table: String,
        key: Value,
    },
    Member {
        table: String,
        key: Value,
    },
    Delete {
        table: String,
        key: Value,
    },
    DeleteObject {
        table: String,
        key: Value,
        value: Value,
    },
    UpdateCounter {
        table: String,
        key: Value,
        incr: i64,
        default: Option<i64>,
    },
    Prefix {
        table: String,
        prefix: Value,
    },
    /// Keys from `from` (included) to `to` (excluded); null is unbounded.
    Range {
        table: String,
        from: Value,
        to: Value,
    },
    Page {
        table: String,
        after: Option<Value>,
        limit: u32,
    },
    ToList {
        table: String,
    },
    Size {
        table: String,
    },
    Owner {
        table: String,
    },
    DeleteTable {
        table: String,
    },
    GiveAway {
        table: String,
        to: Pid,
        data: Value,
    },
    SetHeir {
        table: String,
        heir: Option<Pid>,
    },
    Transfers,
    /// Insert `count` objects with keys `i` and values of `size` bytes; answers how many
    /// went in before the first error, and the error.
    Fill {
        table: String,
        count: u32,
        size: u32,
    },
    /// Insert a text key and a text value of these sizes.
    InsertBig {
        table: String,
        key_size: u32,
        value_size: u32,
    },
    /// Create tables `{prefix}0`, `{prefix}1`, ... until one fails; answers how many.
    NewMany {
        prefix: String,
        count: u32,
    },
    /// Insert these bytes as the key (and a small value), unchecked by the SDK.
    RawInsert {
        table: String,
        key: Vec<u8>,
    },
    /// Look these bytes up as the key.
    RawLookup {
        table: String,
        key: Vec<u8>,
    },
    /// Select with these bytes as the prefix.
    RawPrefix {
        table: String,
        prefix: Vec<u8>,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Value),
    Err(String),
}

fn answer<T: Serialize>(r: Result<T, TableError>) -> Answer {
    match r {
        Ok(v) => Answer::Ok(json!(v)),
        Err(e) => Answer::Err(e.to_string()),
    }
}

fn raw_answer<T: Serialize>(r: Result<T, raw::TableError>) -> Answer {
    match r {
        Ok(v) => Answer::Ok(json!(v)),
        Err(e) => Answer::Err(format!("{e:?}")),
    }
}

fn kind(k: &str) -> Kind {
    match k {
        "ordered_set" => Kind::OrderedSet,
        "bag" => Kind::Bag,
        "duplicate_bag" => Kind::DuplicateBag,
        _ => Kind::Set,
    }
}

fn access(a: &str) -> Access {
    match a {
        "public" => Access::Public,
        "private" => Access::Private,
        _ => Access::Protected,
    }
}

fn bound(v: Value) -> std::ops::Bound<Value> {
    if v.is_null() {
        std::ops::Bound::Unbounded
    } else {
        std::ops::Bound::Included(v)
    }
}

fn handle(state: &State, call: Call) -> Answer {
    match call {
        Call::New {
            table,
            kind: k,
            access: a,
            heir,
        } => {
            let mut options = Options::new(kind(&k)).access(access(&a));
            if let Some(h) = heir {
                options = options.heir(h, &json!({"heir_of": table}));
            }
            answer(Any::new(&table, options).map(|_| ()))
        }
        Call::Insert { table, key, value } => answer(Any::named(&table).insert(&key, &value)),
        Call::InsertMany { table, objects } => answer(Any::named(&table).insert_many(&objects)),
        Call::InsertNew { table, key, value } => {
            answer(Any::named(&table).insert_new(&key, &value))
        }
        Call::Lookup { table, key } => answer(Any::named(&table).lookup(&key)),
        Call::Member { table, key } => answer(Any::named(&table).member(&key)),
        Call::Delete { table, key } => answer(Any::named(&table).delete(&key)),
        Call::DeleteObject { table, key, value } => {
            answer(Any::named(&table).delete_object(&key, &value))
        }
        Call::UpdateCounter {
            table,
            key,
            incr,
            default,
        } => answer(Any::named(&table).update_counter(&key, incr, default)),
        Call::Prefix { table, prefix } => answer(Any::named(&table).select_prefix(&prefix)),
        Call::Range { table, from, to } => {
            let to = match bound(to) {
                std::ops::Bound::Included(t) => std::ops::Bound::Excluded(t),
                b => b,
            };
            answer(Any::named(&table).select_range((bound(from), to)))
        }
        Call::Page {
            table,
            after,
            limit,
        } => answer(
            Any::named(&table)
                .select_page(.., after.as_ref(), limit)
                .map(|p| json!({"objects": p.objects, "more": p.more})),
        ),
        Call::ToList { table } => answer(Any::named(&table).to_list()),
        Call::Size { table } => answer(Any::named(&table).size()),
        Call::Owner { table } => answer(Any::named(&table).owner()),
        Call::DeleteTable { table } => answer(Any::named(&table).delete_table()),
        Call::GiveAway { table, to, data } => answer(Any::named(&table).give_away(to, &data)),
        Call::SetHeir { table, heir } => {
            let data = json!({"heir_of": table});
            answer(Any::named(&table).set_heir(heir.map(|h| (h, &data))))
        }
        Call::Transfers => Answer::Ok(json!(state.transfers)),
        Call::Fill { table, count, size } => {
            let t = Any::named(&table);
            let value = Value::String("x".repeat(size as usize));
            for i in 0..count {
                if let Err(e) = t.insert(&json!(i), &value) {
                    return Answer::Ok(json!([i, e.to_string()]));
                }
            }
            Answer::Ok(json!([count, null]))
        }
        Call::InsertBig {
            table,
            key_size,
            value_size,
        } => answer(Any::named(&table).insert(
            &Value::String("k".repeat(key_size as usize)),
            &Value::String("v".repeat(value_size as usize)),
        )),
        Call::NewMany { prefix, count } => {
            for i in 0..count {
                if let Err(e) = Any::new(&format!("{prefix}{i}"), Options::default()) {
                    return Answer::Ok(json!([i, e.to_string()]));
                }
            }
            Answer::Ok(json!([count, null]))
        }
        Call::RawInsert { table, key } => {
            raw_answer(raw::insert(&table, &[(key, otter_guest::encode(&1))]))
        }
        Call::RawLookup { table, key } => raw_answer(raw::lookup(&table, &key).map(|v| v.len())),
        Call::RawPrefix { table, prefix } => raw_answer(
            raw::select(&table, &raw::KeyMatch::Prefix(prefix), None, 10).map(|p| p.objects.len()),
        ),
    }
}

#[derive(Deserialize)]
enum Message {
    #[serde(rename = "ETS-TRANSFER")]
    Transfer(Transfer<Value>),
}

impl GenServer for State {
    type Args = ();
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = Message;
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(_: ()) -> Init<Self> {
        Init::ok(State::default())
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        Reply::ok(handle(self, request))
    }

    fn handle_info(&mut self, msg: Info<Message>) -> NoReply {
        if let Info::Message(Message::Transfer(t)) = msg {
            self.transfers.push(t);
        }
        NoReply::ok()
    }
}

otter_guest::export_genserver!(State);

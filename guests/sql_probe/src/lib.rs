//! A test server for the `sql` interface: it opens the databases and runs the statements
//! its callers name, and answers what the host said, so tests can attack the interface.
//!
//! ```text
//! {"open": "orders"}                      -> {"ok": 0} (a connection number) | {"err": "..."}
//! {"execute": [0, "INSERT ...", [1, "a"]]} -> {"ok": changed}
//! {"query": [0, "SELECT ...", []]}         -> {"ok": {"columns": [...], "rows": [[...]]}}
//! {"execute_many": [0, "INSERT ...", [[1], [2]]]}
//! {"close": 0}
//! ```

use std::collections::BTreeMap;

use otter_guest::sql::{Connection, Error, Value};
use otter_guest::{GenServer, Init, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Probe {
    #[serde(skip)]
    open: BTreeMap<u32, Connection>,
    next: u32,
}

/// A parameter as JSON gives it.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum Param {
    Integer(i64),
    Real(f64),
    Text(String),
    /// Last: `null` is the only input it takes that the others do not.
    Null(Option<()>),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Open(String),
    Close(u32),
    Execute(u32, String, Vec<Param>),
    Query(u32, String, Vec<Param>),
    ExecuteMany(u32, String, Vec<Vec<Param>>),
    /// Open connections until one fails: how many it held.
    OpenAll(String),
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Out),
    Err(String),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Out {
    Count(u64),
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Param>>,
    },
}

fn values(params: Vec<Param>) -> Vec<Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Null(_) => Value::Null,
            Param::Integer(i) => Value::Integer(i),
            Param::Real(r) => Value::Real(r),
            Param::Text(t) => Value::Text(t),
        })
        .collect()
}

fn param(v: Value) -> Param {
    match v {
        Value::Null => Param::Null(None),
        Value::Integer(i) => Param::Integer(i),
        Value::Real(r) => Param::Real(r),
        Value::Text(t) => Param::Text(t),
        Value::Blob(b) => Param::Text(format!("blob of {} bytes", b.len())),
    }
}

/// The error's kind and text, e.g. `denied: not authorized`.
fn describe(e: Error) -> String {
    match e {
        Error::NotGranted(n) => format!("not_granted: {n}"),
        Error::TooManyConnections => "too_many_connections".into(),
        Error::Denied(m) => format!("denied: {m}"),
        Error::Interrupted => "interrupted".into(),
        Error::TooLarge(m) => format!("too_large: {m}"),
        Error::Sqlite(m) => format!("sqlite: {m}"),
    }
}

impl Probe {
    fn conn(&self, n: u32) -> Result<&Connection, String> {
        self.open
            .get(&n)
            .ok_or_else(|| format!("no connection {n}"))
    }

    fn answer(&mut self, call: Call) -> Result<Out, String> {
        match call {
            Call::Open(name) => {
                let c = Connection::open(&name).map_err(describe)?;
                let n = self.next;
                self.next += 1;
                self.open.insert(n, c);
                Ok(Out::Count(n.into()))
            }
            Call::Close(n) => {
                self.open.remove(&n);
                Ok(Out::Count(0))
            }
            Call::Execute(n, sql, params) => self
                .conn(n)?
                .execute(&sql, &values(params))
                .map(Out::Count)
                .map_err(describe),
            Call::ExecuteMany(n, sql, rows) => {
                let rows: Vec<Vec<Value>> = rows.into_iter().map(values).collect();
                self.conn(n)?
                    .execute_many(&sql, &rows)
                    .map(Out::Count)
                    .map_err(describe)
            }
            Call::Query(n, sql, params) => {
                let rows = self
                    .conn(n)?
                    .query(&sql, &values(params))
                    .map_err(describe)?;
                Ok(Out::Rows {
                    columns: rows.columns,
                    rows: rows
                        .rows
                        .into_iter()
                        .map(|r| r.into_iter().map(param).collect())
                        .collect(),
                })
            }
            Call::OpenAll(name) => loop {
                match Connection::open(&name) {
                    Ok(c) => {
                        let n = self.next;
                        self.next += 1;
                        self.open.insert(n, c);
                    }
                    Err(e) => {
                        return Err(format!("{} open; then {}", self.open.len(), describe(e)));
                    }
                }
            },
        }
    }
}

impl GenServer for Probe {
    type Args = ();
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(_: ()) -> Init<Self> {
        Init::ok(Probe::default())
    }

    fn handle_call(&mut self, call: Call, _from: ReplyTo) -> Reply<Answer> {
        Reply::ok(match self.answer(call) {
            Ok(out) => Answer::Ok(out),
            Err(e) => Answer::Err(e),
        })
    }
}

otter_guest::export_genserver!(Probe);

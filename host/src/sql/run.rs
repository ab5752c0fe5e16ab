//! Running one statement: binding the guest's values, and reading rows within the bounds.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ToSql, params_from_iter};

use super::guard::{check_statement, error};
use super::{MAX_RESULT_BYTES, MAX_ROWS};
use crate::bindings::otter::genserver::sql::{Error, Rows, Value};

/// A guest's value as a parameter.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn params(values: &[Value]) -> impl rusqlite::Params + '_ {
    params_from_iter(values.iter().map(Param))
}

/// What a value costs a result: its text or blob, and 16 bytes.
const VALUE_OVERHEAD: usize = 16;

pub(super) fn execute(
    db: &mut rusqlite::Connection,
    statement: &str,
    values: &[Value],
) -> Result<u64, Error> {
    check_statement(statement)?;
    let mut stmt = db.prepare(statement).map_err(error)?;
    let changed = stmt.execute(params(values)).map_err(error)?;
    Ok(changed as u64)
}

pub(super) fn execute_many(
    db: &mut rusqlite::Connection,
    statement: &str,
    values: &[Vec<Value>],
) -> Result<u64, Error> {
    check_statement(statement)?;
    // A savepoint is a transaction of its own outside one, and nests inside one the guest
    // began; dropped without a commit, it rolls back.
    let tx = db.savepoint().map_err(error)?;
    let mut changed = 0u64;
    {
        let mut stmt = tx.prepare(statement).map_err(error)?;
        for (i, row) in values.iter().enumerate() {
            let n = stmt.execute(params(row)).map_err(|e| match error(e) {
                Error::Sqlite(m) => Error::Sqlite(format!("parameter list {i}: {m}")),
                other => other,
            })?;
            changed = changed.saturating_add(n as u64);
        }
    }
    tx.commit().map_err(error)?;
    Ok(changed)
}

pub(super) fn query(
    db: &mut rusqlite::Connection,
    statement: &str,
    values: &[Value],
) -> Result<Rows, Error> {
    check_statement(statement)?;
    let mut stmt = db.prepare(statement).map_err(error)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut bytes = columns
        .iter()
        .map(|c| c.len() + VALUE_OVERHEAD)
        .sum::<usize>();
    let mut out = Vec::new();
    let mut rows = stmt.query(params(values)).map_err(error)?;
    while let Some(row) = rows.next().map_err(error)? {
        if out.len() == MAX_ROWS {
            return Err(Error::TooLarge(format!("more than {MAX_ROWS} rows")));
        }
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let v = match row.get_ref(i).map_err(error)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(r) => Value::Real(r),
                ValueRef::Text(t) => {
                    let text = String::from_utf8_lossy(t).into_owned();
                    bytes = bytes.saturating_add(text.len());
                    Value::Text(text)
                }
                ValueRef::Blob(b) => {
                    bytes = bytes.saturating_add(b.len());
                    Value::Blob(b.to_vec())
                }
            };
            bytes = bytes.saturating_add(VALUE_OVERHEAD);
            if bytes > MAX_RESULT_BYTES {
                return Err(Error::TooLarge(format!(
                    "more than {MAX_RESULT_BYTES} bytes"
                )));
            }
            values.push(v);
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

//! `otter:genserver/sql`: the databases a process was granted (see [`crate::sql`]). Only
//! the calling process waits for a statement; it runs on a blocking thread.

use wasmtime::component::Resource;

use crate::bindings::otter::genserver::sql::{
    Connection, Error, Host, HostConnection, Rows, Value,
};
use crate::host::ProcessCtx;

impl Host for ProcessCtx {}

impl HostConnection for ProcessCtx {
    async fn open(&mut self, name: String) -> Result<Resource<Connection>, Error> {
        let Some(sql) = self.sql.as_mut() else {
            return Err(Error::NotGranted(name.chars().take(255).collect()));
        };
        sql.open(&name).await.map(Resource::new_own)
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<u64, Error> {
        match &self.sql {
            Some(sql) => sql.execute(conn.rep(), statement, params).await,
            None => Err(closed()),
        }
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<Rows, Error> {
        match &self.sql {
            Some(sql) => sql.query(conn.rep(), statement, params).await,
            None => Err(closed()),
        }
    }

    async fn execute_many(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<Vec<Value>>,
    ) -> Result<u64, Error> {
        match &self.sql {
            Some(sql) => sql.execute_many(conn.rep(), statement, params).await,
            None => Err(closed()),
        }
    }

    fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        if let Some(sql) = &mut self.sql {
            sql.drop_handle(conn.rep());
        }
        Ok(())
    }
}

fn closed() -> Error {
    Error::Sqlite("connection closed".into())
}

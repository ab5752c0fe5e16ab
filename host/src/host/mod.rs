//! What a guest imports: one module per WIT interface, all on one store data type.

mod clock;
mod log;
mod open_files;
mod open_sockets;
mod process;
mod registry;
mod spawn;
mod sql;
mod stdio;
mod supervisor;
mod table;
mod telemetry;
pub(crate) mod wasi;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{Genserver, otter};
pub(crate) use crate::process::ProcessCtx;

/// The imports every process's instance is linked with.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<ProcessCtx>> {
    let mut linker = Linker::new(engine);
    Genserver::add_to_linker::<ProcessCtx, HasSelf<ProcessCtx>>(&mut linker, |ctx| ctx)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(linker)
}

impl otter::genserver::types::Host for ProcessCtx {}

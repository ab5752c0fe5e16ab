//! The host's imports as the SDK calls them: the real ones in a wasm guest, the recording
//! fake of [`crate::testing`] in a native build, so that a server's unit tests run with a
//! plain `cargo test`.
//!
//! The fake mirrors the generated modules function for function, with the same signatures:
//! a new import in the WIT is one new function in `testing/fake.rs`, and a native build
//! that lacks it does not compile.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::otter::genserver::{
    clock, log, process, registry, spawn, sql, supervisor, table, telemetry,
};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::fake::{
    clock, log, process, registry, spawn, sql, supervisor, telemetry,
};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::fake_table as table;

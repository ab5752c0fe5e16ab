//! End-to-end tests: the real host with real wasm guests, through the embedding API. (The
//! real `otter` binary is tested in host/tests/cli/.) Each test is named for the OTP
//! behaviour it pins.

mod batch;
mod batch_server;
mod budgets;
mod calls;
mod capabilities;
mod child_grants;
mod decoding;
mod dynamic;
mod embedded;
mod file_server;
mod flow;
mod footprint;
mod guest_files;
mod hostile;
mod isolation;
mod kv_ets;
mod lifecycle;
mod limits;
mod links;
mod loading;
mod names;
mod order;
mod order_sink;
mod overload;
mod registry;
mod scale;
mod soak;
mod spares;
mod sql;
mod starting;
mod state;
mod supervised;
mod supervision;
mod supervision_model;
mod support;
mod table_bounds;
mod tables;
mod telemetry;
mod telemetry_series;
mod terminate_after_panic;
mod time;
mod upgrade;
mod wasi_upgrade;

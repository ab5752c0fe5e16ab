//! End-to-end tests: the real host with real wasm guests, through the embedding API. (The
//! real `otter` binary is tested in host/tests/cli/.) Each test is named for the OTP
//! behaviour it pins.

mod batch;
mod budgets;
mod calls;
mod capabilities;
mod child_grants;
mod decoding;
mod dynamic;
mod embedded;
mod flow;
mod footprint;
mod hostile;
mod isolation;
mod lifecycle;
mod limits;
mod links;
mod loading;
mod names;
mod order;
mod overload;
mod registry;
mod scale;
mod soak;
mod starting;
mod state;
mod supervised;
mod supervision;
mod supervision_model;
mod support;
mod telemetry;
mod time;
mod upgrade;

//! The `otter` binary end to end: `otter run` as a real child process serving a manifest
//! of real guests, and the client commands talking to it through its control socket.

mod broken_modules;
mod capabilities;
mod clients;
mod control;
mod hostile;
mod lifecycle;
mod limits;
mod loading;
mod logs;
mod manifest;
mod manifest_numbers;
mod newcomer;
mod output;
mod reload;
mod reload_grants;
mod reload_refusals;
mod sql;
mod start;
mod supervisors;
mod support;
mod telemetry;
mod terminate;
mod upgrade;

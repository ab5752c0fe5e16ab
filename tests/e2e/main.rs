//! End-to-end tests: the real host with real wasm guests (and the real `otter` binary in
//! `cli`). Items refer to the numbered behaviours in SEMANTICS.md.

mod calls;
mod cli;
mod flow;
mod isolation;
mod lifecycle;
mod names;
mod scale;
mod support;

//! Where process stacks and linear memories live.

use wasmtime::Config;

use crate::engine::EngineConfig;

pub(crate) fn install(_config: &mut Config, _cfg: &EngineConfig) {}

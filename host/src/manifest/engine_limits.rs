//! `[node]` settings of the engine that runs every process: the wasm stack one callback may
//! use (`max_wasm_stack`), the clock that preempts and times callbacks (`epoch_tick_ms`) and
//! how long a module's own code may run while it is loaded (`load_timeout_ms`).

use std::time::Duration;

use super::ManifestError;
use super::parse::Parser;
use super::raw::RawNode;

pub use crate::engine::{MAX_EPOCH_TICK, MAX_LOAD_TIMEOUT, MAX_WASM_STACK, MIN_WASM_STACK};

/// The engine settings a manifest sets; `None` keeps the node's default.
#[derive(Debug, Default)]
pub(super) struct EngineLimits {
    pub(super) max_wasm_stack: Option<usize>,
    pub(super) epoch_tick: Option<Duration>,
    pub(super) load_timeout: Option<Duration>,
}

impl Parser<'_> {
    /// `max_wasm_stack` within [`MIN_WASM_STACK`]..=[`MAX_WASM_STACK`]; `epoch_tick_ms`
    /// at most [`MAX_EPOCH_TICK`] and at most the node's `callback_timeout_ms` (a time
    /// limit is counted in ticks: a tick longer than it cannot measure it);
    /// `load_timeout_ms` positive and at most [`MAX_LOAD_TIMEOUT`].
    pub(super) fn engine_limits(
        &self,
        node: Option<&RawNode>,
        callback_timeout: Option<Duration>,
    ) -> Result<EngineLimits, ManifestError> {
        let Some(node) = node else {
            return Ok(EngineLimits::default());
        };
        let max_wasm_stack = match &node.max_wasm_stack {
            Some(v) => {
                let bytes = usize::try_from(*v.get_ref()).unwrap_or(usize::MAX);
                let why = if bytes < MIN_WASM_STACK {
                    format!("at least {MIN_WASM_STACK} bytes: less cannot run a callback")
                } else if bytes > MAX_WASM_STACK {
                    format!(
                        "at most {MAX_WASM_STACK} bytes: every process reserves its stack up front"
                    )
                } else {
                    String::new()
                };
                if !why.is_empty() {
                    return Err(self.error(&v.span(), "node.max_wasm_stack", why));
                }
                Some(bytes)
            }
            None => None,
        };
        let epoch_tick = self
            .positive(&node.epoch_tick_ms, "epoch_tick_ms")?
            .map(Duration::from_millis);
        if let (Some(tick), Some(v)) = (epoch_tick, &node.epoch_tick_ms) {
            if tick > MAX_EPOCH_TICK {
                return Err(self.error(
                    &v.span(),
                    "node.epoch_tick_ms",
                    format!(
                        "at most {} ms: a busy callback yields its thread only at a tick",
                        MAX_EPOCH_TICK.as_millis()
                    ),
                ));
            }
            if let Some(limit) = callback_timeout
                && tick > limit
            {
                return Err(self.error(
                    &v.span(),
                    "node.epoch_tick_ms",
                    format!(
                        "at most callback_timeout_ms ({} ms): callbacks are timed in ticks",
                        limit.as_millis()
                    ),
                ));
            }
        }
        let load_timeout = self
            .positive(&node.load_timeout_ms, "load_timeout_ms")?
            .map(Duration::from_millis);
        if let (Some(limit), Some(v)) = (load_timeout, &node.load_timeout_ms)
            && limit > MAX_LOAD_TIMEOUT
        {
            return Err(self.error(
                &v.span(),
                "node.load_timeout_ms",
                format!(
                    "at most {} ms: a module's code that needs longer to load is stuck",
                    MAX_LOAD_TIMEOUT.as_millis()
                ),
            ));
        }
        Ok(EngineLimits {
            max_wasm_stack,
            epoch_tick,
            load_timeout,
        })
    }
}

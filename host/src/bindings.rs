//! The only place the host generates code from `wit/`.

wasmtime::component::bindgen!({
    world: "genserver",
    path: "../wit",
    imports: {
        "otter:genserver/process.call": async,
        "otter:genserver/supervisor.start-child": async,
        "otter:genserver/supervisor.terminate-child": async,
        "otter:genserver/supervisor.which-children": async,
        "otter:genserver/supervisor.count-children": async,
        "otter:genserver/supervisor.get-childspec": async,
        "otter:genserver/spawn.start": async,
        "otter:genserver/spawn.start-link": async,
        "otter:genserver/spawn.start-monitor": async,
        "otter:genserver/clock.sleep": async,
        "otter:genserver/sql.[static]connection.open": async,
        "otter:genserver/sql.[method]connection.execute": async,
        "otter:genserver/sql.[method]connection.query": async,
        "otter:genserver/sql.[method]connection.execute-many": async,
        default: trappable,
    },
    exports: { default: async },
});

pub(crate) use self::otter::genserver::types::{
    Down as WitDown, Envelope as WitEnvelope, ExitReason as WitExitReason,
    ExitSignal as WitExitSignal, Info as WitInfo, Next as WitNext, Outcome as WitOutcome,
    ReplyTo as WitReplyTo, TimerFired as WitTimerFired,
};
pub(crate) use exports::otter::genserver::server::{CallResult, InitResult, NoreplyResult};

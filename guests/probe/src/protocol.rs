//! What the tests send the probe and what it answers: start arguments, requests, casts,
//! messages, and the JSON-like values it replies with.

use otter_guest::{CallError, Dest, ExitReason};
use serde::{Deserialize, Serialize};

/// How `init` behaves.
#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    #[default]
    Ok,
    Ignore,
    Stop(String),
    Panic,
    /// Spin forever inside init.
    Loop,
    /// Spin forever inside init while this name is registered; start normally otherwise.
    LoopWhileNamed(String),
    Continue(String),
    Timeout(u32),
    Hibernate,
    /// Send a message to itself, then continue: the continue must run first.
    SendSelfThenContinue,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Args {
    pub(crate) mode: Mode,
    pub(crate) observer: Option<String>,
    pub(crate) tag: Option<String>,
    /// `[registry, key]`: register under this key (value: this probe's tag) in init; a
    /// refusal stops the start.
    pub(crate) register: Option<(String, Value)>,
    /// Trap exits from init on (so a restarted probe traps too).
    pub(crate) trap_exit: bool,
    /// Log this line from init, with a field `said=<it>`.
    pub(crate) say: Option<String>,
}

/// How `code_change` behaves, from its `extra` (anything else: migrate).
#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Upgrade {
    #[default]
    Ok,
    Error(String),
    Trap,
    Loop,
    /// Allocate until the memory limit.
    Alloc,
    /// Refuse in the probe with this tag only.
    FailTag(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Request {
    Ping,
    Log,
    /// The version this instance runs.
    Vsn,
    Add(u64),
    Panic,
    Trap,
    Loop,
    Spin(u64),
    /// Wait this many milliseconds inside the callback (messages queue meanwhile).
    Sleep(u32),
    /// Answer later, when `release` comes.
    Defer,
    Release(String),
    /// Answer after this many milliseconds (via a timer).
    DeferFor(u32),
    /// Answer with `reply` inside the callback, then return noreply.
    ReplyInline,
    Call {
        to: DestArg,
        request: serde_json_free::Value,
        timeout: Option<u32>,
    },
    CallSelf,
    StopReply(ReasonArg),
    Stop(ReasonArg),
    /// Reply, then continue with this tag; also sends itself a message first.
    ReplyContinue(String),
    Timeout(u32),
    Hibernate,
    SendSelf(String),
    CastSelf(String),
    Monitor(DestArg),
    Demonitor(u64),
    /// Demonitor, then wait for the next message with an idle timeout of `timeout` ms, or
    /// hibernate if none.
    DemonitorThen {
        monitor: u64,
        timeout: Option<u32>,
    },
    Register(String),
    Whereis(String),
    QueueLen,
    SelfPid,
    /// Allocate and touch this many bytes.
    Alloc(u64),
    /// Grow the linear memory by this many wasm pages with `memory.grow` itself (as a
    /// guest's own code or a second allocator may), fill them, allocate past the initial
    /// memory through the heap, and answer whether those pages still hold what was written.
    ForeignGrow(u32),
    SendAfter {
        ms: u32,
        msg: String,
    },
    CancelTimer(u64),
    Link(u64),
    Unlink(u64),
    TrapExit(bool),
    Exit {
        pid: u64,
        reason: ReasonArg,
    },
    /// Registries: each answers "ok", the result, or the error's text.
    RegRegister {
        registry: String,
        key: Value,
        value: Value,
    },
    RegUnregister {
        registry: String,
        key: Value,
    },
    /// A list of `[pid, value]`.
    RegLookup {
        registry: String,
        key: Value,
    },
    /// Dispatch `info:text` to everyone under the key; answers how many.
    Dispatch {
        registry: String,
        key: Value,
        text: String,
    },
    /// Cast `record(text)` to a destination.
    CastTo {
        to: DestArg,
        text: String,
    },
    /// Send `info:text` to a destination.
    SendTo {
        to: DestArg,
        text: String,
    },
    /// Supervisors: the new pid (null for ignore), or the error's text.
    StartChild {
        sup: DestArg,
        args: Value,
    },
    TerminateChild {
        sup: DestArg,
        pid: u64,
    },
    /// A list of `{id, pid, module, supervisor, restarts}`.
    WhichChildren(DestArg),
    /// `{specs, active, supervisors, workers}`.
    CountChildren(DestArg),
    /// `{id, module, args, restart, shutdown, name}` of the child with this id (a string) or
    /// pid (a number).
    GetChildspec {
        sup: DestArg,
        child: Value,
    },
    /// Limits: send a string of `len` bytes to `to` by `op` (`call`, `cast`, `send`,
    /// `send_after`, `dispatch` to a `via` key, `start_child`); answers "ok", the result or the
    /// error's text.
    Big {
        op: String,
        to: DestArg,
        len: u64,
    },
    /// Answer with a string of this many bytes.
    BigReply(u64),
    /// Panic with this message.
    PanicWith(String),
    /// Recurse until the wasm stack overflows.
    Overflow,
    /// Send `to` each step in order, from inside one callback.
    Burst {
        to: u64,
        steps: Vec<Step>,
    },
    /// Arm `n` timers that send `info:text` to `to` after `ms`; answers how many.
    Timers {
        n: u32,
        ms: u32,
        to: DestArg,
        text: String,
    },
}

/// A CBOR-agnostic request value: whatever JSON-like value the test sends is forwarded.
pub(crate) mod serde_json_free {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, Clone)]
    #[serde(untagged)]
    pub enum Value {
        Null,
        Bool(bool),
        Int(i64),
        Str(String),
        List(Vec<Value>),
        Map(std::collections::BTreeMap<String, Value>),
    }
}

pub(crate) use serde_json_free::Value;

#[derive(Deserialize, Clone)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DestArg {
    Pid(u64),
    Name(String),
    /// `[registry, key]`.
    Via(String, Value),
}

impl DestArg {
    pub(crate) fn dest(&self) -> Dest {
        match self {
            DestArg::Pid(p) => Dest::Pid(*p),
            DestArg::Name(n) => Dest::Name(n.clone()),
            DestArg::Via(registry, key) => Dest::via(registry, key),
        }
    }
}

pub(crate) fn int(n: u64) -> Value {
    Value::Int(n as i64)
}

pub(crate) fn text(e: impl std::fmt::Display) -> Value {
    Value::Str(e.to_string())
}

pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReasonArg {
    Normal,
    Shutdown,
    Kill,
    Error(String),
}

impl ReasonArg {
    pub(crate) fn reason(self) -> ExitReason {
        match self {
            ReasonArg::Normal => ExitReason::Normal,
            ReasonArg::Shutdown => ExitReason::Shutdown,
            ReasonArg::Kill => ExitReason::Killed,
            ReasonArg::Error(e) => ExitReason::Error(e),
        }
    }
}

/// One thing a `burst` sends.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    /// `info:text`.
    Send(String),
    /// `record(text)`.
    Cast(String),
    /// An exit signal.
    Exit(ReasonArg),
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Cast {
    Record(String),
    Panic,
    Stop(ReasonArg),
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Msg {
    Text(String),
    Late { server: u64, caller: u64, tag: u64 },
}

pub(crate) fn call_error(e: CallError) -> Value {
    Value::Str(match e {
        CallError::Timeout => "timeout".into(),
        CallError::NoProc => "noproc".into(),
        CallError::CallingSelf => "calling_self".into(),
        CallError::Exited(r) => format!("exited:{r}"),
        CallError::Badarg(m) => format!("badarg:{m}"),
        CallError::BadReply(m) => format!("bad_reply:{m}"),
        CallError::Registry(e) => format!("registry:{e}"),
        CallError::Busy => "busy".into(),
    })
}

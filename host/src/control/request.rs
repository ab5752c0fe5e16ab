//! The requests a client sends and the responses it reads back, as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ControlError;
use crate::dest::Dest;

/// One request, as a JSON object whose `op` names the operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// `{"op":"call","dest":D,"msg":M,"timeout_ms":T}`: call and return the reply.
    /// `timeout_ms` defaults to 5000.
    Call {
        /// The server.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The request.
        msg: Value,
        /// How long to wait for the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"cast","dest":D,"msg":M}`: cast; `null` once queued. Unlike OTP's cast, a
    /// destination that is not alive is reported (`noproc`), for the operator's sake.
    Cast {
        /// The server.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The request.
        msg: Value,
    },
    /// `{"op":"send","dest":D,"msg":M}`: a plain message to `handle_info`; `null` once
    /// queued, `noproc` if the destination is not alive.
    Send {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The message.
        msg: Value,
    },
    /// `{"op":"stop","dest":D,"reason":R,"timeout_ms":T}`: stop a process and wait until it is
    /// gone; `null` then. The reason is `"normal"`, `"shutdown"` (the default),
    /// `{"shutdown": term}`, `"kill"` (no `terminate`), or any other string or
    /// `{"error": "text"}` for an error exit. If `terminate` is still running after
    /// `timeout_ms` (default 5000) the answer is `timeout` and the process is left running.
    ///
    /// A supervisor (by name or pid) is stopped with its subtree, as
    /// [`Node::stop_supervisor`](crate::Node::stop_supervisor) does: a nested one by its
    /// parent, which keeps its spec and does not restart it; the root, ending the application.
    /// Its reason must be `"shutdown"` (`badarg` otherwise); past `timeout_ms` the answer is
    /// `timeout` and the stop goes on.
    Stop {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// Why it stops.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Value>,
        /// How long `terminate` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"whereis","name":N}`: the pid registered under the name, or `null`.
    Whereis {
        /// The name.
        name: String,
    },
    /// `{"op":"ps"}`: every live process, as [`crate::ProcessInfo`] objects.
    // Braces, not a unit variant: serde refuses unknown fields only in struct variants.
    Ps {},
    /// `{"op":"tree"}`: the application's live supervision tree, a
    /// [`TreeNode`](super::TreeNode): nested objects with `id`, `kind` (`supervisor` or
    /// `worker`), `pid` (or `null`), `module`, `name`, `via` (a worker's `[registry, key]`, or
    /// `null`), `restart`, `restarts` (how many times its supervisor restarted it), and for
    /// supervisors `strategy`, `intensity`, `period_ms` and `children`. A dynamic
    /// (`simple_one_for_one`) supervisor's children are its running children, each shown with
    /// the template's id. A `noproc` error on a node served without an application
    /// ([`Endpoint::serve`](super::Endpoint::serve)).
    Tree {},
    /// `{"op":"state","dest":D}`: the process's state as JSON. With `"set":S`, first replace
    /// the state with `S` (OTP's `sys:replace_state`,
    /// [`Node::replace_state`](crate::Node::replace_state)) and answer the state the process
    /// then holds; a state the process refuses is `badarg`, and its state is unchanged.
    State {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// The new state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set: Option<Value>,
    },
    /// `{"op":"start","module":M,"args":A,"name":N}`: start a process of a loaded module,
    /// unsupervised (OTP's `gen_server:start`), and wait for its `init`; its pid, or `null`
    /// if `init` returned `ignore`. `args` (default `null`) is what `init` receives; `name`
    /// (optional) registers it. Errors: `badarg` (unknown module, args over the node's
    /// message size limit, a bad name), `already_started` (the name is held; the message
    /// names the pid), `failed` (`init` stopped, crashed or timed out).
    Start {
        /// The module, as loaded (the manifest's `[modules]`).
        module: String,
        /// The start arguments.
        #[serde(default)]
        args: Value,
        /// A name to register it under.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `{"op":"start_child","supervisor":D,"args":A}`: start a child of a dynamic
    /// (`simple_one_for_one`) supervisor, by name, pid or (the root) manifest id, with the
    /// template's args and `A` appended (OTP's `supervisor:start_child/2`; see
    /// [`Supervisor::start_child_with`](crate::Supervisor::start_child_with)); its pid, or `null` if its `init` returned
    /// `ignore`. Errors: `noproc`, `badarg` (a static supervisor, malformed args),
    /// `already_started`, `failed`.
    #[serde(rename = "start_child")]
    StartChild {
        /// The supervisor.
        #[serde(with = "dest_json")]
        supervisor: Dest,
        /// Appended to the template's args.
        #[serde(default)]
        args: Value,
    },
    /// `{"op":"suspend","dest":D}`: suspend the process (OTP's `sys:suspend`); `null`. Calls
    /// to it then time out and messages queue, until `resume`.
    Suspend {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
    },
    /// `{"op":"resume","dest":D}`: resume a suspended process, which then handles what
    /// queued, in order; `null`.
    Resume {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
    },
    /// `{"op":"upgrade","module":M,"path":P}`: upgrade (or downgrade) a loaded module to
    /// the code in the file `P` (read by the node: an absolute path, else `badarg`), as
    /// [`Node::upgrade`](crate::Node::upgrade); an [`crate::UpgradeReport`]. Optional:
    /// `extra` (JSON, `code-change`'s third argument, default `null`), `policy`
    /// (`all-or-nothing` or `per-process`), `force`, `eager`, `timeout_ms`. Errors:
    /// `failed` if any process stays on the old version (the message lists each pid and
    /// why), `badarg` (unknown module, unreadable or invalid code, same bytes, same vsn
    /// without `force`), `busy` (the module is being upgraded already).
    Upgrade {
        /// The module, as loaded.
        module: String,
        /// The new code's file.
        path: std::path::PathBuf,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// What happens to the others if a process fails.
        #[serde(default)]
        policy: crate::UpgradePolicy,
        /// Upgrade even if the vsn is the running one.
        #[serde(default)]
        force: bool,
        /// Migrate hibernating processes now.
        #[serde(default)]
        eager: bool,
        /// How long each `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"change_code","dest":D}`: migrate one suspended process to the code its
    /// module's name loads now (OTP's `sys:change_code`, [`Node::change_code`](crate::Node::change_code)); an
    /// [`crate::UpgradeReport`]. Optional `extra` and `timeout_ms` as for `upgrade`.
    #[serde(rename = "change_code")]
    ChangeCode {
        /// The process.
        #[serde(with = "dest_json")]
        dest: Dest,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// How long `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"reload","path":P}`: move the application to the release the manifest at `P`
    /// describes (read by the node: an absolute path, else `badarg`), as
    /// [`ReleaseHandler::reload`](crate::release::ReleaseHandler::reload); a
    /// [`crate::release::ReloadReport`]. Optional: `dry_run` (plan only), `extra` (JSON, for
    /// every upgraded module's `code-change`), `force`, `timeout_ms`. Errors: `badarg` (a
    /// manifest that does not check, with file, line and field; a plan that cannot be
    /// made), `busy` (a reload, rollback or upgrade is running), `failed` (a step failed
    /// and the steps before it were undone: the message names the step and why), `noproc`
    /// (a node served without a release).
    Reload {
        /// The new manifest.
        path: std::path::PathBuf,
        /// Plan only.
        #[serde(default)]
        dry_run: bool,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// Upgrade modules whose new code reports the running vsn.
        #[serde(default)]
        force: bool,
        /// How long each `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"rollback"}`: return to the release before the last reload, as `reload`
    /// does (same options but `path` and `force`); `badarg` when there is none.
    Rollback {
        /// Plan only.
        #[serde(default)]
        dry_run: bool,
        /// `code-change`'s `extra`.
        #[serde(default)]
        extra: Value,
        /// How long each `code-change` may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// `{"op":"modules"}`: the loaded module versions and how many processes run each, as
    /// [`crate::ModuleInfo`] objects.
    Modules {},
}

impl Request {
    /// Whether answering it waits on processes (a call, a state, an `init`, a stop's
    /// `terminate`), for as long as they take, and may be abandoned if the client leaves: as
    /// an OTP caller that dies abandons its call, the process goes on. An upgrade, reload or
    /// rollback is never abandoned half done.
    pub(crate) fn abandoned_with_its_client(&self) -> bool {
        matches!(
            self,
            Request::Call { .. }
                | Request::State { .. }
                | Request::Start { .. }
                | Request::StartChild { .. }
                | Request::Stop { .. }
        )
    }
}

/// One response: `{"ok": value}` or `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// The operation's result.
    Ok(Value),
    /// Why it failed.
    Error(ControlError),
}

/// `dest` on the wire: a number is a pid, a string a name, `{"via": [registry, key]}` a key
/// (any JSON value) in a unique registry.
mod dest_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::dest::Dest;
    use crate::term::{from_json, to_json};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire<'a> {
        Pid(u64),
        Name(std::borrow::Cow<'a, str>),
        Via { via: (String, Value) },
    }

    pub(super) fn serialize<S: Serializer>(dest: &Dest, s: S) -> Result<S::Ok, S::Error> {
        match dest {
            Dest::Pid(p) => Wire::Pid(*p),
            Dest::Name(n) => Wire::Name(n.as_str().into()),
            Dest::Via(registry, key) => Wire::Via {
                via: (
                    registry.clone(),
                    to_json(key).map_err(serde::ser::Error::custom)?,
                ),
            },
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dest, D::Error> {
        match Wire::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                r#"dest must be a registered name (string), a pid (number) or {"via": [registry, key]}"#,
            )
        })? {
            Wire::Pid(p) => Ok(Dest::Pid(p)),
            Wire::Name(n) => Ok(Dest::Name(n.into_owned())),
            Wire::Via {
                via: (registry, key),
            } => Ok(Dest::Via(registry, from_json(&key))),
        }
    }
}

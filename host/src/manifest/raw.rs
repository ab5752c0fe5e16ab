//! The manifest file's shape, as serde reads it, before any checking.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) version: Option<Spanned<String>>,
    pub(super) node: Option<RawNode>,
    #[serde(default)]
    pub(super) modules: BTreeMap<String, Spanned<RawModule>>,
    pub(super) supervisor: Option<Spanned<RawSupervisor>>,
    #[serde(default)]
    pub(super) children: Vec<Spanned<RawChild>>,
    #[serde(default)]
    pub(super) registries: Vec<Spanned<RawRegistry>>,
    pub(super) telemetry: Option<RawTelemetry>,
}

/// `[telemetry]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelemetry {
    /// `"127.0.0.1:9568"`, or a port alone (on the loopback address).
    pub(super) prometheus: Option<Spanned<toml::Value>>,
    /// The most metric series guests create on the node.
    pub(super) max_series: Option<Spanned<u64>>,
    /// The most metric series one module's processes create.
    pub(super) max_series_per_module: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    pub(super) name: Spanned<String>,
    pub(super) keys: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSupervisor {
    pub(super) id: Option<Spanned<String>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) strategy: Option<Spanned<String>>,
    pub(super) intensity: Option<u32>,
    pub(super) period_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Option<Spanned<String>>,
    pub(super) control: Option<Spanned<String>>,
    pub(super) max_message_size: Option<Spanned<u64>>,
    pub(super) control_max_request_bytes: Option<Spanned<u64>>,
    pub(super) control_idle_timeout_ms: Option<Spanned<u64>>,
    pub(super) control_max_connections: Option<Spanned<u64>>,
    pub(super) max_processes: Option<Spanned<u64>>,
    pub(super) max_timers: Option<Spanned<u64>>,
    pub(super) max_registry_keys: Option<Spanned<u64>>,
    pub(super) memory_limit: Option<Spanned<u64>>,
    pub(super) callback_timeout_ms: Option<Spanned<u64>>,
    pub(super) max_tables: Option<Spanned<u64>>,
    pub(super) max_tables_per_process: Option<Spanned<u64>>,
    pub(super) max_table_bytes: Option<Spanned<u64>>,
    pub(super) max_sql_statements: Option<Spanned<u64>>,
    pub(super) max_guest_files: Option<Spanned<u64>>,
    pub(super) spare_instances: Option<Spanned<u64>>,
    pub(super) max_wasm_stack: Option<Spanned<u64>>,
    pub(super) epoch_tick_ms: Option<Spanned<u64>>,
    pub(super) load_timeout_ms: Option<Spanned<u64>>,
}

/// A child's `mailbox = { bound = 1000, policy = "reject" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailbox {
    pub(super) bound: Spanned<u64>,
    pub(super) policy: Option<Spanned<String>>,
}

/// `echo = "path"` or `echo = { path = "...", vsn = "1" }`.
pub(super) struct RawModule {
    pub(super) path: String,
    /// The path string's own span in the table form; the whole value's in the short form.
    pub(super) path_span: Option<Range<usize>>,
    pub(super) vsn: Option<String>,
    pub(super) grants: Option<Spanned<RawGrants>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModuleTable {
    pub(super) path: Spanned<String>,
    pub(super) vsn: Option<String>,
    pub(super) grants: Option<Spanned<RawGrants>>,
}

/// `[modules.NAME.grants]`: what the module's processes may reach through WASI.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrants {
    #[serde(default)]
    pub(super) dirs: Vec<Spanned<RawDir>>,
    /// `["TZ"]` (inherit) or `{ NAME = "value" }`.
    pub(super) env: Option<Spanned<toml::Value>>,
    pub(super) clocks: Option<bool>,
    pub(super) random: Option<bool>,
    pub(super) network: Option<RawNetwork>,
    #[serde(default)]
    pub(super) databases: Vec<Spanned<RawDatabase>>,
}

/// `{ name = "orders", path = "data/orders.db", mode = "rw", timeout_ms = 5000,
/// max_bytes = 1073741824 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) name: Spanned<String>,
    pub(super) path: Spanned<String>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) max_bytes: Option<Spanned<u64>>,
}

/// `{ host = "var/log", guest = "/log", mode = "rw" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDir {
    pub(super) host: Spanned<String>,
    pub(super) guest: Spanned<String>,
    pub(super) mode: Option<Spanned<String>>,
}

/// `{ connect = ["127.0.0.1:5432"] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    #[serde(default)]
    pub(super) connect: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawModule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawModule;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path to a .wasm file, or a table with `path` and optional `vsn`")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawModule, E> {
                Ok(RawModule {
                    path: s.to_owned(),
                    path_span: None,
                    vsn: None,
                    grants: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawModule, A::Error> {
                let t = RawModuleTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawModule {
                    path_span: Some(t.path.span()),
                    path: t.path.into_inner(),
                    vsn: t.vsn,
                    grants: t.grants,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChild {
    pub(super) id: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) module: Option<Spanned<String>>,
    pub(super) args: Option<Spanned<toml::Value>>,
    pub(super) start_timeout_ms: Option<Spanned<u64>>,
    pub(super) hibernate_after_ms: Option<Spanned<u64>>,
    pub(super) memory_limit: Option<Spanned<u64>>,
    pub(super) callback_timeout_ms: Option<Spanned<u64>>,
    pub(super) mailbox: Option<Spanned<RawMailbox>>,
    pub(super) grants: Option<Spanned<RawGrants>>,
    pub(super) via: Option<Spanned<toml::Value>>,
    pub(super) shutdown_timeout_ms: Option<Spanned<u64>>,
    pub(super) restart: Option<Spanned<String>>,
    pub(super) shutdown: Option<Spanned<toml::Value>>,
    pub(super) strategy: Option<Spanned<String>>,
    pub(super) intensity: Option<u32>,
    pub(super) period_ms: Option<Spanned<u64>>,
    pub(super) children: Option<Vec<Spanned<RawChild>>>,
}

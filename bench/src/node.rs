//! The node every benchmark runs on, with the guests it needs loaded.

use std::path::Path;

use anyhow::Context;
use otter::{Node, Pid, SpawnOptions, Term};

/// The trivial counter (guests/counter), the same server as `bench_counter.erl`.
pub(crate) const COUNTER: &str = "counter";

/// The many-to-one client (guests/caller), the same work as `beam_bench.erl`'s `client/3`.
pub(crate) const CALLER: &str = "caller";

/// A node with the counter and the caller loaded from `guests` (their `.wasm` files).
/// Loading compiles them (or reads the compile cache) before any figure is timed.
pub(crate) async fn start(guests: &Path, spares: usize) -> anyhow::Result<Node> {
    let mut config = otter::NodeConfig::default();
    config.spare_instances(spares);
    let node = Node::new(config)?;
    for module in [COUNTER, CALLER] {
        let path = guests.join(format!("{module}.wasm"));
        node.load_module(module, &path)
            .await
            .with_context(|| format!("loading {} (run `cargo xtask guests`)", path.display()))?;
    }
    Ok(node)
}

/// CBOR `null`: the counter's and the caller's `init` take `()`.
pub(crate) fn unit() -> Term {
    otter::encode(&()).expect("() encodes")
}

/// CBOR for one of the counter's requests (`"inc"`, `"get"`, `"hibernate"`).
pub(crate) fn op(name: &str) -> Term {
    otter::encode(name).expect("a string encodes")
}

/// Start an unlinked, unnamed counter, as `bench_counter:start/0`; returns after its `init`.
pub(crate) async fn counter(node: &Node) -> anyhow::Result<Pid> {
    Ok(node.spawn(COUNTER, unit(), SpawnOptions::default()).await?)
}

/// The counter's count, waiting as long as it takes (`gen_server:call(Pid, get, infinity)`).
pub(crate) async fn count(node: &Node, pid: Pid) -> anyhow::Result<u64> {
    let reply = node.call_term(pid, op("get"), None).await?;
    Ok(otter::decode(&reply)?)
}

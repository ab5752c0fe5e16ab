//! Where a message goes: a pid, a local name, or a key in a named registry.

use crate::Pid;
use crate::term::Term;

/// Where a message goes: a pid, a registered name, or a `via` key.
///
/// ```
/// use otter::Dest;
/// let by_pid = Dest::from(7);
/// let by_name = Dest::from("cache");
/// // Elixir's {:via, Registry, {MyReg, {:kv, 42}}}:
/// let by_key = Dest::via("MyReg", otter::encode(&("kv", 42))?);
/// # Ok::<(), otter::TermError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dest {
    /// A process by pid.
    Pid(Pid),
    /// A process by registered name.
    Name(String),
    /// The process holding a key (a CBOR term) in a unique registry; see
    /// [`Node::create_registry`](crate::Node::create_registry).
    Via(String, Term),
}

impl Dest {
    /// The holder of `key` (CBOR, as [`crate::encode`] makes it) in the unique registry
    /// named `registry`.
    pub fn via(registry: impl Into<String>, key: Term) -> Dest {
        Dest::Via(registry.into(), key)
    }
}

impl From<Pid> for Dest {
    fn from(pid: Pid) -> Self {
        Dest::Pid(pid)
    }
}

impl From<&str> for Dest {
    fn from(name: &str) -> Self {
        Dest::Name(name.to_owned())
    }
}

impl From<String> for Dest {
    fn from(name: String) -> Self {
        Dest::Name(name)
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Pid(p) => write!(f, "<{p}>"),
            Dest::Name(n) => f.write_str(n),
            Dest::Via(registry, key) => {
                write!(f, "{{via, {registry}, {}}}", crate::term::shown(key))
            }
        }
    }
}

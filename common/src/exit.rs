//! Exit reasons, as Erlang has them.

use std::fmt;

use crate::quoted::Quoted;
use crate::term::Term;

/// Why a process exited.
///
/// It shows as Erlang writes it: `normal`, `shutdown`, `shutdown(<term>)` (the term cut to
/// [`crate::SHOWN`] characters), `killed`, `noproc`, `error(<text>)`.
///
/// `Normal`, `Shutdown` and `ShutdownWith` are clean stops: they are logged at debug level,
/// not as crashes. Every other reason is a crash and is logged as an error.
#[derive(Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The process finished its work.
    Normal,
    /// Asked to stop (by the node or a supervisor).
    Shutdown,
    /// A clean stop carrying a CBOR term (Erlang's `{shutdown, Term}`).
    ShutdownWith(Term),
    /// Killed: `terminate` did not run.
    Killed,
    /// The process did not exist.
    NoProc,
    /// A crash: a trap, a panic, or a reason the server chose.
    Error(String),
}

impl ExitReason {
    /// A crash reason from anything printable.
    pub fn error(reason: impl fmt::Display) -> Self {
        ExitReason::Error(reason.to_string())
    }

    /// Whether this is a clean stop rather than a crash.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }
}

// By hand, as derived but for its strings (see `otter_common::Quoted`): a derived `Debug`
// would link `Debug`'s string escaping into a server that `expect`s this error.
impl fmt::Debug for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("Normal"),
            ExitReason::Shutdown => f.write_str("Shutdown"),
            ExitReason::ShutdownWith(x) => f.debug_tuple("ShutdownWith").field(x).finish(),
            ExitReason::Killed => f.write_str("Killed"),
            ExitReason::NoProc => f.write_str("NoProc"),
            ExitReason::Error(m) => f.debug_tuple("Error").field(&Quoted(m)).finish(),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(t) => write!(f, "shutdown({})", crate::display::shown(t)),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::Error(e) => write!(f, "error({e})"),
        }
    }
}

//! Exit reasons, as Erlang has them.

use std::fmt;

use crate::bindings::WitExitReason;
use crate::term::Term;

use crate::limits::MAX_SHUTDOWN_TERM;

/// Why a process exited.
///
/// `Normal`, `Shutdown` and `ShutdownWith` are clean stops: they are logged at debug level,
/// not as crashes. Every other reason is a crash and is logged as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Whether this is a clean stop rather than a crash.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }

    /// A reason a guest gave. An `error` text is kept as one line of at most 1 KiB (control
    /// characters escaped, the rest cut), and a `shutdown-with` term over 64 KiB becomes an
    /// error, since every monitor and link receives it.
    pub(crate) fn from_wit(r: WitExitReason) -> Self {
        match r {
            WitExitReason::Normal => ExitReason::Normal,
            WitExitReason::Shutdown => ExitReason::Shutdown,
            WitExitReason::ShutdownWith(t) => {
                match crate::limits::check_term("badarg: shutdown term", t.len(), MAX_SHUTDOWN_TERM)
                {
                    Ok(()) => ExitReason::ShutdownWith(t),
                    Err(why) => ExitReason::Error(why),
                }
            }
            WitExitReason::Killed => ExitReason::Killed,
            WitExitReason::Noproc => ExitReason::NoProc,
            WitExitReason::Error(e) => {
                ExitReason::Error(crate::guest_text::one_line(&e, crate::limits::MAX_REASON))
            }
        }
    }

    pub(crate) fn to_wit(&self) -> WitExitReason {
        match self {
            ExitReason::Normal => WitExitReason::Normal,
            ExitReason::Shutdown => WitExitReason::Shutdown,
            ExitReason::ShutdownWith(t) => WitExitReason::ShutdownWith(t.clone()),
            ExitReason::Killed => WitExitReason::Killed,
            ExitReason::NoProc => WitExitReason::Noproc,
            ExitReason::Error(e) => WitExitReason::Error(e.clone()),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(t) => write!(f, "shutdown({})", crate::term::shown(t)),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::Error(e) => write!(f, "error({e})"),
        }
    }
}

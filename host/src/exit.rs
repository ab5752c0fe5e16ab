//! Exit reasons to and from their WIT form. The type is [`otter_common::ExitReason`], which
//! the guest SDK shares.

use crate::bindings::WitExitReason;
use crate::limits::MAX_SHUTDOWN_TERM;

pub use otter_common::ExitReason;

/// An exit reason's WIT form, both ways.
pub(crate) trait WitReason: Sized {
    /// A reason a guest gave. An `error` text is kept as one line of at most 1 KiB (control
    /// characters escaped, the rest cut), and a `shutdown-with` term over 64 KiB becomes an
    /// error, since every monitor and link receives it.
    fn from_wit(r: WitExitReason) -> Self;
    /// The reason as a guest receives it.
    fn to_wit(&self) -> WitExitReason;
}

impl WitReason for ExitReason {
    fn from_wit(r: WitExitReason) -> Self {
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

    fn to_wit(&self) -> WitExitReason {
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

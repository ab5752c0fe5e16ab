//! `replace_state`, OTP's `sys:replace_state`: a signal, handled between callbacks.

use tokio::sync::oneshot;

use super::{Instance, Process};
use crate::error::ReplaceStateError;
use crate::exit::ExitReason;
use crate::process::ctx::crash;
use crate::term::Term;

impl Process {
    /// Hand `state` to the guest's `restore-state` and answer the state it then exports.
    /// A refusal leaves the guest's state as it was (the contract requires it) and the
    /// process goes on; a trap ends it, as any callback's does. A hibernating process is
    /// woken for this and hibernates again, holding the new state's bytes.
    pub(super) async fn replace_state(
        &mut self,
        state: Term,
        reply: oneshot::Sender<Result<Term, ReplaceStateError>>,
    ) -> Result<(), ExitReason> {
        let hibernating = matches!(self.instance, Instance::Hibernating { .. });
        let (store, server) = match self.awake().await {
            Ok(awake) => awake,
            Err(reason) => {
                let _ = reply.send(Err(ReplaceStateError::Exited(reason.clone())));
                return Err(reason);
            }
        };
        let answer = match server.call_restore_state(&mut *store, &state).await {
            Ok(Ok(())) => server.call_export_state(&mut *store).await.map(Ok),
            Ok(Err(refused)) => Ok(Err(ReplaceStateError::Refused(
                crate::guest_text::one_line(&refused, crate::limits::MAX_REASON),
            ))),
            Err(trap) => Err(trap),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(trap) => {
                let reason = crash(store.data(), trap);
                let _ = reply.send(Err(ReplaceStateError::Exited(reason.clone())));
                return Err(reason);
            }
        };
        if hibernating && let Err(reason) = self.hibernate().await {
            let _ = reply.send(Err(ReplaceStateError::Exited(reason.clone())));
            return Err(reason);
        }
        let _ = reply.send(answer);
        Ok(())
    }
}

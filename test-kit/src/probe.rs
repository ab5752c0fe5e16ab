//! The test's own process: a pid that servers can send to, and a mailbox the test reads.

use otter::{Dest, EmbeddedProcess, ExitReason, MonitorRef, Pid, ProcessError, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::inbox::{Inbox, Mailbox};
use crate::message::Message;

/// A process of the test, as ExUnit's test process: it has a pid to hand to the server
/// under test (to subscribe, to reply to later, to link or monitor), it calls and casts as
/// any process does, and its mailbox is read with
/// [`assert_receive!`](crate::assert_receive) and [`refute_receive!`](crate::refute_receive).
///
/// ```no_run
/// # async fn demo(node: &otter_test::TestNode, server: otter::Pid) {
/// use otter_test::{Down, assert_receive};
/// use otter::ExitReason;
///
/// let probe = node.probe();
/// probe.monitor(server);
/// node.stop(server, ExitReason::Normal, None).await.unwrap();
/// assert_receive!(probe, Down { pid, reason: ExitReason::Normal, .. } if pid == server);
/// # }
/// ```
///
/// It is an [`EmbeddedProcess`] of the node ([`Probe::process`]); it ends, with reason
/// `normal`, when dropped. A call made *to* a probe is never answered (its caller waits
/// until it times out); it shows in the mailbox as [`Message::Call`]. To answer calls, use
/// a [`Mock`](crate::Mock).
///
/// # Panics
/// Its operations panic when they fail (a probe is a test's tool: a failure is the test's),
/// with what failed; the ones whose failure a test may want to see return a `Result`.
pub struct Probe {
    inbox: Inbox,
}

impl Probe {
    pub(crate) fn new(process: EmbeddedProcess) -> Probe {
        Probe {
            inbox: Inbox::process(format!("probe <{}>", process.pid()), process),
        }
    }

    /// Its process.
    pub fn process(&self) -> &EmbeddedProcess {
        self.inbox
            .embedded()
            .expect("a probe's inbox is its process's")
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.process().pid()
    }

    /// Call `dest` with a serde request, from this process, and decode the reply (5 s
    /// timeout, as OTP's default).
    ///
    /// # Errors
    /// As [`EmbeddedProcess::call`]: the call timed out, nobody is registered under the
    /// name, the server exited or could not decode the request, or the reply is not an `R`.
    pub async fn call<Req: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        dest: impl Into<Dest>,
        request: &Req,
    ) -> Result<R, ProcessError> {
        self.process().call(dest, request).await
    }

    /// Cast a serde request to `dest`, from this process.
    ///
    /// # Panics
    /// If the request does not encode, or the probe has exited.
    pub fn cast<T: Serialize + ?Sized>(&self, dest: impl Into<Dest>, request: &T) {
        let term = encode(request).expect("the cast encodes");
        self.process().cast(dest, term).expect("the probe is alive");
    }

    /// Send a serde message to `dest`'s `handle_info`, from this process.
    ///
    /// # Errors
    /// As [`EmbeddedProcess::send`]: no process under that name, or the message is over
    /// the node's size limit.
    ///
    /// # Panics
    /// If the message does not encode.
    pub fn send<T: Serialize + ?Sized>(
        &self,
        dest: impl Into<Dest>,
        msg: &T,
    ) -> Result<(), ProcessError> {
        let term = encode(msg).expect("the message encodes");
        self.process().send(dest, term)
    }

    /// Monitor `dest`: a [`Down`](crate::Down) comes when it exits (at once, `noproc`, if it
    /// is not alive).
    ///
    /// # Panics
    /// If the probe has exited.
    pub fn monitor(&self, dest: impl Into<Dest>) -> MonitorRef {
        self.process().monitor(dest).expect("the probe is alive")
    }

    /// Link to `pid`. Unless the probe traps exits ([`Probe::trap_exit`]), a crash of `pid`
    /// ends the probe, and the next assertion on it reports that.
    ///
    /// # Panics
    /// If the probe has exited.
    pub fn link(&self, pid: Pid) {
        self.process().link(pid).expect("the probe is alive");
    }

    /// Trap exits: exit signals then arrive as [`Exit`](crate::Exit) messages. Returns the
    /// previous setting.
    ///
    /// # Panics
    /// If the probe has exited.
    pub fn trap_exit(&self, on: bool) -> bool {
        self.process().trap_exit(on).expect("the probe is alive")
    }

    /// Register the probe under `name`, so that a server that calls or sends to that name
    /// reaches the test.
    ///
    /// # Panics
    /// If the name is taken or the probe has exited.
    pub fn register(&self, name: &str) {
        if let Err(e) = self.process().register(name) {
            panic!("registering the probe as `{name}`: {e}");
        }
    }

    /// Every message waiting in its mailbox, in arrival order, without taking any.
    pub fn mailbox(&self) -> Vec<Message> {
        self.inbox.snapshot()
    }

    /// End the probe with `reason` (dropping it ends it `normal`).
    pub fn close(self, reason: ExitReason) {
        if let Some(process) = self.inbox.into_process() {
            process.close(reason);
        }
    }
}

impl Mailbox for Probe {
    fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("pid", &self.pid()).finish()
    }
}

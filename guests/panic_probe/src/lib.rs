//! A test server for `terminate` after a panic: each callback can be made to change the
//! state and then panic, and `terminate` sends the state it got to a watcher, so a test sees
//! which state it ran on.
//!
//! ```text
//! args: {"watcher": PID}
//! call "inc" -> the count        cast "inc"      (count + 1, "inc" appended to the log)
//! call {"panic": MSG}            cast {"panic": MSG}      send {"panic": MSG}
//! call {"continue_panic": MSG}   (replies "ok", then handle_continue panics)
//! call "panic_in_terminate"      (a later terminate sends its report, then panics)
//! call "announce_and_spin"       (tells the host it panics, again and again, and spins)
//! call {"announce": MSG}         (tells the host it panics, then returns as if it had not)
//! call "claim_terminated"        (tells the host terminate ran after a panic, and returns)
//! call "trap"                    (a wasm `unreachable`: a trap that is not a panic)
//! call "exhaust"                 (asks for more memory than the process may have)
//! terminate: sends the watcher {"terminated": {"reason": R, "count": N, "log": [...]}}
//! ```
//!
//! Every panicking callback first adds 1000 to the count and grows the log, so a
//! `terminate` that ran on the failing callback's state would show it.

use otter_guest::{ExitReason, GenServer, Info, Init, Next, NoReply, Pid, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct State {
    watcher: Pid,
    count: u64,
    log: Vec<String>,
    panic_in_terminate: bool,
}

#[derive(Deserialize)]
struct Args {
    watcher: Pid,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    Inc,
    Panic(String),
    ContinuePanic(String),
    PanicInTerminate,
    AnnounceAndSpin,
    Announce(String),
    ClaimTerminated,
    Trap,
    Exhaust,
}

#[derive(Serialize)]
struct Terminated<'a> {
    terminated: Report<'a>,
}

#[derive(Serialize)]
struct Report<'a> {
    reason: String,
    count: u64,
    log: &'a [String],
}

impl State {
    fn inc(&mut self) {
        self.count += 1;
        self.log.push("inc".to_owned());
    }

    /// Change the state the way a half-done callback would, then panic.
    fn doom(&mut self, message: &str) -> ! {
        self.count += 1000;
        self.log.extend((0..64).map(|i| format!("doomed {i}")));
        panic!("{message}");
    }

    fn handle(&mut self, request: Request) -> Next<String> {
        match request {
            Request::Inc => self.inc(),
            Request::Panic(m) => self.doom(&m),
            Request::ContinuePanic(m) => return Next::Continue(m),
            Request::PanicInTerminate => self.panic_in_terminate = true,
            Request::Trap => {
                self.count += 1000;
                trap()
            }
            Request::Exhaust => {
                self.count += 1000;
                // A failed allocation aborts without a panic.
                let hoard = vec![1u8; 1 << 30];
                self.count += u64::from(std::hint::black_box(hoard)[0]);
            }
            // A hostile guest: the raw imports, without the panic that should follow.
            Request::Announce(m) => {
                otter_guest::__private::bindings::otter::genserver::process::panicking(&m);
            }
            Request::ClaimTerminated => {
                otter_guest::__private::bindings::otter::genserver::process::terminated_after_panic(
                );
            }
            Request::AnnounceAndSpin => loop {
                // The host gives a panic's terminate one fresh time budget, not one per call.
                otter_guest::__private::bindings::otter::genserver::process::panicking("spin");
                std::hint::black_box(&mut self.count);
            },
        }
        Next::None
    }
}

impl GenServer for State {
    type Args = Args;
    type Call = Request;
    type Reply = u64;
    type Cast = Request;
    type Info = Request;
    type Continue = String;
    const VSN: &'static str = "1";
    // Its `terminate` runs after a panic in a callback too.
    const TERMINATE_ON_PANIC: bool = true;

    fn init(args: Args) -> Init<Self, String> {
        Init::ok(State {
            watcher: args.watcher,
            count: 0,
            log: Vec::new(),
            panic_in_terminate: false,
        })
    }

    fn handle_call(&mut self, request: Request, _from: ReplyTo) -> Reply<u64, String> {
        let next = self.handle(request);
        Reply::Reply(self.count, next)
    }

    fn handle_cast(&mut self, request: Request) -> NoReply<String> {
        NoReply::NoReply(self.handle(request))
    }

    fn handle_info(&mut self, msg: Info<Request>) -> NoReply<String> {
        if let Info::Message(request) = msg {
            return NoReply::NoReply(self.handle(request));
        }
        NoReply::ok()
    }

    fn handle_continue(&mut self, message: String) -> NoReply<String> {
        self.doom(&message)
    }

    fn terminate(&mut self, reason: ExitReason) {
        let terminated = Terminated {
            terminated: Report {
                reason: reason.to_string(),
                count: self.count,
                log: &self.log,
            },
        };
        let _ = otter_guest::send(self.watcher, &terminated);
        if self.panic_in_terminate {
            panic!("terminate failed");
        }
    }
}

otter_guest::export_genserver!(State);

/// A wasm `unreachable` trap (natively, where unit tests run, an abort).
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

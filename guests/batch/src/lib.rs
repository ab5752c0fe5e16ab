//! The chapter's BatchServer: `enqueue` casts buffer items, and the buffer is written as one
//! batch, in enqueue order, `interval_ms` after its first item arrived or as soon as it
//! holds `max_batch` items, whichever comes first.
//!
//! Where the batch goes: each one is sent to `sink` (a registered name or a pid) as
//! `{"batch": [items...]}`, and logged with its size. The chapter's `write_batch` is a stub;
//! a sink process is where a real one would write to a file or a database.
//!
//! ```text
//! args: {"sink": "batches", "interval_ms": 200, "max_batch": 100}   (all optional)
//! $ otter cast batch '{"enqueue": "a"}'
//! $ otter cast batch '{"enqueue": {"any": ["json", 1]}}'
//! $ otter call batch '"stats"'
//! {"buffered":2,"flushed_batches":0,"flushed_items":0}
//! ```
//!
//! Unlike the chapter: a batch has a size cap (the chapter's grew to 802k items under
//! load), and there is no `timer?` flag (the chapter's was never set). The timer is armed
//! by the first item of an empty buffer, cancelled by an early flush at the cap, and a timer
//! message that was already queued when it was cancelled names the batch it was armed for,
//! so it cannot flush the next batch early; nothing is ever flushed empty.

use otter_guest::{Dest, GenServer, Info, Init, NoReply, Pid, Reply, ReplyTo, TimerRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The chapter's 200 ms.
const DEFAULT_INTERVAL_MS: u32 = 200;
/// A batch no larger than this by default.
const DEFAULT_MAX_BATCH: usize = 1000;

/// Where batches go: a registered name or a pid.
#[derive(Serialize, Deserialize, Clone)]
#[serde(untagged)]
enum Sink {
    Pid(Pid),
    Name(String),
}

impl From<&Sink> for Dest {
    fn from(sink: &Sink) -> Dest {
        match sink {
            Sink::Pid(p) => Dest::Pid(*p),
            Sink::Name(n) => Dest::Name(n.clone()),
        }
    }
}

#[derive(Deserialize, Default)]
struct Args {
    sink: Option<Sink>,
    interval_ms: Option<u32>,
    max_batch: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct Batcher {
    buf: Vec<Value>,
    sink: Option<Sink>,
    interval_ms: u32,
    max_batch: usize,
    /// The timer armed for the batch being filled, if any.
    timer: Option<TimerRef>,
    /// Batches flushed so far; the number of the batch being filled.
    flushed_batches: u64,
    flushed_items: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cast {
    Enqueue(Value),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    /// Buffer an item, as the cast does, and answer once it is buffered (or flushed).
    Enqueue(Value),
    Stats,
}

#[derive(Serialize)]
struct Stats {
    buffered: usize,
    flushed_batches: u64,
    flushed_items: u64,
}

/// The timer's message: the number of the batch it was armed for.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tick {
    Flush(u64),
}

#[derive(Serialize)]
struct BatchMsg<'a> {
    batch: &'a [Value],
}

impl Batcher {
    fn enqueue(&mut self, item: Value) {
        self.buf.push(item);
        if self.buf.len() >= self.max_batch {
            self.flush();
        } else if self.timer.is_none() {
            let tick = Tick::Flush(self.flushed_batches);
            self.timer = Some(otter_guest::send_after(
                otter_guest::self_pid(),
                &tick,
                self.interval_ms,
            ));
        }
    }

    /// Write the buffer as one batch, in enqueue order; an armed timer is cancelled (a
    /// message it already queued names this batch and is ignored when it arrives).
    fn flush(&mut self) {
        if let Some(timer) = self.timer.take() {
            otter_guest::cancel_timer(timer);
        }
        if self.buf.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.buf);
        self.write_batch(&batch);
        self.flushed_batches += 1;
        self.flushed_items += batch.len() as u64;
    }

    fn write_batch(&self, batch: &[Value]) {
        let size = batch.len().to_string();
        otter_guest::log::info("flushed a batch", &[("items", &size)]);
        if let Some(sink) = &self.sink
            && let Err(e) = otter_guest::send(sink, &BatchMsg { batch })
        {
            otter_guest::log::warn(
                "the sink is gone; batch dropped",
                &[("error", &e.to_string())],
            );
        }
    }
}

impl GenServer for Batcher {
    type Args = Args;
    type Call = Call;
    type Reply = Stats;
    type Cast = Cast;
    type Info = Tick;
    type Continue = ();
    const VSN: &'static str = "1";
    // Its `terminate` must run after a panic in a callback too, to write what it holds.
    const TERMINATE_ON_PANIC: bool = true;

    fn init(args: Args) -> Init<Self> {
        Init::ok(Batcher {
            buf: Vec::new(),
            sink: args.sink,
            interval_ms: args.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS),
            max_batch: args.max_batch.unwrap_or(DEFAULT_MAX_BATCH).max(1),
            timer: None,
            flushed_batches: 0,
            flushed_items: 0,
        })
    }

    fn handle_cast(&mut self, Cast::Enqueue(item): Cast) -> NoReply {
        self.enqueue(item);
        NoReply::ok()
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Stats> {
        if let Call::Enqueue(item) = request {
            self.enqueue(item);
        }
        Reply::ok(Stats {
            buffered: self.buf.len(),
            flushed_batches: self.flushed_batches,
            flushed_items: self.flushed_items,
        })
    }

    fn handle_info(&mut self, msg: Info<Tick>) -> NoReply {
        match msg {
            // Only the timer of the batch being filled flushes it.
            Info::Message(Tick::Flush(batch)) if batch == self.flushed_batches => {
                self.timer = None;
                self.flush();
            }
            Info::Message(Tick::Flush(_)) => {}
            other => otter_guest::log::warn("unexpected info", &[("kind", other.kind())]),
        }
        NoReply::ok()
    }

    /// What is still buffered is flushed on a clean stop (and after a panic in a callback).
    fn terminate(&mut self, _reason: otter_guest::ExitReason) {
        self.flush();
    }
}

otter_guest::export_genserver!(Batcher);

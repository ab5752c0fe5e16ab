//! The chapter's OrderSink, as its prose means it: `submit` is a call; accepted orders are
//! buffered and written every `flush_ms` as one batch, in one transaction, into the SQLite
//! database the manifest grants as `database`; a failed flush is logged and retried after
//! `retry_ms` with the batch kept; `terminate` flushes what is left (it traps exits, so a
//! supervisor's shutdown runs it, as in OTP).
//!
//! Backpressure bounds what matters, not the number of waiting callers (the chapter's
//! `message_queue_len > max_q`): a submit is answered `busy` at once when `max_buffered`
//! orders wait for a flush, or when the oldest of them has waited `max_lag_ms` (flushes
//! fail or cannot keep up). A bounded mailbox on the child (`mailbox = { bound, policy =
//! "reject" }`) bounds the callers queued behind a flush too, answered `busy` by the host.
//!
//! Each flush is a telemetry span `[:orders, :flush]` (the orders in its metadata): with the
//! manifest's `[telemetry] prometheus` the node serves `orders_flush_duration_seconds`, and
//! `orders_flush_exceptions_total` for the flushes that failed.
//!
//! ```text
//! $ otter call order_sink '{"submit":{"client":1,"seq":1,"item":"tea","amount":350}}'
//! "ok"
//! $ otter call order_sink '"stats"'
//! {"accepted":1,"busy":0,"flushed":0,"buffered":1,...}
//! ```

use std::time::Duration;

use otter_guest::sql::{Connection, Error, Value};
use otter_guest::{
    ExitReason, GenServer, Info, Init, NoReply, Reply, ReplyTo, TimerRef, clock, log, telemetry,
};
use serde::{Deserialize, Serialize};

/// One order, as a client submits it and as its row holds it.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Order {
    client: u64,
    seq: u64,
    item: String,
    amount: i64,
}

/// The start arguments (the manifest's `args`); every field has a default.
#[derive(Serialize, Deserialize, Clone)]
#[serde(default)]
struct Config {
    /// The granted database's name.
    database: String,
    /// How long an accepted order waits for its flush at most, when flushes succeed.
    flush_ms: u32,
    /// How long after a failed flush it is retried.
    retry_ms: u32,
    /// Buffered orders past which a submit is answered `busy`.
    max_buffered: usize,
    /// Age of the oldest buffered order past which a submit is answered `busy`.
    max_lag_ms: u32,
    /// Orders per `execute-many` inside a flush's transaction (bounds the memory a flush
    /// takes beside the buffer).
    chunk: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: "orders".into(),
            flush_ms: 200,
            retry_ms: 500,
            max_buffered: 100_000,
            max_lag_ms: 2_000,
            chunk: 4_096,
        }
    }
}

/// Figures, for `stats` and the load generator.
#[derive(Serialize, Deserialize, Default, Clone)]
struct Stats {
    accepted: u64,
    busy: u64,
    flushed: u64,
    buffered: u64,
    flushes: u64,
    failed_flushes: u64,
    /// The most orders ever buffered at once.
    max_buffered_seen: u64,
    /// Time spent in successful flushes, in microseconds.
    flush_us: u64,
}

#[derive(Serialize, Deserialize)]
struct OrderSink {
    config: Config,
    buf: Vec<Order>,
    /// When the oldest buffered order was accepted (monotonic), for the lag bound.
    oldest_ns: Option<u64>,
    /// The armed flush (or retry) timer: at most one.
    timer: Option<TimerRef>,
    stats: Stats,
    /// Open for this instance only; reopened after hibernation or an upgrade.
    #[serde(skip)]
    db: Option<Connection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Submit(Order),
    Stats,
    /// Flush now (what the timer does); answers the orders written.
    Flush,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok,
    Busy,
    Stats(Stats),
    Flushed(u64),
    Error(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Msg {
    Flush,
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS orders (
    client INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    item TEXT NOT NULL,
    amount INTEGER NOT NULL,
    flushed_at INTEGER NOT NULL
)";
const INSERT: &str =
    "INSERT INTO orders (client, seq, item, amount, flushed_at) VALUES (?1, ?2, ?3, ?4, ?5)";

impl OrderSink {
    fn db(&mut self) -> Result<&Connection, Error> {
        if self.db.is_none() {
            let db = Connection::open(&self.config.database)?;
            db.execute(CREATE, &[])?;
            self.db = Some(db);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    fn lag(&self) -> Duration {
        self.oldest_ns.map_or(Duration::ZERO, |t| {
            clock::monotonic_time().saturating_sub(Duration::from_nanos(t))
        })
    }

    fn submit(&mut self, order: Order) -> Answer {
        if self.buf.len() >= self.config.max_buffered
            || self.lag() >= Duration::from_millis(self.config.max_lag_ms.into())
        {
            self.stats.busy += 1;
            return Answer::Busy;
        }
        if self.buf.is_empty() {
            self.oldest_ns = Some(clock::monotonic_time().as_nanos() as u64);
        }
        self.buf.push(order);
        self.stats.accepted += 1;
        self.stats.max_buffered_seen = self.stats.max_buffered_seen.max(self.buf.len() as u64);
        if self.timer.is_none() {
            let me = otter_guest::self_pid();
            self.timer = Some(otter_guest::send_after(
                me,
                &Msg::Flush,
                self.config.flush_ms,
            ));
        }
        Answer::Ok
    }

    /// Write the buffer as one batch; on success it is emptied, on failure kept whole.
    fn flush(&mut self) -> Result<u64, Error> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        let started = clock::monotonic_time();
        let batch = std::mem::take(&mut self.buf);
        let size = batch.len().to_string();
        // `[:orders, :flush]` start/stop/exception: the host's
        // `orders_flush_duration_seconds` histogram and `orders_flush_exceptions_total`.
        let written = telemetry::span(&["orders", "flush"], &[("orders", &size)], || {
            self.flush_batch(&batch)
        });
        let took = clock::monotonic_time().saturating_sub(started);
        let ms = took.as_millis().to_string();
        match written {
            Ok(()) => {
                let n = batch.len() as u64;
                self.oldest_ns = None;
                self.stats.flushed += n;
                self.stats.flushes += 1;
                self.stats.flush_us += took.as_micros() as u64;
                log::info("flushed", &[("orders", &n.to_string()), ("ms", &ms)]);
                Ok(n)
            }
            Err(e) => {
                self.buf = batch;
                self.stats.failed_flushes += 1;
                self.db = None; // reopened at the next try, in case the file changed
                Err(e)
            }
        }
    }

    /// The flush itself: `batch` in one transaction, written a chunk at a time.
    fn flush_batch(&mut self, batch: &[Order]) -> Result<(), Error> {
        let chunk = self.config.chunk.max(1);
        let now = clock::system_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.db()?.transaction(|db| {
            for part in batch.chunks(chunk) {
                let rows: Vec<Vec<Value>> = part
                    .iter()
                    .map(|o| {
                        vec![
                            Value::Integer(o.client as i64),
                            Value::Integer(o.seq as i64),
                            Value::Text(o.item.clone()),
                            Value::Integer(o.amount),
                            Value::Integer(now),
                        ]
                    })
                    .collect();
                db.execute_many(INSERT, &rows)?;
            }
            Ok(())
        })
    }

    /// The timer fired: flush, or keep the batch and try again after `retry_ms`.
    fn on_flush_timer(&mut self) {
        self.timer = None;
        if let Err(e) = self.flush() {
            let n = self.buf.len().to_string();
            let retry = self.config.retry_ms;
            log::error(
                "flush failed; retrying shortly",
                &[
                    ("orders", &n),
                    ("error", &e.to_string()),
                    ("retry_ms", &retry.to_string()),
                ],
            );
            let me = otter_guest::self_pid();
            self.timer = Some(otter_guest::send_after(me, &Msg::Flush, retry));
        }
    }
}

impl GenServer for OrderSink {
    type Args = Option<Config>;
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = Msg;
    type Continue = ();
    const VSN: &'static str = "1";

    fn init(config: Option<Config>) -> Init<Self> {
        // A supervisor's shutdown then reaches `terminate`, as OTP needs for the final flush.
        otter_guest::trap_exit(true);
        let mut sink = OrderSink {
            config: config.unwrap_or_default(),
            buf: Vec::new(),
            oldest_ns: None,
            timer: None,
            stats: Stats::default(),
            db: None,
        };
        if let Err(e) = sink.db() {
            return Init::Stop(ExitReason::Error(format!("database: {e}")));
        }
        Init::ok(sink)
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        Reply::ok(match request {
            Call::Submit(order) => self.submit(order),
            Call::Stats => {
                let mut stats = self.stats.clone();
                stats.buffered = self.buf.len() as u64;
                Answer::Stats(stats)
            }
            Call::Flush => match self.flush() {
                Ok(n) => Answer::Flushed(n),
                Err(e) => Answer::Error(e.to_string()),
            },
        })
    }

    fn handle_info(&mut self, msg: Info<Msg>) -> NoReply {
        match msg {
            Info::Message(Msg::Flush) => self.on_flush_timer(),
            // A linked process (the parent, if not a host supervisor) exited: stop as OTP's
            // gen_server does, through terminate.
            Info::Exit { reason, .. } if !matches!(reason, ExitReason::Normal) => {
                return NoReply::Stop(reason);
            }
            _ => {}
        }
        NoReply::ok()
    }

    fn terminate(&mut self, reason: ExitReason) {
        // What is left is written now; a database that still fails gets a few more tries
        // within the shutdown time, and what cannot be written is reported, not hidden.
        for attempt in 0..3 {
            match self.flush() {
                Ok(_) => return,
                Err(e) if attempt < 2 => {
                    log::warn(
                        "final flush failed; trying again",
                        &[("error", &e.to_string())],
                    );
                    clock::sleep(Duration::from_millis(100));
                }
                Err(e) => log::error(
                    "final flush failed; orders lost",
                    &[
                        ("orders", &self.buf.len().to_string()),
                        ("error", &e.to_string()),
                        ("reason", &format!("{reason:?}")),
                    ],
                ),
            }
        }
    }
}

otter_guest::export_genserver!(OrderSink);

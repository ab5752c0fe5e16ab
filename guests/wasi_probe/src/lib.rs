//! A server that reaches the host through WASI with Rust's std, to test what its grants
//! allow: each call answers `{"ok": …}` or `{"err": "<the io::Error>"}`.
//!
//! ```text
//! $ otter call probe '{"write": ["/data/a.txt", "hello"]}'
//! $ otter call probe '{"read": "/data/a.txt"}'
//! {"ok":"hello"}
//! $ otter call probe '{"read": "/etc/passwd"}'
//! {"err":"..."}
//! ```
//!
//! Built twice: as version "1" (`wasi_probe`) and as version "2" (`wasi_probe_v2`, the
//! `v2` feature), to upgrade between.

use std::io::Write as _;

use otter_guest::{CodeChange, GenServer, Init, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Probe {
    /// Files opened by `keep`, by index: their handles live as long as this instance.
    #[serde(skip)]
    kept: Vec<std::fs::File>,
    /// Streams kept by `stream_past_close`, whose descriptors are dropped.
    #[serde(skip)]
    streams: Vec<wasip2::io::streams::InputStream>,
}

/// What `code_change` does, from the upgrade's `extra`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum Upgrade {
    /// Migrate.
    #[default]
    Ok,
    /// Open the file this many times, keep every handle, then refuse.
    HoardAndRefuse(String, u32),
    /// Refuse if this file exists (so that one process of several fails).
    RefuseIfExists(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    /// A file's text.
    Read(String),
    /// Write text to a file, creating it.
    Write(String, String),
    /// An environment variable, if set.
    Env(String),
    /// The wall clock, in seconds since the epoch.
    Now,
    /// Open a TCP connection to the address.
    Connect(String),
    /// Print lines to stdout (and one to stderr).
    Print(u32, String),
    /// The names of the preopened directories' entries under `path`.
    List(String),
    /// Open a file this many times and keep every handle (until the process ends).
    Hoard(String, u32),
    /// This many random bytes (at most 256) from WASI's secure random, as hex.
    Random(u32),
    /// Write text to stdout as it is, with no newline added.
    Emit(String),
    /// Open a file for appending, creating it, and keep the handle; its index.
    Keep(String),
    /// Append text through the handle `keep` gave this index.
    Append(u32, String),
    /// The version running.
    Vsn,
    /// Open a file up to this many times and keep every handle: how many were opened, or
    /// the error of the first open that failed and how many had been opened before it.
    Hold(String, u32),
    /// Close every handle `hold` and `keep` kept; how many.
    CloseAll,
    /// Open a file, read it and close it, this many times: how many, or the first error.
    Churn(String, u32),
    /// Open a file of the directory granted as `/data` through WASI itself, make a stream
    /// reading it, drop the file's descriptor and keep the stream (which keeps the file
    /// open): how many streams are kept.
    StreamPastClose(String),
    /// Drop the streams `stream_past_close` kept; how many.
    DropStreams,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(serde_json_like::Value),
    Err(String),
}

/// What an answer carries: text, a number, nothing, or a list of names.
mod serde_json_like {
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(untagged)]
    pub(crate) enum Value {
        Text(String),
        Number(u64),
        Names(Vec<String>),
        Nothing(Option<()>),
    }
}

use serde_json_like::Value;

fn answer(r: std::io::Result<Value>) -> Reply<Answer> {
    Reply::ok(match r {
        Ok(v) => Answer::Ok(v),
        Err(e) => Answer::Err(e.to_string()),
    })
}

impl GenServer for Probe {
    type Args = ();
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = ();
    type Continue = ();
    const VSN: &'static str = if cfg!(feature = "v2") { "2" } else { "1" };

    fn init(_: ()) -> Init<Self> {
        Init::ok(Probe::default())
    }

    /// Migrates, or, as `extra` says, opens files and then refuses (the new instance's
    /// handles must not outlive the upgrade it failed).
    fn code_change(change: CodeChange<'_>) -> Result<Self, String> {
        let probe: Probe = change.old_state()?;
        match change.extra().unwrap_or_default() {
            Upgrade::Ok => Ok(probe),
            Upgrade::HoardAndRefuse(path, times) => {
                for _ in 0..times {
                    let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                    // Leaked on purpose: only the host can close it.
                    let _ = Box::leak(Box::new(f));
                }
                Err(format!("refused after opening {path} {times} times"))
            }
            Upgrade::RefuseIfExists(path) if std::fs::exists(&path).unwrap_or(false) => {
                Err(format!("refused: {path} exists"))
            }
            Upgrade::RefuseIfExists(_) => Ok(probe),
        }
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        match request {
            Call::Read(path) => answer(std::fs::read_to_string(path).map(Value::Text)),
            Call::Write(path, text) => {
                answer(std::fs::write(path, text).map(|()| Value::Nothing(None)))
            }
            Call::Env(name) => Reply::ok(match std::env::var(name) {
                Ok(v) => Answer::Ok(Value::Text(v)),
                Err(e) => Answer::Err(e.to_string()),
            }),
            Call::Now => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                Reply::ok(Answer::Ok(Value::Number(now)))
            }
            Call::Connect(addr) => {
                answer(std::net::TcpStream::connect(addr.as_str()).map(|_| Value::Nothing(None)))
            }
            Call::Print(lines, text) => {
                let mut out = std::io::stdout();
                for _ in 0..lines {
                    let _ = writeln!(out, "{text}");
                }
                let _ = out.flush();
                eprintln!("stderr: {text}");
                Reply::ok(Answer::Ok(Value::Number(u64::from(lines))))
            }
            Call::Hoard(path, times) => {
                for _ in 0..times {
                    match std::fs::File::open(&path) {
                        // Leaked on purpose: the handle stays open for good.
                        Ok(f) => drop(Box::leak(Box::new(f))),
                        Err(e) => return Reply::ok(Answer::Err(e.to_string())),
                    }
                }
                Reply::ok(Answer::Ok(Value::Number(u64::from(times))))
            }
            Call::Random(n) => {
                let mut bytes = vec![0u8; n.min(256) as usize];
                // wasi-libc's getentropy asks WASI's `get-random-bytes`.
                // SAFETY: the buffer is valid for writes of its length.
                if unsafe { getentropy(bytes.as_mut_ptr(), bytes.len()) } != 0 {
                    return Reply::ok(Answer::Err(std::io::Error::last_os_error().to_string()));
                }
                let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
                Reply::ok(Answer::Ok(Value::Text(hex)))
            }
            Call::Emit(text) => {
                let mut out = std::io::stdout();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                Reply::ok(Answer::Ok(Value::Nothing(None)))
            }
            Call::Keep(path) => answer(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .map(|f| {
                        self.kept.push(f);
                        Value::Number(self.kept.len() as u64 - 1)
                    }),
            ),
            Call::Append(index, text) => answer(match self.kept.get_mut(index as usize) {
                Some(f) => f.write_all(text.as_bytes()).map(|()| Value::Nothing(None)),
                None => Err(std::io::Error::other("no file kept at this index")),
            }),
            Call::Vsn => Reply::ok(Answer::Ok(Value::Text(Self::VSN.into()))),
            Call::Hold(path, times) => {
                for opened in 0..times {
                    match std::fs::File::open(&path) {
                        Ok(f) => self.kept.push(f),
                        Err(e) => {
                            return Reply::ok(Answer::Err(format!("after {opened}: {e}")));
                        }
                    }
                }
                Reply::ok(Answer::Ok(Value::Number(u64::from(times))))
            }
            Call::CloseAll => {
                let closed = self.kept.len() as u64;
                self.kept.clear();
                Reply::ok(Answer::Ok(Value::Number(closed)))
            }
            Call::StreamPastClose(name) => match self.stream_past_close(&name) {
                Ok(()) => Reply::ok(Answer::Ok(Value::Number(self.streams.len() as u64))),
                Err(e) => Reply::ok(Answer::Err(e)),
            },
            Call::DropStreams => {
                let dropped = self.streams.len() as u64;
                self.streams.clear();
                Reply::ok(Answer::Ok(Value::Number(dropped)))
            }
            Call::Churn(path, times) => {
                for _ in 0..times {
                    if let Err(e) = std::fs::read_to_string(&path) {
                        return Reply::ok(Answer::Err(e.to_string()));
                    }
                }
                Reply::ok(Answer::Ok(Value::Number(u64::from(times))))
            }
            Call::List(path) => answer(std::fs::read_dir(path).and_then(|entries| {
                let mut names = entries
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<std::io::Result<Vec<_>>>()?;
                names.sort();
                Ok(Value::Names(names))
            })),
        }
    }
}

impl Probe {
    fn stream_past_close(&mut self, name: &str) -> Result<(), String> {
        use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let dirs = wasip2::filesystem::preopens::get_directories();
        let (dir, _) = dirs
            .iter()
            .find(|(_, path)| path == "/data")
            .ok_or("no /data")?;
        let file = dir
            .open_at(
                PathFlags::empty(),
                name,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(|e| e.to_string())?;
        let stream = file.read_via_stream(0).map_err(|e| e.to_string())?;
        drop(file);
        self.streams.push(stream);
        Ok(())
    }
}

unsafe extern "C" {
    fn getentropy(buf: *mut u8, len: usize) -> i32;
}

otter_guest::export_genserver!(Probe);

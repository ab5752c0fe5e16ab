//! The chapter's FileServer, built for `wasm32-wasip2`: it appends lines to `write.log` in a
//! directory its manifest grants it (Rust's `std::fs` over WASI), and its `terminate` writes
//! `# terminating: <reason>` and closes the file.
//!
//! ```text
//! args: {"path": "/files/write.log"}     (the default; the directory must be granted rw)
//! $ otter call file_server '{"write": "hello"}'
//! "ok"
//! $ otter call file_server '{"write": "안녕하세요"}'
//! "ok"
//! ```
//!
//! Unlike the chapter's, which writes Latin-1 and dies on Hangul, lines are UTF-8 throughout
//! (a Rust `String` cannot hold anything else). A path outside its grant cannot be opened:
//! `init` then stops with the error, and the start fails. After a panic in a callback its
//! `terminate` still writes the line (it sets `GenServer::TERMINATE_ON_PANIC`).

use std::fs::{File, OpenOptions};
use std::io::Write as _;

use otter_guest::{ExitReason, GenServer, Init, Reply, ReplyTo};
use serde::{Deserialize, Serialize};

const DEFAULT_PATH: &str = "/files/write.log";

#[derive(Deserialize, Default)]
struct Args {
    path: Option<String>,
}

/// The state: where the log is, and the open file. The handle is not part of the state's
/// bytes: a state restored from them (after hibernation, an upgrade, or for `terminate`
/// after a panic) opens the file again when it first writes.
#[derive(Serialize, Deserialize)]
struct FileServer {
    path: String,
    lines: u64,
    #[serde(skip)]
    file: Option<File>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    /// Append this line (a newline is added).
    Write(String),
    /// How many lines this server wrote.
    Lines,
    /// Panic with this message after writing it as a line (for tests of `terminate`).
    Panic(String),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Ok(&'static str),
    Lines(u64),
    Err { error: String },
}

fn open(path: &str) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl FileServer {
    fn append(&mut self, text: &str) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            slot => slot.insert(open(&self.path)?),
        };
        // One write per line: a line is never split between two callbacks' writes.
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        file.write_all(line.as_bytes())
    }
}

impl GenServer for FileServer {
    type Args = Args;
    type Call = Call;
    type Reply = Answer;
    type Cast = ();
    type Info = ();
    type Continue = ();
    const VSN: &'static str = "1";
    // Its `terminate` must run after a panic in a callback too, to write what it holds.
    const TERMINATE_ON_PANIC: bool = true;

    fn init(args: Args) -> Init<Self> {
        let path = args.path.unwrap_or_else(|| DEFAULT_PATH.to_owned());
        match open(&path) {
            Ok(file) => Init::ok(FileServer {
                path,
                lines: 0,
                file: Some(file),
            }),
            Err(e) => Init::Stop(ExitReason::Error(format!("cannot open {path}: {e}"))),
        }
    }

    fn handle_call(&mut self, request: Call, _from: ReplyTo) -> Reply<Answer> {
        match request {
            Call::Write(text) => match self.append(&text) {
                Ok(()) => {
                    self.lines += 1;
                    Reply::ok(Answer::Ok("ok"))
                }
                Err(e) => Reply::ok(Answer::Err {
                    error: e.to_string(),
                }),
            },
            Call::Lines => Reply::ok(Answer::Lines(self.lines)),
            Call::Panic(message) => {
                let _ = self.append(&message);
                panic!("{message}");
            }
        }
    }

    fn terminate(&mut self, reason: ExitReason) {
        if let Err(e) = self.append(&format!("# terminating: {reason}")) {
            otter_guest::log::error("terminate could not write", &[("error", &e.to_string())]);
        }
        // Closed here, not when the instance goes.
        if let Some(file) = self.file.take() {
            let _ = file.sync_all();
        }
    }
}

otter_guest::export_genserver!(FileServer);

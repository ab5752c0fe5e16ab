//! A node for one test: your modules loaded, your servers started, probes and mocks.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::ops::Deref;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use otter::{
    DirMode, GuestLogLine, Module, ModuleGrants, Node, NodeConfig, Pid, SpawnOptions, StartError,
    Term, encode,
};
use serde::Serialize;

use crate::mock::{Mock, Shared};
use crate::probe::Probe;

/// How many of the last lines its guests logged a [`TestNode`] keeps for
/// [`TestNode::log`].
pub const KEPT_LOG_LINES: usize = 10_000;

/// A [`Node`] for one test: load your `.wasm` under a module name, start your servers,
/// open [probes](Probe) and [mocks](Mock). It derefs to the [`Node`] for everything else
/// (`call`, `cast`, `stop`, `kill`, `get_state`, `whereis`, ...).
///
/// Setup failures panic with what failed (a module that does not load, a server whose
/// `init` fails): in a test, they are the test's failure. Use
/// [`StartServer::try_start`] when the failure is what the test is about.
///
/// The node lives as long as this value and ends with the test's runtime; call
/// [`Node::shutdown`] to stop its processes in order first.
pub struct TestNode {
    node: Node,
    mocks: Mutex<Vec<Weak<Shared>>>,
    /// What [`TestNode::grant_dir`] and [`TestNode::grant_database`] granted each module
    /// so far.
    grants: Mutex<HashMap<String, ModuleGrants>>,
}

impl TestNode {
    /// A node with the default [`NodeConfig`].
    ///
    /// # Panics
    /// Outside a tokio runtime, or if the engine cannot be configured.
    pub fn new() -> TestNode {
        TestNode::with_config(NodeConfig::default())
    }

    /// A node with `config`.
    ///
    /// # Panics
    /// As [`TestNode::new`].
    pub fn with_config(config: NodeConfig) -> TestNode {
        let node = Node::new(config).unwrap_or_else(|e| panic!("starting a node: {e:#}"));
        node.keep_guest_log(KEPT_LOG_LINES);
        TestNode {
            node,
            mocks: Mutex::default(),
            grants: Mutex::default(),
        }
    }

    /// A node with these modules loaded: `(name, path of the .wasm)` pairs.
    ///
    /// # Panics
    /// As [`TestNode::load`].
    pub async fn with_modules<P: AsRef<Path>>(
        modules: impl IntoIterator<Item = (&str, P)>,
    ) -> TestNode {
        let node = TestNode::new();
        for (name, path) in modules {
            node.load(name, path).await;
        }
        node
    }

    /// Load the component at `path` under the module name `name`.
    ///
    /// # Panics
    /// If the file cannot be read or is not an Otter server, saying why.
    pub async fn load(&self, name: &str, path: impl AsRef<Path>) -> Arc<Module> {
        match self.node.load_module(name, path.as_ref()).await {
            Ok(module) => module,
            Err(e) => panic!("loading module `{name}`: {e}"),
        }
    }

    /// Grant `module`'s servers started from now on the host directory `host`, seen by the
    /// guest as `guest` (e.g. `/files`), for a server built for WASI that reads or writes
    /// files. Each call adds a directory to those granted to `module` before; grants given
    /// with [`Node::grant`] are replaced. A server already running keeps what it started
    /// with.
    ///
    /// ```no_run
    /// # async fn demo(node: &otter_test::TestNode) {
    /// use otter::DirMode;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// node.grant_dir("file_server", dir.path(), "/files", DirMode::ReadWrite);
    /// let server = node.start_server("file_server").await;
    /// // ... then read what it wrote under dir.path() ...
    /// # }
    /// ```
    ///
    /// # Panics
    /// If `host` is not a directory accessible as `mode` asks, saying why.
    pub fn grant_dir(&self, module: &str, host: impl AsRef<Path>, guest: &str, mode: DirMode) {
        let host = host.as_ref();
        self.add_grant(
            module,
            || format!("{} as {guest}", host.display()),
            |grants| {
                grants.dir(host, guest, mode);
            },
        );
    }

    /// Grant `module`'s servers started from now on the SQLite database file at `path`
    /// under the name `name`, the one they open with `otter_guest::sql::Connection::open`
    /// (as a manifest's `[[grants.databases]]` does). A read-write grant creates the file
    /// on first open. Each call adds to what `module` was granted before, directories
    /// included; grants given with [`Node::grant`] are replaced. The test reads the file
    /// itself (with `rusqlite`, say) to check what the servers wrote.
    ///
    /// ```no_run
    /// # async fn demo(node: &otter_test::TestNode) {
    /// use otter::DirMode;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let db = dir.path().join("orders.db");
    /// node.grant_database("order_sink", "orders", &db, DirMode::ReadWrite);
    /// let sink = node.start_server("order_sink").await;
    /// // ... then query db for what it wrote ...
    /// # }
    /// ```
    ///
    /// # Panics
    /// If the file's directory is not there or `path` is not a regular file, saying why.
    pub fn grant_database(&self, module: &str, name: &str, path: impl AsRef<Path>, mode: DirMode) {
        let path = path.as_ref();
        self.add_grant(
            module,
            || format!("database `{name}` at {}", path.display()),
            |grants| {
                grants.database(name, path, mode);
            },
        );
    }

    /// Add to `module`'s grants through `add`; on failure, panic naming `what`.
    fn add_grant(
        &self,
        module: &str,
        what: impl FnOnce() -> String,
        add: impl FnOnce(&mut ModuleGrants),
    ) {
        let mut granted = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        let mut grants = granted.get(module).cloned().unwrap_or_default();
        add(&mut grants);
        if let Err(e) = self.node.grant(module, grants.clone()) {
            panic!("granting `{module}` {}: {e}", what());
        }
        granted.insert(module.to_owned(), grants);
    }

    /// What the node's servers logged (`otter_guest::log`), oldest first: the last
    /// [`KEPT_LOG_LINES`] lines.
    pub fn log(&self) -> Vec<GuestLogLine> {
        self.node.guest_log()
    }

    /// Wait up to `timeout` for a log line that `matches` (one already logged counts), and
    /// return it, as ExUnit's `capture_log` and `=~` check a log.
    ///
    /// ```no_run
    /// # async fn demo(node: &otter_test::TestNode) {
    /// use std::time::Duration;
    /// use otter_test::LogLevel;
    ///
    /// let line = node
    ///     .assert_logged(|l| l.level == LogLevel::Warn && l.message.contains("sink"), Duration::from_millis(100))
    ///     .await;
    /// assert_eq!(line.field("error"), Some("noproc"));
    /// # }
    /// ```
    ///
    /// # Panics
    /// If no such line is logged in time, listing the log.
    #[track_caller]
    pub fn assert_logged<'a>(
        &'a self,
        matches: impl Fn(&GuestLogLine) -> bool + 'a,
        timeout: Duration,
    ) -> impl Future<Output = GuestLogLine> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let log = self.log();
                if let Some(line) = log.iter().find(|l| matches(l)) {
                    return line.clone();
                }
                if tokio::time::Instant::now() >= deadline {
                    let mut text = format!(
                        "assert_logged at {caller}: no log line matching within {timeout:?}; "
                    );
                    if log.is_empty() {
                        text.push_str("nothing was logged");
                    } else {
                        let s = if log.len() == 1 { "" } else { "s" };
                        text.push_str(&format!("the log holds {} line{s}:", log.len()));
                        for line in &log {
                            text.push_str(&format!("\n  {line}"));
                        }
                    }
                    panic!("{text}");
                }
                // Guests log from their own tasks; a few milliseconds is plenty between looks.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    /// Start a server of `module`: set its name, args and options on the returned
    /// [`StartServer`], then `.await` it for the pid.
    ///
    /// ```no_run
    /// # async fn demo(node: &otter_test::TestNode) {
    /// let kv = node.start_server("kv").name("kv").await;
    /// let cache = node
    ///     .start_server("kv_cache")
    ///     .args(&serde_json::json!({"store": "kv"}))
    ///     .await;
    /// # }
    /// ```
    pub fn start_server<'a>(&'a self, module: &'a str) -> StartServer<'a> {
        StartServer {
            node: &self.node,
            module,
            args: encode(&()).expect("() encodes"),
            options: SpawnOptions::default(),
        }
    }

    /// A new [`Probe`]: a process of the test with a mailbox to assert on.
    pub fn probe(&self) -> Probe {
        Probe::new(self.node.embedded_process())
    }

    /// A new [`Mock`] registered under `name`, with no expectations yet.
    ///
    /// # Panics
    /// If the name is taken.
    pub fn mock(&self, name: &str) -> Mock {
        let mock = Mock::start(self.node.embedded_process(), name);
        self.mocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mock.shared());
        mock
    }

    /// [`Mock::verify`] every mock of this node that still exists.
    ///
    /// # Panics
    /// As [`Mock::verify`], for the first mock not used as expected.
    pub async fn verify_mocks(&self) {
        let mocks: Vec<_> = self
            .mocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for mock in mocks {
            mock.verify().await;
        }
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }
}

impl Default for TestNode {
    fn default() -> Self {
        TestNode::new()
    }
}

impl Deref for TestNode {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

/// A server about to start; see [`TestNode::start_server`]. `.await` it for the pid (it
/// panics if the server does not start), or call [`try_start`](StartServer::try_start).
#[must_use = "a server starts only when awaited"]
pub struct StartServer<'a> {
    node: &'a Node,
    module: &'a str,
    args: Term,
    options: SpawnOptions,
}

impl<'a> StartServer<'a> {
    /// Register it under `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options = self.options.name(name);
        self
    }

    /// The args its `init` gets, encoded from serde (default: `()`).
    ///
    /// # Panics
    /// If `args` does not encode.
    pub fn args<A: Serialize + ?Sized>(mut self, args: &A) -> Self {
        self.args = encode(args).unwrap_or_else(|e| panic!("the args do not encode: {}", e.0));
        self
    }

    /// Every other spawn option (limits, grants, start timeout, ...); a name set with
    /// [`StartServer::name`] before is replaced by this one's.
    pub fn options(mut self, options: SpawnOptions) -> Self {
        self.options = options;
        self
    }

    /// Start it and return its pid, or why it did not start.
    ///
    /// # Errors
    /// [`StartError`]: the module is not loaded, the name is taken, `init` returned ignore
    /// or stop or crashed, or the start timed out.
    pub async fn try_start(self) -> Result<Pid, StartError> {
        self.node.spawn(self.module, self.args, self.options).await
    }
}

impl<'a> IntoFuture for StartServer<'a> {
    type Output = Pid;
    type IntoFuture = Pin<Box<dyn Future<Output = Pid> + Send + 'a>>;

    /// Start it; panics, saying why, if it does not start.
    fn into_future(self) -> Self::IntoFuture {
        let module = self.module;
        Box::pin(async move {
            match self.try_start().await {
                Ok(pid) => pid,
                Err(e) => panic!("starting a server of `{module}`: {e}"),
            }
        })
    }
}

//! The guests built to wasm, and a node with the ones a test needs.

use std::any::Any;
use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;

use otter_test::TestNode;

/// The built guest `name` (guests/NAME), building the guests once per run.
pub fn wasm(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| xtask::build_guests().expect("build the example guests"))
        .join(format!("{name}.wasm"))
}

/// The built WASI guest `name` (guests/NAME, built for wasm32-wasip2).
pub fn wasi_wasm(name: &str) -> PathBuf {
    wasm(name);
    xtask::wasi_guest_dir().join(format!("{name}.wasm"))
}

/// A node with these guests loaded under their crate names.
pub async fn node(guests: &[&str]) -> TestNode {
    TestNode::with_modules(guests.iter().map(|g| (*g, wasm(g)))).await
}

/// The message of the panic `work` ends with; panics if it does not panic.
pub async fn panic_message(work: impl Future<Output = ()> + Send + 'static) -> String {
    let panic = tokio::spawn(work)
        .await
        .expect_err("the assertion should have failed")
        .into_panic();
    text(&*panic)
}

fn text(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        panic!("a panic without text")
    }
}

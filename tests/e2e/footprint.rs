//! What a live process keeps resident: the pages of its linear memory, and a heap that
//! shares them.

use otter::SpawnOptions;
use serde_json::{Value, json};

use crate::support::*;

const PAGE: usize = 4096;

/// The linear memory a live idle `module` keeps resident (its `init` takes `()`), per process
/// over 20.
async fn idle_linear_memory(module: &str) -> usize {
    const N: usize = 20;
    let node = node().await;
    let spawn = || node.spawn(module, otter::encode(&()).unwrap(), SpawnOptions::default());
    spawn().await.unwrap();
    let before = node.pool_residency().memories;
    for _ in 0..N {
        spawn().await.unwrap();
    }
    let r = node.pool_residency().memories.saturating_sub(before) / N;
    eprintln!("RESIDENT {module} {r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_counter_keeps_three_pages_of_linear_memory() {
    let per_process = idle_linear_memory("counter").await;
    // Its data (7 KiB), with the top of its shadow stack on the data's first page (the
    // guests' 66 KiB stack) and its heap on the data's last (the SDK's allocator): no page of
    // a first 64 KiB grown for the heap, no page for the stack alone. The data is that small
    // because the SDK's decoding links neither core's float printer nor `Debug`'s string
    // escaping (otter_common's decode errors): with them, 12.5 KiB and a fourth page.
    // Three pages hold only while the counter's data and idle heap stay under 10 KiB or so
    // (7 KiB of data with Rust 1.95): a fourth page after a change of the SDK or the
    // toolchain may be its data crossing a page boundary rather than a lost saving.
    assert!(
        per_process <= 3 * PAGE,
        "an idle counter keeps {per_process} bytes of linear memory resident: a page for its \
         stack top with the data's start, its data, its heap on the data's last page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_expects_a_call_result_keeps_three_pages_too() {
    // guests/caller `expect`s `call`'s result: a derived `Debug` of `CallError` would link
    // `Debug`'s string escaping (2.9 KiB of its 10 KiB of data then) and a fourth page.
    let per_process = idle_linear_memory("caller").await;
    assert!(
        per_process <= 3 * PAGE,
        "an idle caller keeps {per_process} bytes of linear memory resident"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heap_grows_around_memory_the_guest_grew_itself() {
    let node = node().await;
    let p = probe(&node).await;
    let kept: Value = node.call(p, &json!({"foreign_grow": 2})).await.unwrap();
    assert_eq!(
        kept,
        json!(true),
        "the heap overwrote pages it did not grow"
    );
    let pong: Value = node.call(p, &json!("ping")).await.unwrap();
    assert_eq!(pong, json!("pong"));
}

//! What a server's SDK makes of a message it cannot decode: a term from another process
//! may be nested far past any sane depth, and the server decoding it must refuse it, not
//! overflow its own stack.

use std::time::Duration;

use otter::{CallError, Dest, MAX_TERM_DEPTH};

use crate::support::*;

/// `{"reg_register": {"registry": "R", "key": [[[…1…]]], "value": null}}`: a request the
/// probe reads into a self-nesting value type, its key nested `depth` levels.
fn deep_request(depth: usize) -> Vec<u8> {
    let mut term = vec![0xa1, 0x6c];
    term.extend(b"reg_register");
    term.extend([0xa3, 0x68]);
    term.extend(b"registry");
    term.extend([0x61, b'R', 0x63]);
    term.extend(b"key");
    term.extend(std::iter::repeat_n(0x81, depth));
    term.push(0x01);
    term.push(0x65);
    term.extend(b"value");
    term.push(0xf6);
    term
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_nested_past_the_depth_limit_is_badarg_and_the_server_goes_on() {
    let node = node().await;
    let pid = probe(&node).await;
    // Within the limit, the request reaches the server (which has no registry "R").
    let fits = node
        .call_term(Dest::Pid(pid), deep_request(MAX_TERM_DEPTH - 3), None)
        .await;
    assert!(fits.is_ok(), "{fits:?}");
    // A few hundred kilobytes nested a level a byte: the guest's decoder refuses it.
    let deep = node
        .call_term(
            Dest::Pid(pid),
            deep_request(300_000),
            Some(Duration::from_secs(30)),
        )
        .await;
    match deep {
        Err(CallError::Badarg(why)) => assert!(why.contains("deeper"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(node.call::<_, String>(pid, &"ping").await.unwrap(), "pong");
}

//! The seed's EchoServer (guests/echo), tested with the kit.

use std::time::Duration;

use otter::ExitReason;
use otter_test::{Down, Exit, assert_receive, refute_receive};
use serde::Deserialize;
use serde_json::json;

use crate::support::node;

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Pong(u64),
    Count(u64),
}

#[tokio::test]
async fn ping_answers_pong_with_how_many_pings_came() {
    let node = node(&["echo"]).await;
    node.start_server("echo").name("echo").await;
    let probe = node.probe();
    for n in 1..=3 {
        let pong: Answer = probe.call("echo", &"ping").await.unwrap();
        assert_eq!(pong, Answer::Pong(n));
    }
    let count: Answer = probe.call("echo", &"count").await.unwrap();
    assert_eq!(count, Answer::Count(3));
}

#[tokio::test]
async fn notify_is_a_cast_that_sends_nothing_back_and_keeps_the_server() {
    let node = node(&["echo"]).await;
    let echo = node.start_server("echo").name("echo").await;
    let probe = node.probe();
    probe.monitor(echo);
    probe.cast("echo", &json!({"notify": "hello"}));
    // A cast it cannot decode is logged; the server lives on.
    probe.cast("echo", &json!({"shout": 1}));
    refute_receive!(probe, Down { .. });
    let pong: Answer = probe.call("echo", &"ping").await.unwrap();
    assert_eq!(pong, Answer::Pong(1));
}

#[tokio::test]
async fn a_stopped_echo_is_seen_down_by_its_monitor_and_its_name_is_free() {
    let node = node(&["echo"]).await;
    let echo = node.start_server("echo").name("echo").await;
    let probe = node.probe();
    let monitor = probe.monitor("echo");
    node.stop("echo", ExitReason::Shutdown, None).await.unwrap();
    assert_receive!(
        probe,
        Down { monitor: m, pid, reason: ExitReason::Shutdown } if m == monitor && pid == echo
    );
    assert_eq!(node.whereis("echo"), None);
    let again = node.start_server("echo").name("echo").await;
    assert_ne!(again, echo);
}

#[tokio::test]
async fn a_killed_echo_sends_its_linked_trapping_probe_an_exit() {
    let node = node(&["echo"]).await;
    let echo = node.start_server("echo").await;
    let probe = node.probe();
    probe.trap_exit(true);
    probe.link(echo);
    node.kill(echo);
    let reason = assert_receive!(
        probe,
        Exit { from, reason } if from == echo => reason,
        Duration::from_secs(1)
    );
    assert_eq!(reason, ExitReason::Killed);
}

//! `terminate` after a panic, as the node's log reports it.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn the_log_says_terminate_ran_after_a_panic_before_the_crash() {
    let app = App::new();
    app.write_manifest(&format!(
        r#"[node]
name = "t"
control = "ctl/t.sock"

[modules]
panic_probe = "{wasm}"

[[children]]
name = "doomed"
module = "panic_probe"
restart = "temporary"
args = {{ watcher = 999999 }}
"#,
        wasm = guests().join("panic_probe.wasm").display(),
    ));
    let _node = app.spawn().ready();
    let out = app.otter(&["call", "doomed", r#"{"panic":"boom"}"#]);
    assert!(
        stderr_of(&out).contains("panic: boom"),
        "{}",
        stderr_of(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = app.stderr();
        if log.contains("process crashed") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<&str> = log.lines().collect();
    let ran = lines
        .iter()
        .position(|l| l.contains("terminate ran after the panic"))
        .unwrap_or_else(|| panic!("the log says terminate ran:\n{log}"));
    let crashed = lines
        .iter()
        .position(|l| l.contains("process crashed"))
        .unwrap_or_else(|| panic!("the crash is logged:\n{log}"));
    assert!(ran < crashed, "{log}");
    assert!(lines[ran].contains("reason=panic: boom"), "{}", lines[ran]);
    assert!(
        lines[crashed].contains("reason=error(panic: boom)"),
        "{}",
        lines[crashed]
    );
    assert_eq!(
        log.matches("terminate ran after the panic").count(),
        1,
        "{log}"
    );
}

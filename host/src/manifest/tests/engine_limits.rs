//! `[node] max_wasm_stack`, `epoch_tick_ms` and `load_timeout_ms`: read, defaulted, and
//! refused at their line when they would hurt the node.

use super::*;

const ENGINE: &str = r#"[node]
max_wasm_stack = 524288
epoch_tick_ms = 10
load_timeout_ms = 20000

[modules]
echo = "echo.wasm"

[[children]]
module = "echo"
callback_timeout_ms = 250
"#;

#[test]
fn engine_keys_are_read_into_the_manifest_and_the_node_config() {
    let (_dir, m) = parse(ENGINE);
    let m = m.expect("valid");
    assert_eq!(m.max_wasm_stack, Some(512 << 10));
    assert_eq!(m.epoch_tick, Some(Duration::from_millis(10)));
    assert_eq!(m.load_timeout, Some(Duration::from_secs(20)));
    let c = m.node_config();
    assert_eq!(c.engine.max_wasm_stack, 512 << 10);
    assert_eq!(c.engine.epoch_tick, Duration::from_millis(10));
    assert_eq!(c.engine.load_timeout, Duration::from_secs(20));
}

#[test]
fn without_engine_keys_the_node_keeps_the_engine_defaults() {
    let (_dir, m) = parse("[node]\nname = \"n\"\n\n[modules]\necho = \"echo.wasm\"\n");
    let m = m.expect("valid");
    assert_eq!(
        (m.max_wasm_stack, m.epoch_tick, m.load_timeout),
        (None, None, None)
    );
    let defaults = crate::EngineConfig::default();
    let c = m.node_config();
    assert_eq!(c.engine.max_wasm_stack, defaults.max_wasm_stack);
    assert_eq!(c.engine.epoch_tick, defaults.epoch_tick);
    assert_eq!(c.engine.load_timeout, crate::engine::DEFAULT_LOAD_TIMEOUT);
}

#[test]
fn the_bounds_of_the_engine_keys_are_valid() {
    for (from, to) in [
        (
            "max_wasm_stack = 524288",
            format!("max_wasm_stack = {MIN_WASM_STACK}"),
        ),
        (
            "max_wasm_stack = 524288",
            format!("max_wasm_stack = {MAX_WASM_STACK}"),
        ),
        ("epoch_tick_ms = 10", "epoch_tick_ms = 1".into()),
        (
            "epoch_tick_ms = 10",
            format!("epoch_tick_ms = {}", MAX_EPOCH_TICK.as_millis()),
        ),
        ("load_timeout_ms = 20000", "load_timeout_ms = 1".into()),
        (
            "load_timeout_ms = 20000",
            format!("load_timeout_ms = {}", MAX_LOAD_TIMEOUT.as_millis()),
        ),
    ] {
        let (_dir, m) = parse(&ENGINE.replace(from, &to));
        m.unwrap_or_else(|e| panic!("{to}: {e}"));
    }
}

#[test]
fn engine_keys_that_would_hurt_the_node_are_refused_at_their_line() {
    let max_tick = MAX_EPOCH_TICK.as_millis();
    let max_load = MAX_LOAD_TIMEOUT.as_millis();
    for (from, to, line, field, says) in [
        (
            "max_wasm_stack = 524288",
            format!("max_wasm_stack = {}", MAX_WASM_STACK + 1),
            2,
            "node.max_wasm_stack",
            format!("at most {MAX_WASM_STACK} bytes"),
        ),
        (
            "max_wasm_stack = 524288",
            "max_wasm_stack = 9223372036854775807".into(),
            2,
            "node.max_wasm_stack",
            format!("at most {MAX_WASM_STACK} bytes"),
        ),
        (
            "max_wasm_stack = 524288",
            format!("max_wasm_stack = {}", MIN_WASM_STACK - 1),
            2,
            "node.max_wasm_stack",
            format!("at least {MIN_WASM_STACK} bytes"),
        ),
        (
            "max_wasm_stack = 524288",
            "max_wasm_stack = 0".into(),
            2,
            "node.max_wasm_stack",
            "at least".into(),
        ),
        (
            "max_wasm_stack = 524288",
            "max_wasm_stack = -1".into(),
            2,
            "node.max_wasm_stack",
            String::new(),
        ),
        (
            "epoch_tick_ms = 10",
            "epoch_tick_ms = 0".into(),
            3,
            "node.epoch_tick_ms",
            "positive".into(),
        ),
        (
            "epoch_tick_ms = 10",
            format!("epoch_tick_ms = {}", max_tick + 1),
            3,
            "node.epoch_tick_ms",
            format!("at most {max_tick} ms"),
        ),
        (
            "epoch_tick_ms = 10",
            "epoch_tick_ms = 50\ncallback_timeout_ms = 20".into(),
            3,
            "node.epoch_tick_ms",
            "at most callback_timeout_ms (20 ms)".into(),
        ),
        (
            "callback_timeout_ms = 250",
            "callback_timeout_ms = 5".into(),
            11,
            "children[0].callback_timeout_ms",
            "at least [node] epoch_tick_ms (10 ms)".into(),
        ),
        (
            "load_timeout_ms = 20000",
            "load_timeout_ms = 0".into(),
            4,
            "node.load_timeout_ms",
            "positive".into(),
        ),
        (
            "load_timeout_ms = 20000",
            format!("load_timeout_ms = {}", max_load + 1),
            4,
            "node.load_timeout_ms",
            format!("at most {max_load} ms"),
        ),
        (
            "load_timeout_ms = 20000",
            "load_timeout_ms = \"1 s\"".into(),
            4,
            "node.load_timeout_ms",
            String::new(),
        ),
    ] {
        let text = ENGINE.replace(from, &to);
        assert_ne!(text, ENGINE, "{from}");
        let e = error(&text);
        assert_eq!(e.file.file_name().unwrap(), "app.toml", "{to}: {e}");
        assert_eq!(e.line, Some(line), "{to}: {e}");
        assert!(e.field.starts_with(field), "{to}: {e}");
        assert!(e.message.contains(&says), "{to}: {e}");
    }
}

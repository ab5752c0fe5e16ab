//! A broken module as an operator meets it: `otter run` and `otter upgrade` refuse it in
//! one line that says why, and nothing else is disturbed.

use std::path::PathBuf;

use wasm_encoder::{
    CodeSection, Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection,
    ExportKind, ExportSection, Function, FunctionSection, InstanceType, Module, TypeSection,
};

use crate::support::*;

/// A valid core module exporting one function, `handle_call`, and nothing an Otter guest
/// needs.
fn core_with_wrong_exports() -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    let mut exports = ExportSection::new();
    exports.export("handle_call", ExportKind::Func, 0);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instructions().end();
    code.function(&body);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&exports)
        .section(&code);
    module.finish()
}

/// A valid component of another world: it imports an instance no node provides and
/// exports no server.
fn component_of_another_world() -> Vec<u8> {
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import("acme:db/query@1.0.0", ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

/// A component built for an older version of the contract: it imports its `log`.
fn component_of_an_older_contract() -> Vec<u8> {
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import("otter:genserver/log@0.1.0", ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

/// Each broken module, written into `app`'s directory, with what its refusal must say.
fn broken_modules(app: &App) -> Vec<(&'static str, PathBuf, &'static str)> {
    let kv = std::fs::read(guests().join("kv.wasm")).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = app.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let dir = app.path("dir.wasm");
    std::fs::create_dir(&dir).unwrap();
    // 100 MB, sparse: a wasm header, then zeros.
    let huge = file("huge.wasm", b"\0asm\x01\0\0\0");
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    vec![
        (
            "not wasm",
            file("text.wasm", b"hello, I am a text file\n"),
            "not a WebAssembly module or component",
        ),
        (
            "truncated",
            file("truncated.wasm", &kv[..kv.len() / 3]),
            "not a valid WebAssembly module",
        ),
        (
            "a core module with the wrong exports",
            file("core.wasm", &core_with_wrong_exports()),
            "not an Otter guest",
        ),
        (
            "a component of another world",
            file("world.wasm", &component_of_another_world()),
            "does not export otter:genserver/server",
        ),
        (
            "a component of an older contract",
            file("old.wasm", &component_of_an_older_contract()),
            "built for otter:genserver@0.1.0",
        ),
        ("a directory", dir, "not a"),
        ("a 100 MB file", huge, "67108864"),
    ]
}

#[test]
fn otter_run_refuses_each_broken_module_in_one_line_saying_why() {
    let scratch = App::new();
    for (what, path, why) in broken_modules(&scratch) {
        let app = App::new();
        app.write_manifest(&format!(
            "[node]\nname = \"t\"\ncontrol = \"ctl/t.sock\"\n\n[modules]\nm = \"{}\"\n\n\
             [[children]]\nname = \"m\"\nmodule = \"m\"\n",
            path.display()
        ));
        let started = std::time::Instant::now();
        let (status, stderr) = app.run_refused();
        assert_eq!(status.code(), Some(1), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        assert!(stderr.contains("app.toml:6: modules.m"), "{what}: {stderr}");
        assert!(stderr.contains(why), "{what}: {stderr}");
        assert!(stderr.len() < 400, "{what}: one short line: {stderr}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{what}: refused at once"
        );
    }
}

#[test]
fn otter_upgrade_refuses_each_broken_module_and_the_server_keeps_its_code_and_state() {
    let app = App::echo_kv();
    let _node = app.spawn().ready();
    app.ok(&["call", "kv", r#"{"put": ["a", "1"]}"#]);
    for (what, path, why) in broken_modules(&app) {
        let out = app.otter(&["upgrade", "kv", path.to_str().unwrap()]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(why), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        assert_eq!(
            app.ok(&["call", "kv", r#"{"get": "a"}"#]).trim(),
            r#""1""#,
            "{what}"
        );
    }
    let modules = app.ok(&["modules"]);
    assert!(
        modules
            .lines()
            .any(|l| l.starts_with("kv") && l.contains(" 1")),
        "{modules}"
    );
    assert_eq!(
        app.ok(&["call", "echo", r#""ping""#]).trim(),
        r#"{"pong":1}"#
    );
}

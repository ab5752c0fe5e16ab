//! Building the example guests to wasm, shared by the `xtask` binary and the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The wasm target guests are built for.
pub const GUEST_TARGET: &str = "wasm32-unknown-unknown";

/// The target of the guests that use WASI (their std reaches files, the environment and
/// clocks through it); `rustc` makes their cdylib a component itself.
pub const WASI_TARGET: &str = "wasm32-wasip2";

/// The guests built for [`WASI_TARGET`] instead of [`GUEST_TARGET`].
pub const WASI_GUESTS: &[&str] = &["wasi_probe", "wasi_probe_v2", "file_server"];

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_owned()
}

/// Where built guests land: `<dir>/<crate>.wasm`.
pub fn guest_dir() -> PathBuf {
    root()
        .join("guests/target")
        .join(GUEST_TARGET)
        .join("release")
}

/// Where built WASI guests land: `<dir>/<crate>.wasm`.
pub fn wasi_guest_dir() -> PathBuf {
    root()
        .join("guests/target")
        .join(WASI_TARGET)
        .join("release")
}

/// Install the wasm targets with rustup if this toolchain lacks them.
pub fn ensure_target() -> anyhow::Result<()> {
    ensure_one_target(GUEST_TARGET)?;
    ensure_one_target(WASI_TARGET)
}

fn ensure_one_target(target: &str) -> anyhow::Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .context("running rustc")?;
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !libdir.is_empty() && Path::new(&libdir).is_dir() {
        return Ok(());
    }
    eprintln!("installing the {target} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .context("running rustup (the wasm target is needed to build guests)")?;
    if !status.success() {
        bail!("rustup target add {target} failed");
    }
    Ok(())
}

/// Build every crate under `guests/` to wasm (a no-op when nothing changed); returns the
/// directory holding the `.wasm` files.
pub fn build_guests() -> anyhow::Result<PathBuf> {
    ensure_target()?;
    let mut args = vec![
        "build",
        "--release",
        "--quiet",
        "--workspace",
        "--target",
        GUEST_TARGET,
    ];
    for g in WASI_GUESTS {
        args.extend(["--exclude", g]);
    }
    let status = guest_cargo(&args).context("running cargo to build the guests")?;
    if !status.success() {
        bail!("building the guests failed");
    }
    let mut args = vec!["build", "--release", "--quiet", "--target", WASI_TARGET];
    for g in WASI_GUESTS {
        args.extend(["--package", g]);
    }
    let status = guest_cargo(&args).context("running cargo to build the WASI guests")?;
    if !status.success() {
        bail!("building the WASI guests failed");
    }
    Ok(guest_dir())
}

/// Run the guests' own unit tests natively (`cargo test` in `guests/`), where the SDK's host
/// calls go to its recording fake.
pub fn test_guests() -> anyhow::Result<std::process::ExitStatus> {
    guest_cargo(&["test", "--quiet", "--workspace"]).context("running cargo to test the guests")
}

/// Run cargo with `args` in the guests' workspace, with their own target directory.
fn guest_cargo(args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    let guests = root().join("guests");
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&guests)
        .args(args)
        .arg("--target-dir")
        .arg(guests.join("target"))
        // Settings of an outer cargo invocation are not meant for the guests.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
}

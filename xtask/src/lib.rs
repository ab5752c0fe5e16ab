//! Building the example guests to wasm, shared by the `xtask` binary and the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The wasm target guests are built for.
pub const GUEST_TARGET: &str = "wasm32-unknown-unknown";

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

/// Install the wasm target with rustup if this toolchain lacks it.
pub fn ensure_target() -> anyhow::Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", GUEST_TARGET])
        .output()
        .context("running rustc")?;
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !libdir.is_empty() && Path::new(&libdir).is_dir() {
        return Ok(());
    }
    eprintln!("installing the {GUEST_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .status()
        .context("running rustup (the wasm target is needed to build guests)")?;
    if !status.success() {
        bail!("rustup target add {GUEST_TARGET} failed");
    }
    Ok(())
}

/// Build every crate under `guests/` to wasm (a no-op when nothing changed); returns the
/// directory holding the `.wasm` files.
pub fn build_guests() -> anyhow::Result<PathBuf> {
    ensure_target()?;
    let status = guest_cargo(&[
        "build",
        "--release",
        "--quiet",
        "--workspace",
        "--target",
        GUEST_TARGET,
    ])
    .context("running cargo to build the guests")?;
    if !status.success() {
        bail!("building the guests failed");
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

//! `cargo xtask run [MANIFEST]` builds the guests and runs an app;
//! `cargo xtask test [ARGS]` builds the guests, runs their unit tests natively, then the
//! whole test suite (the workspace's: e2e, CLI, and the test kit's `otter-test` tests, which
//! load the guests just built);
//! `cargo xtask guests` only builds the guests.

use std::process::{Command, ExitCode};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = xtask::root();
    let status = match task.as_str() {
        "guests" => {
            let dir = xtask::build_guests()?;
            println!("{}", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        "run" => {
            xtask::build_guests()?;
            let manifest = rest
                .first()
                .cloned()
                .unwrap_or_else(|| "examples/echo_kv.toml".into());
            let mut run = cargo();
            run.current_dir(&root)
                .args([
                    "run",
                    "--quiet",
                    "-p",
                    "otter-host",
                    "--bin",
                    "otter",
                    "--",
                    "run",
                ])
                .arg(manifest)
                .args(rest.iter().skip(1));
            // Become `cargo run` (which in turn becomes `otter`), so Ctrl-C reaches the node
            // alone and the terminal waits for its graceful stop.
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                return Err(anyhow::Error::new(run.exec()).context("running cargo"));
            }
            #[cfg(not(unix))]
            run.status()?
        }
        "test" => {
            xtask::build_guests()?;
            if !xtask::test_guests()?.success() {
                return Ok(ExitCode::FAILURE);
            }
            cargo()
                .current_dir(&root)
                .args(["test", "--workspace"])
                .args(&rest)
                .status()?
        }
        _ => {
            eprintln!("usage: cargo xtask (run [MANIFEST] | test [CARGO TEST ARGS] | guests)");
            return Ok(ExitCode::from(2));
        }
    };
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

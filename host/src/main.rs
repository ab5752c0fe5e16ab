//! `otter`: run an application from a manifest, and talk to a running node.
//!
//! ```text
//! otter run app.toml                 # start it; Ctrl-C stops it
//! otter call echo '"ping"'           # {"pong":1}
//! otter cast echo '{"notify":"hi"}'
//! otter ps
//! ```

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

//! `otter`: run an application from a manifest, and talk to a running node.
//!
//! ```text
//! otter run app.toml                 # start it; Ctrl-C stops it
//! otter call echo '"ping"'           # {"pong":1}
//! otter cast echo '{"notify":"hi"}'
//! otter ps
//! ```

mod cli;

/// A node allocates and frees host state for every process it starts and stops, from every
/// worker thread. glibc's per-thread arenas grow their heaps with one `mprotect` call per
/// extension, which took about a seventh of spawn time; mimalloc does not. It is built
/// without transparent huge pages (`no_thp`): a process's host state is a few KiB, and a
/// heap marked for huge pages made the first touch of every 2 MiB of it zero a whole huge
/// page, a third of spawn time (72 → 51 µs per spawn without them). See `otter::allocator`
/// for why not the `mimalloc` crate's own.
#[global_allocator]
static GLOBAL: otter::allocator::Allocator = otter::allocator::Allocator;

fn main() -> std::process::ExitCode {
    cli::main()
}

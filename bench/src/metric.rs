//! What a benchmark prints, and the figures it reads from the OS.
//!
//! Every figure is one line `name value unit`, as `beam_bench.erl` prints them, so one
//! summarizer reads both harnesses. Lines starting with `#` are comments for the raw file.

use std::io::Write;

/// Print one figure, `name value unit`, with three decimals as the Erlang harness does.
pub(crate) fn out(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
    // Runs end with `process::exit`, which does not flush stdout when it is a pipe.
    let _ = std::io::stdout().flush();
}

/// Print the time of one of `n` calls that took `elapsed` in all, in ns/call.
pub(crate) fn out_per_call(name: &str, elapsed: std::time::Duration, n: u64) {
    out(name, elapsed.as_nanos() as f64 / n as f64, "ns/call");
}

/// Print one whole-number figure, `name value unit`.
pub(crate) fn out_count(name: &str, value: u64, unit: &str) {
    println!("{name} {value} {unit}");
    let _ = std::io::stdout().flush();
}

/// Print a comment line, kept in the raw file and skipped by the summarizers.
pub(crate) fn note(text: &str) {
    println!("# {text}");
    let _ = std::io::stdout().flush();
}

/// This process's resident memory in bytes (`VmRSS` of `/proc/self/status`), as the Erlang
/// harness's `rss_bytes/0` reads it.
pub(crate) fn rss_bytes() -> anyhow::Result<u64> {
    Ok(kib_field("/proc/self/status", "VmRSS:")? * 1024)
}

/// This process's page tables, in bytes (`VmPTE`): kernel memory that `VmRSS` leaves out.
pub(crate) fn page_table_bytes() -> anyhow::Result<u64> {
    Ok(kib_field("/proc/self/status", "VmPTE:")? * 1024)
}

/// Memory the kernel could still give without swapping, in bytes (`MemAvailable`).
pub(crate) fn mem_available() -> anyhow::Result<u64> {
    Ok(kib_field("/proc/meminfo", "MemAvailable:")? * 1024)
}

/// A `Name:   1234 kB` line of a `/proc` file.
fn kib_field(file: &str, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(file)?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in {file}"))
}

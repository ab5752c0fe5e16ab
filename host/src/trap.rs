//! What ends a process in the guest becomes one short exit reason: `trap: <code>`,
//! `panic: <message>`, `memory_limit`, `stack_overflow`, `timeout`, or the reason a limit
//! gave (`system_limit`, `badarg: …`). The full error, with its wasm backtrace, goes to the
//! log at debug level. Loading a module says why its instantiation or `vsn` failed the same
//! way, so this sits beside `exit`, below both `engine` and `process`.

use wasmtime::Trap;

use crate::limits::GuestFault;
use crate::memory::MemoryLimit;

/// One short line saying why a guest call failed (see the module doc); a process's own
/// call adds its panic message first (`process::ctx::crash`).
pub(crate) fn load_reason(limits: &MemoryLimit, e: &wasmtime::Error) -> String {
    if let Some(fault) = e.downcast_ref::<GuestFault>() {
        return fault.to_string();
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack_overflow".to_owned(),
        // A Rust guest aborts with `unreachable` when an allocation fails; the limiter
        // refused the memory it asked for.
        Some(Trap::UnreachableCodeReached) if limits.refused() => "memory_limit".to_owned(),
        Some(Trap::UnreachableCodeReached) => "trap: unreachable".to_owned(),
        Some(Trap::Interrupt) => "timeout".to_owned(),
        Some(trap) => format!("trap: {}", snake_case(&format!("{trap:?}"))),
        // A host error (an import refused to go on): its own message, not the backtrace.
        None => crate::guest_text::one_line(&e.root_cause().to_string(), crate::limits::MAX_REASON),
    }
}

/// `MemoryOutOfBounds` → `memory_out_of_bounds`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn trap_names_are_snake_case() {
        assert_eq!(snake_case("MemoryOutOfBounds"), "memory_out_of_bounds");
        assert_eq!(snake_case("Interrupt"), "interrupt");
    }
}

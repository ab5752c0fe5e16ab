//! `otter::fuzzing::control_request` on every input; its doc says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| otter::fuzzing::control_request(data));

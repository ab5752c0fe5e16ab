# Recipes mirror `cargo xtask`, for those who have `just`.

# Build the example guests to wasm.
build-guests:
    cargo xtask guests

# Run an app (default: the echo/kv example).
run manifest="examples/echo_kv.toml":
    cargo xtask run {{manifest}}

# The whole test suite.
test:
    cargo xtask test

# The 100,000-process test (slow; not in CI).
scale:
    cargo xtask test --test e2e -- --ignored hundred_thousand --nocapture

# The soak test: random crashes under calls for OTTER_SOAK_SECS seconds (slow; not in CI).
soak secs="120":
    OTTER_SOAK_SECS={{secs}} cargo xtask test --test e2e -- --ignored soak --nocapture

# Micro-benchmarks.
bench:
    cargo xtask guests && cargo bench -p otter-host --bench runtime

# Erlang/OTP and Otter side by side, one table (needs `erl`; see BENCHMARKS.md).
compare *args:
    bench/compare.sh {{args}}

# Fuzz one decoder (manifest, control_request, term, sdk_message) for `seconds` (needs
# cargo-fuzz and a nightly toolchain); new inputs go to fuzz/scratch/, the seeds stay as committed.
fuzz target seconds="600":
    mkdir -p fuzz/scratch/{{target}}
    cd fuzz && cargo +nightly fuzz run -s none -a {{target}} scratch/{{target}} corpus/{{target}} -- -max_total_time={{seconds}} -max_len=4096 -timeout=10 -rss_limit_mb=2048

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

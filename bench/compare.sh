#!/usr/bin/env bash
# Erlang/OTP and Otter side by side: runs the Erlang baseline harness (bench/beam, kept
# outside this repository) and otter-bench, each benchmark RUNS times as a fresh OS process,
# the two taking turns run by run, and prints one markdown table of medians with the ratio
# Otter/Erlang.
#
#   bench/compare.sh                      # every figure, 5 runs each
#   RUNS=3 bench/compare.sh call cast     # a subset (names as beam_bench's and otter-bench's)
#   bench/compare.sh --max-live           # also the heavy Otter-only population figures
#
# Environment:
#   BEAM_BENCH  the Erlang harness (its run.sh and src/); default ../shared/bench/beam from
#               the repository root
#   BEAM_RAW    reuse the raw results of an earlier Erlang run instead of running erl
#   RUNS        runs per benchmark (default 5); the heavy figures run once
#   OUT         where the raw results and the table go (default target/bench-compare/<time>)
#   QUICK=1     tiny Otter sizes, to try the script (its Otter figures are then not
#               comparable)
#   MAX_LIVE_CAP, MAX_HIBERNATED_CAP
#               with --max-live: stop at this many processes (default: otter-bench's,
#               1,000,000 and 2,000,000); it also stops with 4 GiB of memory left
#
# It installs nothing. Erlang/OTP's `erl` must be on PATH (Debian/Ubuntu:
# `sudo apt-get install erlang-base erlang-dev`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

RUNS=${RUNS:-5}
BEAM_BENCH=${BEAM_BENCH:-$ROOT/../shared/bench/beam}
OUT=${OUT:-$ROOT/target/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)}

# The benchmarks both harnesses have, in beam_bench's order; then Otter's own.
COMMON=(call cast spawn restart restart_batched many_to_one)
OTTER_ONLY=(guest_call many_to_one_tasks hibernate)
HEAVY=(max_live max_hibernated)

declare -A SIZE=()
[ -n "${MAX_LIVE_CAP:-}" ] && SIZE[max_live]=$MAX_LIVE_CAP
[ -n "${MAX_HIBERNATED_CAP:-}" ] && SIZE[max_hibernated]=$MAX_HIBERNATED_CAP
if [ "${QUICK:-}" = 1 ]; then
    SIZE=([call]=2000 [cast]=20000 [spawn]=1000 [restart]=200 [restart_batched]="200 50"
          [many_to_one]="20 200" [many_to_one_tasks]="20 200" [guest_call]=2000 [hibernate]=1000
          [max_live]=2000 [max_hibernated]=2000)
fi

want_heavy=0
selected=()
for arg in "$@"; do
    case "$arg" in
        --max-live) want_heavy=1 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) selected+=("$arg") ;;
    esac
done
[ ${#selected[@]} -eq 0 ] && selected=("${COMMON[@]}" "${OTTER_ONLY[@]}")
[ "$want_heavy" = 1 ] && selected+=("${HEAVY[@]}")

beam_benches=()
for b in "${selected[@]}"; do
    for c in "${COMMON[@]}"; do [ "$b" = "$c" ] && beam_benches+=("$b"); done
done

die() { echo "compare.sh: $*" >&2; exit 1; }

# Check every prerequisite before spending minutes on runs.
if [ ${#beam_benches[@]} -gt 0 ] && [ -z "${BEAM_RAW:-}" ]; then
    command -v erl >/dev/null && command -v erlc >/dev/null ||
        die "erl/erlc not found: install Erlang/OTP first, e.g. \`sudo apt-get install erlang-base erlang-dev\` (Debian/Ubuntu)"
    [ -x "$BEAM_BENCH/run.sh" ] ||
        die "no Erlang harness at $BEAM_BENCH (expected run.sh there): set BEAM_BENCH=path/to/bench/beam"
fi
[ -z "${BEAM_RAW:-}" ] || [ -r "$BEAM_RAW" ] || die "BEAM_RAW=$BEAM_RAW is not readable"

mkdir -p "$OUT"
OTTER_RAW="$OUT/otter_raw.txt"
ERL_RAW="${BEAM_RAW:-$OUT/beam_raw.txt}"

echo "building the guests and otter-bench (release)" >&2
cargo xtask guests >/dev/null
cargo build --release --quiet -p otter-bench
BIN="$ROOT/target/release/otter-bench"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)

run_erl=0
[ ${#beam_benches[@]} -gt 0 ] && [ -z "${BEAM_RAW:-}" ] && run_erl=1
[ "$run_erl" = 1 ] && : >"$ERL_RAW"

# One Erlang run of benchmark $1, the $2th, appended to ERL_RAW (through the harness's own
# script: a fresh VM, as every run).
erl_run() {
    local one="$OUT/beam/one.txt"
    if ! OUT="$OUT/beam" RAW="$one" RUNS=1 "$BEAM_BENCH/run.sh" "$1" >>"$OUT/beam.log" 2>&1; then
        tail -20 "$OUT/beam.log" >&2
        die "the Erlang harness failed; see $OUT/beam.log"
    fi
    sed "s/^# run $1 1 /# run $1 $2 /" "$one" >>"$ERL_RAW"
    grep -v '^#' "$one" | grep -E ' (ns|us|/s|bytes)' | sed "s/^/  erlang $1 $2: /" >&2 || true
}

# One Otter run of benchmark $1, the $2th, appended to OTTER_RAW.
otter_run() {
    echo "# run $1 $2 loadavg=$(loadavg)" >>"$OTTER_RAW"
    # shellcheck disable=SC2086 # a size is one or two words
    "$BIN" "$1" ${SIZE[$1]:-} | tee -a "$OTTER_RAW" | sed "s/^/  otter $1 $2: /" >&2
}

# The two sides take turns, run by run, in alternating order (Erlang first in odd runs,
# Otter first in even ones): this VM's speed drifts over minutes, and both sides of a ratio
# should see the same drift.
if [ "$run_erl" = 1 ]; then
    echo "Erlang/OTP and Otter in turns: ${selected[*]}, $RUNS runs each (heavy ones once, Otter only; Erlang's log: $OUT/beam.log)" >&2
else
    echo "Otter: ${selected[*]}, $RUNS runs each (heavy ones once)" >&2
fi
{
    echo "# $(date -u +%FT%TZ) host=$(hostname) nproc=$(nproc) otter=$(git describe --always --dirty 2>/dev/null || echo unknown)"
    "$BIN" info
} >"$OTTER_RAW"
for b in "${selected[@]}"; do
    runs=$RUNS
    for h in "${HEAVY[@]}"; do [ "$b" = "$h" ] && runs=1; done
    erl=0
    if [ "$run_erl" = 1 ]; then
        for c in "${beam_benches[@]}"; do [ "$b" = "$c" ] && erl=1; done
    fi
    for i in $(seq 1 "$runs"); do
        if [ "$erl" = 1 ] && [ $((i % 2)) = 1 ]; then erl_run "$b" "$i"; fi
        otter_run "$b" "$i"
        if [ "$erl" = 1 ] && [ $((i % 2)) = 0 ]; then erl_run "$b" "$i"; fi
    done
done

# shellcheck source=bench/medians.sh
. "$ROOT/bench/medians.sh"

# The range of 1-minute load averages over a raw file's runs.
load_range() {
    grep -o 'loadavg=[0-9.]*' "$1" 2>/dev/null | cut -d= -f2 | sort -g |
        awk 'NR==1 {lo=$1} {hi=$1} END {if (NR) printf "%s–%s", lo, hi; else printf "n/a"}'
}

declare -A ERL=() OTT=()
if [ -r "$ERL_RAW" ]; then
    while read -r m v; do ERL[$m]=$v; done < <(medians "$ERL_RAW")
fi
while read -r m v; do OTT[$m]=$v; done < <(medians "$OTTER_RAW")

# fmt KIND VALUE: a figure for people (KIND: ns, us, rate, bytes, count).
fmt() {
    [ -z "$2" ] && { printf '–'; return; }
    awk -v k="$1" -v v="$2" 'function num(x) { return (x >= 100) ? sprintf("%.0f", x) : (x >= 10) ? sprintf("%.1f", x) : sprintf("%.2f", x) }
        BEGIN {
          if (k == "ns") print num(v / 1000) " µs";
          else if (k == "us") print num(v) " µs";
          else if (k == "rate") print (v >= 1e6) ? num(v / 1e6) " M/s" : num(v / 1e3) " k/s";
          else if (k == "bytes") print num(v / 1024) " KiB";
          else if (k == "mib") print num(v / 1048576) " MiB";
          else printf "%d\n", v }' | tr -d '\n'
}

ratio() {
    if [ -z "$1" ] || [ -z "$2" ]; then printf '–'; return; fi
    awk -v e="$1" -v o="$2" 'BEGIN { if (e > 0) printf "%.2f×", o / e; else printf "–" }'
}

# paired ERLANG_METRIC OTTER_METRIC: the lowest and highest ratio of the runs the two sides
# took in turns (Otter's nth run over Erlang's nth), when they did.
paired() {
    if [ "$run_erl" != 1 ] || [ -z "$1" ]; then printf '–'; return; fi
    paste <(grep "^$1 " "$ERL_RAW" | awk '{print $2}') <(grep "^$2 " "$OTTER_RAW" | awk '{print $2}') |
        awk -F'\t' '$1 > 0 && $2 != "" { r = $2 / $1; if (!n++ || r < lo) lo = r; if (r > hi) hi = r }
            END { if (n) printf "%.2f–%.2f×", lo, hi; else printf "–" }'
}

# row LABEL KIND OTTER_METRIC [ERLANG_METRIC]
row() {
    local erl=""
    [ -n "${4:-}" ] && erl=${ERL[$4]:-}
    local ott=${OTT[$3]:-}
    [ -z "$ott" ] && [ -z "$erl" ] && return 0
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$2" "$erl")" "$(fmt "$2" "$ott")" \
        "$(ratio "$erl" "$ott")" "$(paired "${4:-}" "$3")"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
otp=$(awk '$1 == "otp_version" {print $2; exit}' "$ERL_RAW" 2>/dev/null || true)
erl_sched=$(awk '$1 == "schedulers_online" {print $2; exit}' "$ERL_RAW" 2>/dev/null || true)
ott_sched=$(awk '$1 == "schedulers_online" {print $2; exit}' "$OTTER_RAW")
ott_wait=$(awk '$1 == "busy_wait" {print $2; exit}' "$OTTER_RAW")
erl_runs=$([ -n "${BEAM_RAW:-}" ] && echo "reused from $BEAM_RAW" || echo "$RUNS runs, in turns with Otter's")

{
    echo "Machine: $(nproc) CPUs ($cpu), $mem, $(uname -sr); load $LOAD_START at start"
    echo "Erlang/OTP ${otp:-?}, ${erl_sched:-?} schedulers, $erl_runs, load $(load_range "$ERL_RAW") during runs"
    echo "Otter $(git describe --always --dirty 2>/dev/null || echo '?'), tokio multi-thread with ${ott_sched:-?} workers (busy wait ${ott_wait:-?} µs), $RUNS runs, load $(load_range "$OTTER_RAW") during runs"
    [ "${QUICK:-}" = 1 ] && echo "QUICK=1: tiny Otter sizes, the Otter figures are not comparable"
    echo
    echo "Medians. Otter/Erlang is Otter's figure divided by Erlang's: below 1× Otter is faster"
    echo "or smaller, except on rows marked ↑ (throughputs, counts), where above 1× Otter is"
    echo "better. Goals (issue 12's targets) in brackets. Run by run: the lowest and highest"
    echo "ratio of an Otter run to the Erlang run next to it."
    echo
    echo "| figure | Erlang/OTP | Otter | Otter/Erlang | run by run |"
    echo "|---|---|---|---|---|"
    row "call round trip, 1 caller (≤ 0.5×)" ns gen_server_call_latency gen_server_call_latency
    row "cast throughput, 1 producer ↑ (≥ 1.5×)" rate gen_server_cast_throughput gen_server_cast_throughput
    row "many callers → one server ↑ (≥ 1×)" rate gen_server_many_to_one gen_server_many_to_one
    row "spawn a server, returns after init (≤ 2×)" us gen_server_spawn gen_server_spawn
    row "memory per idle server, RSS (≤ 5×)" bytes gen_server_mem_rss gen_server_mem_rss
    row "memory per hibernated server, RSS, vs Erlang's idle one (≤ 1×)" bytes otter_hibernated_mem_rss gen_server_mem_rss
    row "restart after kill, crash loop of one supervisor (≤ 1×)" us supervisor_restart_latency supervisor_restart_latency
    row "restart after kill, fresh supervisor every 50 (≤ 1×)" us supervisor_restart_latency_batched supervisor_restart_latency_batched
    row "Otter only: guest → guest call inside a callback (≤ 1 µs)" ns otter_guest_call_latency
    row "Otter only: under a guest's call: the cheapest import (\`clock.monotonic-time\`)" ns otter_guest_import_floor
    row "Otter only: under a guest's call: an import that suspends and resumes (\`clock.sleep(0)\`)" ns otter_guest_yield_floor
    row "Otter only: idle server's memory: linear memory pages" bytes otter_mem_linear_memory
    row "Otter only: idle server's memory: fiber stack pages" bytes otter_mem_fiber_stack
    row "Otter only: idle server's memory: host heap (the rest)" bytes otter_mem_host_heap
    row "Otter only: idle server's page tables, not in the RSS" bytes otter_mem_page_tables
    row "Otter only: call round trip through \`call_term\`" ns otter_call_term_latency
    row "Otter only: the floor under a call: \`handle-call\` entered directly, no process" ns otter_call_floor
    row "Otter only: the floor under any callback: \`vsn\` entered directly" ns otter_entry_floor
    row "Otter only: many → one, clients as tokio tasks ↑" rate otter_many_to_one_tasks
    row "Otter only: RSS growth for a second burst of casts, to a second counter" mib otter_cast_second_burst_rss
    row "Otter only: restart, first tenth of the crash loop" us otter_restart_latency_first_tenth
    row "Otter only: restart, last tenth of the crash loop (flat)" us otter_restart_latency_last_tenth
    row "Otter only: hibernate a server (call, then instance dropped)" us otter_hibernate
    row "Otter only: live servers reached ↑ (≥ 250k)" count otter_max_live_processes
    row "Otter only: memory per live server at that count, RSS" bytes otter_max_live_mem_rss
    row "Otter only: hibernated servers reached ↑ (≥ 1M)" count otter_max_hibernated_processes
    row "Otter only: memory per hibernated server at that count, RSS" bytes otter_max_hibernated_mem_rss
    echo
    grep -h '^# max_' "$OTTER_RAW" | sed 's/^# /Note: /' || true
    echo "Raw results: $ERL_RAW, $OTTER_RAW"
} | tee "$OUT/table.md"

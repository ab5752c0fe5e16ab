#!/usr/bin/env bash
# The chapter's servers on the real BEAM and on Otter, side by side: runs the Elixir seed
# (the chapter's own KVWithETS and OrderSinkFixed, kept outside this repository) and
# otter-bench's kv_ets and order_sink, and prints one markdown table of medians.
#
#   bench/chapter.sh                 # KVWithETS and OrderSink, 3 runs each
#   RUNS=1 bench/chapter.sh ets      # a subset: ets, order
#
# Environment:
#   SEED_ELIXIR  the Elixir seed (its run.sh, bench.exs and lib/); default
#                ../shared/bench/seed-elixir from the repository root
#   ELIXIR_RESULTS  reuse the results.md of an earlier Elixir run instead of running it
#   RUNS         runs per benchmark (default 3): the Elixir seed's reps, otter-bench's runs
#   OUT          where the raw results and the table go (default target/bench-chapter/<time>)
#   QUICK=1      short runs on both sides, to try the script (figures not meaningful)
#
# The Elixir side writes orders to a plain file (no SQLite for Elixir without hex); Otter's
# OrderSink writes them into SQLite, one transaction per flush. It installs nothing: `erl`,
# `erlc`, `elixir` and `elixirc` must be on PATH (Debian/Ubuntu: `sudo apt-get install
# elixir`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

RUNS=${RUNS:-3}
SEED_ELIXIR=${SEED_ELIXIR:-$ROOT/../shared/bench/seed-elixir}
OUT=${OUT:-$ROOT/target/bench-chapter/$(date -u +%Y%m%dT%H%M%SZ)}
READERS=(1 2 8 64)
CLIENTS=(1 10 100 1000)

die() { echo "chapter.sh: $*" >&2; exit 1; }

sections=()
for arg in "$@"; do
    case "$arg" in
        ets | order) sections+=("$arg") ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown section $arg (expected ets or order)" ;;
    esac
done
[ ${#sections[@]} -eq 0 ] && sections=(ets order)
want() { local s; for s in "${sections[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

if [ -z "${ELIXIR_RESULTS:-}" ]; then
    for tool in erl erlc elixir elixirc; do
        command -v "$tool" >/dev/null ||
            die "$tool not found: install Elixir first, e.g. \`sudo apt-get install elixir\` (Debian/Ubuntu)"
    done
    [ -x "$SEED_ELIXIR/run.sh" ] ||
        die "no Elixir seed at $SEED_ELIXIR (expected run.sh there): set SEED_ELIXIR=path/to/seed-elixir"
else
    [ -r "$ELIXIR_RESULTS" ] || die "ELIXIR_RESULTS=$ELIXIR_RESULTS is not readable"
fi

mkdir -p "$OUT"
OTTER_RAW="$OUT/otter_raw.txt"
EX_RESULTS=${ELIXIR_RESULTS:-$OUT/elixir/results.md}

echo "building the guests and otter-bench (release)" >&2
cargo xtask guests >/dev/null
cargo build --release --quiet -p otter-bench
BIN="$ROOT/target/release/otter-bench"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)

if [ -z "${ELIXIR_RESULTS:-}" ]; then
    only=$(IFS=,; echo "${sections[*]}")
    echo "Elixir seed: $only, $RUNS reps (log: $OUT/elixir.log)" >&2
    mkdir -p "$OUT/elixir"
    if ! OUT="$OUT/elixir" ONLY="$only" REPS="$RUNS" QUICK="${QUICK:-}" "$SEED_ELIXIR/run.sh" \
        >"$OUT/elixir.log" 2>&1; then
        tail -20 "$OUT/elixir.log" >&2
        die "the Elixir seed failed; see $OUT/elixir.log"
    fi
fi

secs_ets=2
secs_order=5
[ "${QUICK:-}" = 1 ] && secs_ets=0.3 && secs_order=1
echo "Otter: ${sections[*]}, $RUNS runs each" >&2
echo "# $(date -u +%FT%TZ) otter=$(git describe --always --dirty 2>/dev/null || echo unknown)" >"$OTTER_RAW"
for i in $(seq 1 "$RUNS"); do
    if want ets; then
        echo "# run kv_ets $i loadavg=$(loadavg)" >>"$OTTER_RAW"
        "$BIN" kv_ets --secs "$secs_ets" | tee -a "$OTTER_RAW" | sed "s/^/  otter kv_ets $i: /" >&2
    fi
    if want order; then
        for c in "${CLIENTS[@]}"; do
            echo "# run order_sink $c $i loadavg=$(loadavg)" >>"$OTTER_RAW"
            "$BIN" order_sink --clients "$c" --secs "$secs_order" | tee -a "$OTTER_RAW" |
                sed "s/^/  otter order_sink $c $i: /" >&2
        done
    fi
done

# shellcheck source=bench/medians.sh
. "$ROOT/bench/medians.sh"
declare -A OTT=()
while read -r m v; do OTT[$m]=$v; done < <(medians "$OTTER_RAW")

# The median column of the seed's results.md row whose section and metric are these.
elixir() {
    awk -F'|' -v s="$1" -v m="$2" '
        { for (i = 2; i <= 3; i++) { gsub(/^ +| +$/, "", $i) } }
        $2 == s && $3 == m { gsub(/ /, "", $7); print $7; exit }' "$EX_RESULTS" 2>/dev/null || true
}

fmt() {
    [ -z "$2" ] && { printf '–'; return; }
    awk -v k="$1" -v v="$2" 'function num(x) { return (x >= 100) ? sprintf("%.0f", x) : (x >= 10) ? sprintf("%.1f", x) : sprintf("%.2f", x) }
        BEGIN {
          if (k == "us") print (v >= 1000) ? num(v / 1000) " ms" : num(v) " µs";
          else if (k == "rate") print (v >= 1e6) ? num(v / 1e6) " M/s" : (v >= 1e3) ? num(v / 1e3) " k/s" : num(v) " /s";
          else print num(v) }' | tr -d '\n'
}

ratio() {
    if [ -z "$1" ] || [ -z "$2" ]; then printf '–'; return; fi
    awk -v e="$1" -v o="$2" 'BEGIN { if (e > 0) printf "%.2f×", o / e; else printf "–" }'
}

# row LABEL KIND ELIXIR_VALUE OTTER_METRIC
row() {
    local ott=${OTT[$4]:-}
    [ -z "$ott" ] && [ -z "$3" ] && return 0
    printf '| %s | %s | %s | %s |\n' "$1" "$(fmt "$2" "$3")" "$(fmt "$2" "$ott")" "$(ratio "$3" "$ott")"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "Machine: $(nproc) CPUs ($cpu), $(uname -sr); load $LOAD_START at start, $(loadavg) at the end"
    echo "Elixir seed: $(grep -m1 '^## Results' "$EX_RESULTS" 2>/dev/null | sed 's/^## Results //' || echo '?')"
    echo "Otter $(git describe --always --dirty 2>/dev/null || echo '?'), $RUNS runs, medians"
    [ "${QUICK:-}" = 1 ] && echo "QUICK=1: short runs, the figures are not meaningful"
    echo
    echo "Otter/Elixir: above 1× Otter is better on rows marked ↑, below 1× on the others."
    echo
    echo "| figure | Elixir (BEAM) | Otter | Otter/Elixir |"
    echo "|---|---|---|---|"
    if want ets; then
        for r in "${READERS[@]}"; do
            row "KVWithETS: reads/s, $r reader(s) + 1 writer ↑" rate \
                "$(elixir "2 KVWithETS" "reads, $r reader(s) + 1 writer")" "otter_kv_ets_reads_${r}_readers"
            row "KVWithETS: writes/s through the server, with $r reader(s) ↑" rate \
                "$(elixir "2 KVWithETS" "writes via GenServer.call, with $r reader(s)")" "otter_kv_ets_writes_${r}_readers"
        done
    fi
    if want order; then
        for c in "${CLIENTS[@]}"; do
            s="4 OrderSinkFixed P=$c"
            row "OrderSink, $c client(s): accepted/s ↑" rate "$(elixir "$s" accepted)" "order_sink_accepted_p$c"
            row "OrderSink, $c client(s): busy replies/s" rate "$(elixir "$s" "busy replies")" "order_sink_busy_p$c"
            row "OrderSink, $c client(s): submit p50" us "$(elixir "$s" "submit p50 latency (all replies)")" "order_sink_submit_p50_p$c"
            row "OrderSink, $c client(s): submit p99" us "$(elixir "$s" "submit p99 latency (all replies)")" "order_sink_submit_p99_p$c"
            row "OrderSink, $c client(s): mean flush size ↑" count "$(elixir "$s" "mean flush size")" "order_sink_mean_flush_size_p$c"
            row "OrderSink, $c client(s): accepted orders lost after the stop" count \
                "$(elixir "$s" "after stop: accepted orders missing from file")" "order_sink_lost_after_stop_p$c"
        done
    fi
} | tee "$OUT/table.md"
echo "raw results: $OTTER_RAW, $EX_RESULTS; table: $OUT/table.md" >&2

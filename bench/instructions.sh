#!/usr/bin/env bash
# User-space instructions per echoed message, counted by valgrind's callgrind: a measure that
# does not move with the machine's load (CPU time does), for before/after comparisons of the
# engine's own code. The kernel's share (syscalls, loopback) is not counted.
#
#   bench/instructions.sh [LABEL=LIBDIR:ARGS ...]
#
# Each server runs under callgrind with the echo load (50 connections x depth 1 x 64 B);
# counting starts 1 s into the load and lasts 3 s (`callgrind_control -z`, then `-d`).
# LABEL=LIBDIR:ARGS runs examples/c/build/echo_server ARGS against the libwsembed in LIBDIR
# (empty: this checkout's target/release); LIBDIR `raw` is the raw epoll echo. Default:
#   raw=raw:  inline=:--inline  threaded=:
# Under callgrind a server runs some 50x slower, so its turns carry fewer messages than at full
# speed: per-turn costs weigh more than in a real run. Compare builds with each other here, and
# use bench/paired.sh for ratios of CPU time.
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
SERVERS=("$@")
[ $# -eq 0 ] && SERVERS=("raw=raw:" "inline=:--inline" "threaded=:")
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
LOADGEN="$BENCH/target/release/loadgen"
[ -x "$LOADGEN" ] || { echo "instructions.sh: $LOADGEN is missing (run bench/run.sh once)" >&2; exit 1; }
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT

echo "| server | instructions/msg | msgs/s under callgrind |"
echo "|---|---:|---:|"
for spec in "${SERVERS[@]}"; do
    label="${spec%%=*}"; rest="${spec#*=}"; lib="${rest%%:*}"; args="${rest#*:}"
    if [ "$lib" = raw ]; then
        cmd=("$BENCH/peers/build/raw_epoll_echo"); mode=raw
    else
        # shellcheck disable=SC2206 # ARGS are words on purpose
        cmd=("$ROOT/examples/c/build/echo_server" $args); mode=echo
    fi
    rm -f "$OUT"/cg.* "$OUT/server.out"
    LD_LIBRARY_PATH="${lib:-$ROOT/target/release}" valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" \
        "${cmd[@]}" --port 0 > "$OUT/server.out" 2>/dev/null &
    pid=$!
    for _ in $(seq 300); do grep -q listening "$OUT/server.out" && break; sleep 0.1; done
    port="$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$OUT/server.out" | grep -o '[0-9]*$')"
    [ -n "$port" ] || { echo "| $label | (did not start) | |"; kill "$pid" 2>/dev/null; continue; }
    "$LOADGEN" --mode "$mode" --port "$port" --conns 50 --depth 1 --size 64 --duration 5 --warmup 1.5 \
        > "$OUT/load.json" 2>/dev/null &
    load=$!
    sleep 2.5; callgrind_control -z "$pid" >/dev/null 2>&1; sleep 3; callgrind_control -d "$pid" >/dev/null 2>&1
    wait "$load"
    kill -INT "$pid" 2>/dev/null; sleep 0.5; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    # The dump made by `-d` is the file with the suffix .1 (the window); messages in it at the
    # loadgen's rate.
    python3 - "$label" "$OUT/load.json" "$OUT"/cg.*.1 <<'PY'
import json, sys
label, load, dump = sys.argv[1], sys.argv[2], sys.argv[3]
rate = json.load(open(load))["msgs_per_s"]
total = next(int(l.split()[1]) for l in open(dump) if l.startswith(("totals:", "summary:")))
print(f"| {label} | {total / (rate * 3):,.0f} | {rate:,.0f} |")
PY
done

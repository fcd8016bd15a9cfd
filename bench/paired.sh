#!/usr/bin/env bash
# Paired echo rounds: ratios that survive a noisy, shared machine.
#
#   bench/paired.sh [ROUNDS] [SECONDS] [LABEL=LIBDIR:ARGS ...]
#
# Runs the echo scenario (50 connections x depth 1 x 64 B, as bench/run.sh) against each server
# in turn, ROUNDS times (default 8), SECONDS measured each (default 3, after 1 s of warm-up), and
# prints every round, then per server the MEDIAN of its per-round ratios to the raw epoll echo
# measured in the same round: CPU µs/msg and p99. A drift in machine speed moves both sides of a
# round, so the median ratio is steadier than a best-of-N per server (bench/run.sh).
#
# Servers: LABEL=LIBDIR:ARGS runs examples/c/build/echo_server ARGS with LD_LIBRARY_PATH=LIBDIR
# (empty: this checkout's target/release), so an older build of libwsembed can run beside this
# one; LIBDIR `raw` is the raw epoll echo (always run, as the reference). Default servers:
#   inline=:--inline  threaded=:
# Unpinned unless PIN=1 (then server on CPU 1, loadgen on CPU 0, as bench/run.sh). Needs the
# builds bench/run.sh makes (bench/target/release/loadgen, bench/peers/build/raw_epoll_echo,
# examples/c/build/echo_server).
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
ROUNDS="${1:-8}"; SECONDS_EACH="${2:-3}"; shift $(( $# >= 2 ? 2 : $# ))
SERVERS=("raw=raw:" "$@")
[ $# -eq 0 ] && SERVERS+=("inline=:--inline" "threaded=:")
LOADGEN="$BENCH/target/release/loadgen"
for need in "$LOADGEN" "$BENCH/peers/build/raw_epoll_echo" "$ROOT/examples/c/build/echo_server"; do
    [ -x "$need" ] || { echo "paired.sh: $need is missing (run bench/run.sh once)" >&2; exit 1; }
done
SERVER_PIN=(); LOADGEN_PIN=()
if [ "${PIN:-0}" = 1 ]; then SERVER_PIN=(taskset -c 1); LOADGEN_PIN=(taskset -c 0); fi
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT

for round in $(seq "$ROUNDS"); do
    for spec in "${SERVERS[@]}"; do
        label="${spec%%=*}"; rest="${spec#*=}"; lib="${rest%%:*}"; args="${rest#*:}"
        if [ "$lib" = raw ]; then
            cmd=("$BENCH/peers/build/raw_epoll_echo"); mode=raw
        else
            # shellcheck disable=SC2206 # ARGS are words on purpose
            cmd=(env "LD_LIBRARY_PATH=${lib:-$ROOT/target/release}" "$ROOT/examples/c/build/echo_server" $args); mode=echo
        fi
        "${SERVER_PIN[@]}" "${cmd[@]}" --port 0 > "$OUT/server.out" 2>&1 &
        pid=$!
        for _ in $(seq 100); do grep -q listening "$OUT/server.out" && break; sleep 0.05; done
        port="$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$OUT/server.out" | grep -o '[0-9]*$')"
        if [ -n "$port" ]; then
            "${LOADGEN_PIN[@]}" "$LOADGEN" --mode "$mode" --port "$port" --conns 50 --depth 1 --size 64 \
                --duration "$SECONDS_EACH" --warmup 1 --server-pid "$pid" 2>/dev/null \
                | sed "s/^/$round $label /" >> "$OUT/rounds"
        fi
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    done
done

python3 - "$OUT/rounds" <<'PY'
import json, statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    round_no, label, doc = line.split(" ", 2)
    d = json.loads(doc)
    rounds.setdefault(round_no, {})[label] = d
    print(f"round {round_no} {label:>10}: {d['msgs_per_s']:>9,.0f} msgs/s  CPU {d['server_cpu_us_per_msg']:.3f} µs/msg  p99 {d['p99_us']:,.0f} µs")
labels = [l for l in dict.fromkeys(l for r in rounds.values() for l in r) if l != "raw"]
print()
print("| server | CPU/msg ÷ raw (median) | min | max | p99 ÷ raw (median) | rounds |")
print("|---|---:|---:|---:|---:|---:|")
for label in labels:
    pairs = [(r[label], r["raw"]) for r in rounds.values() if label in r and "raw" in r]
    if not pairs:
        continue
    cpu = [a["server_cpu_us_per_msg"] / b["server_cpu_us_per_msg"] for a, b in pairs]
    p99 = [a["p99_us"] / b["p99_us"] for a, b in pairs]
    print(f"| {label} | {statistics.median(cpu):.3f}× | {min(cpu):.3f}× | {max(cpu):.3f}× | {statistics.median(p99):.3f}× | {len(pairs)} |")
PY

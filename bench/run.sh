#!/usr/bin/env bash
# wsembed benchmark: one command, one run, one side-by-side table.
#
#   bench/run.sh [--quick] [--only NAME[,NAME..]] [--no-build] [--no-game]
#
# For every server below that exists, starts it on 127.0.0.1 (pinned to CPU 1 with taskset), drives
# it with our closed-loop load generator bench/loadgen (pinned to CPU 0) and prints ONE markdown
# table (also saved to bench/results/latest.md, raw JSON lines in bench/results/latest.jsonl):
#
#   echo       ECHO_CONNS connections x ECHO_DEPTH messages in flight x ECHO_SIZE bytes:
#              msgs/s, p50/p99 round-trip latency, server CPU us/msg
#   broadcast  BCAST_CLIENTS clients, BCAST_SENDERS of them send (BCAST_DEPTH outstanding each) to a
#              `--broadcast` server: deliveries/s over all clients, server CPU us/delivery
#   idle       server VmRSS growth per open (handshaken, idle) connection at each of IDLE_CONNS
#   ratios     msgs/s and CPU/msg vs the raw TCP epoll echo (physical baseline) and vs the best
#              peer (ws, websockets, tokio-tungstenite) for each metric
#   game       a second table: examples/c/game_server (60 Hz loop, pinned like the servers) with
#              GAME_CONNS clients in GAME_ROOMS rooms sending inputs at GAME_INPUT_HZ: tick
#              p50/p99/max us (parsed from the server's `ticks 300 ...` lines covering the
#              measured ticks), snapshot delivery p50/p99 us, snapshots/s received vs expected,
#              server CPU %. Skipped with a note when examples/c/build/game_server is missing.
#
# Server CPU = utime+stime of the whole server process (all threads) from /proc/PID/stat, sampled
# by the loadgen exactly at the edges of the measured window. Every server gets a fresh process
# per scenario.
#
# Servers (skipped with a note in the table when their file does not exist yet):
#   raw TCP epoll      bench/peers/raw_epoll_echo.c   (loadgen `raw` mode: same frame bytes echoed)
#   wsembed C          examples/c/build/echo_server   (built by `cargo build --release && make -C examples/c`)
#   wsembed Python     bindings/python/examples/echo_server.py
#   wsembed Node       bindings/node/examples/echo_server.js
#   ws (Node)          bench/peers/ws_echo.js                  (npm ws, default options)
#   websockets (Py)    bench/peers/websockets_echo.py          (asyncio implementation)
#   tokio-tungstenite  bench/peers/tokio-tungstenite-echo      (default #[tokio::main] + config)
# All take `--port N` (0 = any) and `--broadcast`, and print `listening on ws://127.0.0.1:PORT`.
#
# Setup done here (idempotent): npm `ws` into bench/peers/node_modules, `websockets` into the venv
# bench/.venv, release builds of bench/loadgen and the tokio peer (target dir bench/target), the
# raw echo with cc, and (unless --no-build or WSEMBED_BUILD=0) wsembed itself:
# `cargo build --release` at the repo root + `make -C examples/c`. Raises `ulimit -n` to the hard limit.
#
# Knobs (environment):     default   --quick
#   DURATION               10        2         measured seconds per throughput scenario
#   WARMUP                 2         0.5       seconds before the measured window
#   ECHO_CONNS ECHO_DEPTH ECHO_SIZE    50 1 64
#   BCAST_CLIENTS BCAST_SENDERS BCAST_DEPTH BCAST_SIZE   100 10 2 64
#   IDLE_CONNS             1000,10000          checkpoints (one connection set, RSS read at each)
#   IDLE_SETTLE            2         0.5       seconds to let the server settle before reading RSS
#   REPEAT                 1                   echo/broadcast measurements per server (same process);
#                                              the table keeps the best: use 3 on a noisy machine
#   SERVER_CPU LOADGEN_CPU 1 0                 taskset CPUs (no pinning if taskset/2 CPUs absent)
#   PIN                    1                   0: no pinning at all (the unpinned figures)
#   ONLY                   (all)               comma list of server keys: raw,wsembed-c,wsembed-py,
#                                              wsembed-node,ws,websockets,tokio-tungstenite, and
#                                              `game` for the game section (e.g. --only raw,game)
#   GAME                   1                   0 (or --no-game) skips the game section
#   GROWTH_CONNS           100,1000,10000      growth table: the C echo_server --broadcast at each
#                                              client count (GROWTH=0 or --no-growth skips it; with
#                                              --only it runs when `growth` is listed)
#   GAME_CONNS GAME_ROOMS GAME_INPUT_HZ  1000 10 20
#   GAME_DURATION          10        3         measured seconds (server ticks x 60) of the game
#   PYTHON                 python3             interpreter used to create bench/.venv
#   BENCH_RESULTS          bench/results       output directory (latest.md, latest.jsonl, logs/)
set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
QUICK=0
WSEMBED_BUILD="${WSEMBED_BUILD:-1}"
ONLY="${ONLY:-}"

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) WSEMBED_BUILD=0 ;;
        --no-game) GAME=0 ;;
        --no-growth) GROWTH=0 ;;
        --only) shift; ONLY="${1:-}" ;;
        --only=*) ONLY="${1#--only=}" ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    DURATION="${DURATION:-2}"; WARMUP="${WARMUP:-0.5}"; IDLE_SETTLE="${IDLE_SETTLE:-0.5}"
    GAME_DURATION="${GAME_DURATION:-3}"
else
    DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-2}"; IDLE_SETTLE="${IDLE_SETTLE:-2}"
    GAME_DURATION="${GAME_DURATION:-10}"
fi
GROWTH="${GROWTH:-1}"; GROWTH_CONNS="${GROWTH_CONNS:-100,1000,10000}"
GAME="${GAME:-1}"; GAME_CONNS="${GAME_CONNS:-1000}"; GAME_ROOMS="${GAME_ROOMS:-10}"
GAME_INPUT_HZ="${GAME_INPUT_HZ:-20}"
REPEAT="${REPEAT:-1}"
ECHO_CONNS="${ECHO_CONNS:-50}"; ECHO_DEPTH="${ECHO_DEPTH:-1}"; ECHO_SIZE="${ECHO_SIZE:-64}"
BCAST_CLIENTS="${BCAST_CLIENTS:-100}"; BCAST_SENDERS="${BCAST_SENDERS:-10}"
BCAST_DEPTH="${BCAST_DEPTH:-2}"; BCAST_SIZE="${BCAST_SIZE:-64}"
IDLE_CONNS="${IDLE_CONNS:-1000,10000}"
SERVER_CPU="${SERVER_CPU:-1}"; LOADGEN_CPU="${LOADGEN_CPU:-0}"
PYTHON="${PYTHON:-python3}"

RESULTS="${BENCH_RESULTS:-$BENCH/results}"   # override to keep concurrent runs apart
mkdir -p "$RESULTS"
JSONL="$RESULTS/latest.jsonl"
LOGDIR="$RESULTS/logs"
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
: > "$JSONL"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ limits and pinning
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE="$(ulimit -n)"
NEED_FDS=$(( $(echo "$IDLE_CONNS" | tr ',' '\n' | sort -n | tail -1) + 100 ))
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt "$NEED_FDS" ]; then
    log "warning: ulimit -n is $NOFILE (< $NEED_FDS); idle checkpoints above it will fail"
fi

PIN_SERVER=(); PIN_LOADGEN=()
if [ "${PIN:-1}" = 0 ]; then
    PINNING="unpinned (PIN=0)"
elif command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c "$SERVER_CPU"); PIN_LOADGEN=(taskset -c "$LOADGEN_CPU")
    PINNING="server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU"
else
    PINNING="no CPU pinning (taskset or a second CPU missing)"
fi

# ------------------------------------------------------------------ setup
LOADAVG0="$(cut -d" " -f1 /proc/loadavg 2>/dev/null || echo ?)"
awk -v l="$LOADAVG0" 'BEGIN { exit !(l + 0 > 0.5) }' && log "warning: load average $LOADAVG0: other work on this machine will add noise"
export CARGO_TARGET_DIR="$BENCH/target"
log "building bench/loadgen and bench/peers/tokio-tungstenite-echo (release)"
cargo build --release --quiet --manifest-path "$BENCH/loadgen/Cargo.toml" || die "loadgen build failed"
LOADGEN="$BENCH/target/release/loadgen"
TOKIO_OK=1
cargo build --release --quiet --manifest-path "$BENCH/peers/tokio-tungstenite-echo/Cargo.toml" \
    || { log "warning: tokio-tungstenite-echo build failed"; TOKIO_OK=0; }

RAW_OK=1
mkdir -p "$BENCH/peers/build"
if [ ! -x "$BENCH/peers/build/raw_epoll_echo" ] || [ "$BENCH/peers/raw_epoll_echo.c" -nt "$BENCH/peers/build/raw_epoll_echo" ]; then
    log "compiling raw_epoll_echo"
    ${CC:-cc} -O2 -o "$BENCH/peers/build/raw_epoll_echo" "$BENCH/peers/raw_epoll_echo.c" \
        || { log "warning: raw_epoll_echo build failed"; RAW_OK=0; }
fi

NODE_OK=1
if ! command -v node >/dev/null 2>&1; then
    log "warning: node not found"; NODE_OK=0
elif [ ! -f "$BENCH/peers/node_modules/ws/package.json" ]; then
    log "installing npm ws into bench/peers/node_modules"
    (cd "$BENCH/peers" && npm install --no-audit --no-fund --silent) || { log "warning: npm install failed"; NODE_OK=0; }
fi

VENV="$BENCH/.venv"
PY_OK=1
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv bench/.venv"
    "$PYTHON" -m venv "$VENV" || { log "warning: venv creation failed"; PY_OK=0; }
fi
if [ "$PY_OK" = 1 ] && ! "$VENV/bin/python" -c 'import websockets.asyncio.server' 2>/dev/null; then
    log "installing websockets into bench/.venv"
    "$VENV/bin/pip" install --quiet 'websockets>=13' || { log "warning: pip install websockets failed"; PY_OK=0; }
fi
VPY="$VENV/bin/python"

WSEMBED_BUILD_NOTE=""
if [ "$WSEMBED_BUILD" = 1 ] && [ -f "$ROOT/Cargo.toml" ]; then
    log "building wsembed (cargo build --release; make -C examples/c)"
    if ! (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet && make -C examples/c --no-print-directory -s); then
        WSEMBED_BUILD_NOTE="wsembed build FAILED: wsembed rows use whatever binaries were already there"
        log "warning: $WSEMBED_BUILD_NOTE"
    fi
fi
# How the bindings find the engine.
[ -f "$ROOT/target/release/libwsembed.so" ] && export WSEMBED_LIBRARY="${WSEMBED_LIBRARY:-$ROOT/target/release/libwsembed.so}"
export PYTHONPATH="$ROOT/bindings/python:$ROOT/bindings/python/src${PYTHONPATH:+:$PYTHONPATH}"

# ------------------------------------------------------------------ servers
# key | table name | group (baseline|wsembed|peer) | file that must exist | command (word-split)
SERVERS=(
    "raw|raw TCP epoll (baseline)|baseline|$BENCH/peers/build/raw_epoll_echo|$BENCH/peers/build/raw_epoll_echo"
    "wsembed-c|wsembed (C echo_server)|wsembed|$ROOT/examples/c/build/echo_server|$ROOT/examples/c/build/echo_server"
    "wsembed-c-inline|wsembed (C, host-driven --inline)|wsembed|$ROOT/examples/c/build/echo_server|$ROOT/examples/c/build/echo_server --inline"
    "wsembed-c-threads2|wsembed (C, --threads 2)|wsembed|$ROOT/examples/c/build/echo_server|$ROOT/examples/c/build/echo_server --threads 2"
    "wsembed-py|wsembed (Python)|wsembed|$ROOT/bindings/python/examples/echo_server.py|$VPY $ROOT/bindings/python/examples/echo_server.py"
    "wsembed-node|wsembed (Node)|wsembed|$ROOT/bindings/node/examples/echo_server.js|node $ROOT/bindings/node/examples/echo_server.js"
    "ws|ws (Node)|peer|$BENCH/peers/ws_echo.js|node $BENCH/peers/ws_echo.js"
    "websockets|websockets (Python)|peer|$BENCH/peers/websockets_echo.py|$VPY $BENCH/peers/websockets_echo.py"
    "tokio-tungstenite|tokio-tungstenite|peer|$BENCH/target/release/tokio-tungstenite-echo|$BENCH/target/release/tokio-tungstenite-echo"
)

note() { # key name group message
    printf '{"mode":"skip","key":"%s","server":"%s","group":"%s","note":"%s"}\n' "$1" "$2" "$3" "$4" >> "$JSONL"
}

SERVER_PID=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

# start_server LOGNAME CMD... ; sets SERVER_PID and PORT, returns 1 on failure
start_server() {
    local logname="$1"; shift
    local out="$LOGDIR/$logname.out" err="$LOGDIR/$logname.err"
    "${PIN_SERVER[@]}" "$@" > "$out" 2> "$err" &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 200); do
        PORT="$(sed -n 's#.*listening on ws://[^:]*:\([0-9][0-9]*\).*#\1#p' "$out" | head -1)"
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "server did not start: $*"; tail -5 "$err" >&2
    stop_server
    return 1
}

# run_loadgen KEY NAME GROUP LOGNAME TIMEOUT ARGS... ; appends tagged JSON lines
run_loadgen() {
    local key="$1" name="$2" group="$3" logname="$4" tmo="$5"; shift 5
    local out="$LOGDIR/$logname.loadgen"
    timeout "$tmo" "${PIN_LOADGEN[@]}" "$LOADGEN" --port "$PORT" --server-pid "$SERVER_PID" "$@" \
        > "$out" 2> "$LOGDIR/$logname.loadgen.err"
    local rc=$?
    if ! grep -q '^{' "$out"; then
        printf '{"mode":"%s","error":"loadgen exit %s: %s"}\n' "$SCENARIO" "$rc" \
            "$(tail -1 "$LOGDIR/$logname.loadgen.err" | tr -d '"\\' | cut -c1-120)" > "$out"
    fi
    # a server that exited during the run gets a note with the last line of its stderr
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        local last st; last="$(grep -v '^\s*$' "$LOGDIR/${logname%-[0-9]*}.err" | tail -1 | tr -d '"\\' | cut -c1-160)"
        wait "$SERVER_PID" 2>/dev/null; st=$?
        [ "$st" -gt 128 ] && st="$st, signal $((st - 128)) $(kill -l $((st - 128)) 2>/dev/null)"
        printf '{"mode":"%s","error":"server process exited (status %s) during the run%s (bench/results/logs/%s.err)"}\n' \
            "$SCENARIO" "$st" "${last:+: $last}" "${logname%-[0-9]*}" >> "$out"
    fi
    # tag every result line with the server key, name and group
    sed "s#^{#{\"key\":\"$key\",\"server\":\"$name\",\"group\":\"$group\",#" "$out" | grep '^{' >> "$JSONL"
    sed "s#^#[$key] #" "$out" >&2
}

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

TPUT_TMO=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", d + w + 60 }')

for entry in "${SERVERS[@]}"; do
    IFS='|' read -r key name group file cmd <<< "$entry"
    want "$key" || continue
    if [ ! -e "$file" ]; then
        log "skip $name: ${file#$ROOT/} not found"
        note "$key" "$name" "$group" "skipped: ${file#$ROOT/} not found yet"
        continue
    fi
    case "$key" in
        raw) [ "$RAW_OK" = 1 ] || { note "$key" "$name" "$group" "skipped: build failed"; continue; } ;;
        ws|wsembed-node) [ "$NODE_OK" = 1 ] || { note "$key" "$name" "$group" "skipped: node/ws unavailable"; continue; } ;;
        websockets|wsembed-py) [ "$PY_OK" = 1 ] || { note "$key" "$name" "$group" "skipped: python venv unavailable"; continue; } ;;
        tokio-tungstenite) [ "$TOKIO_OK" = 1 ] || { note "$key" "$name" "$group" "skipped: build failed"; continue; } ;;
    esac
    read -r -a CMD <<< "$cmd"

    # echo (raw mode for the TCP baseline)
    SCENARIO=echo; mode=echo; [ "$key" = raw ] && mode=raw
    log "$name: echo ($ECHO_CONNS conns x depth $ECHO_DEPTH x $ECHO_SIZE B, ${DURATION}s)"
    if start_server "$key-echo" "${CMD[@]}" --port 0; then
        for rep in $(seq "$REPEAT"); do
            run_loadgen "$key" "$name" "$group" "$key-echo-$rep" "$TPUT_TMO" --mode "$mode" --label "$name" \
                --conns "$ECHO_CONNS" --depth "$ECHO_DEPTH" --size "$ECHO_SIZE" \
                --duration "$DURATION" --warmup "$WARMUP"
        done
        stop_server
    else
        printf '{"key":"%s","server":"%s","group":"%s","mode":"echo","error":"server did not start"}\n' "$key" "$name" "$group" >> "$JSONL"
    fi

    # broadcast (not meaningful for raw TCP)
    if [ "$key" != raw ]; then
        SCENARIO=broadcast
        log "$name: broadcast ($BCAST_CLIENTS clients, $BCAST_SENDERS senders, ${DURATION}s)"
        if start_server "$key-broadcast" "${CMD[@]}" --port 0 --broadcast; then
            for rep in $(seq "$REPEAT"); do
                run_loadgen "$key" "$name" "$group" "$key-broadcast-$rep" "$TPUT_TMO" --mode broadcast \
                    --label "$name" --conns "$BCAST_CLIENTS" --senders "$BCAST_SENDERS" --depth "$BCAST_DEPTH" \
                    --size "$BCAST_SIZE" --duration "$DURATION" --warmup "$WARMUP"
            done
            stop_server
        else
            printf '{"key":"%s","server":"%s","group":"%s","mode":"broadcast","error":"server did not start"}\n' "$key" "$name" "$group" >> "$JSONL"
        fi
    fi

    # idle RSS per connection
    SCENARIO=idle
    log "$name: idle RSS at $IDLE_CONNS connections"
    if start_server "$key-idle" "${CMD[@]}" --port 0; then
        run_loadgen "$key" "$name" "$group" "$key-idle" 300 --mode idle --label "$name" \
            --conns "$IDLE_CONNS" --settle "$IDLE_SETTLE" --hold 0.2 --timeout 240 \
            $([ "$key" = raw ] && echo --raw)
        stop_server
    else
        printf '{"key":"%s","server":"%s","group":"%s","mode":"idle","error":"server did not start"}\n' "$key" "$name" "$group" >> "$JSONL"
    fi
done

# ------------------------------------------------------------------ game loop
# game_server prints `ticks 300 p50_us .. p99_us .. max_us .. players ..` after every 300 ticks
# (5 s; line k covers ticks [300(k-1), 300k)) and the ticks since the last such line at exit.
# Neither --ticks nor the exit line alone matches a window measured after connect + warmup, so
# the loadgen counts its window in server ticks (from the snapshots): it starts at a 300-tick
# boundary, lasts GAME_DURATION*60 ticks, and keeps the load on up to the next boundary. The
# 300-tick lines for exactly those ticks are taken from the server's stdout after SIGTERM (the
# final partial line, printed at exit, is recorded in the JSON but not used).
if [ "$GAME" != 0 ] && { [ -z "$ONLY" ] || [[ ",$ONLY," == *",game,"* ]]; }; then
    SCENARIO=game
    GAME_BIN="$ROOT/examples/c/build/game_server"
    GNAME="wsembed (C game_server)"
    if [ ! -x "$GAME_BIN" ]; then
        log "skip game: ${GAME_BIN#$ROOT/} not found"
        printf '{"mode":"game_skip","note":"skipped: %s not found (make -C examples/c)"}\n' "${GAME_BIN#$ROOT/}" >> "$JSONL"
    else
        log "game: $GAME_CONNS clients in $GAME_ROOMS rooms, inputs at $GAME_INPUT_HZ Hz, ${GAME_DURATION}s"
        GAME_TMO=$(awk -v d="$GAME_DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", d + w + 90 }')
        if start_server game "$GAME_BIN" --port 0 --rooms "$GAME_ROOMS"; then
            run_loadgen game "$GNAME" wsembed game "$GAME_TMO" --mode game --label "$GNAME" \
                --conns "$GAME_CONNS" --rooms "$GAME_ROOMS" --input-hz "$GAME_INPUT_HZ" \
                --duration "$GAME_DURATION" --warmup "$WARMUP" --timeout $((GAME_TMO - 10))
            stop_server   # SIGTERM: game_server prints its final `ticks` line and exits
            "$PYTHON" "$BENCH/report.py" --game-server "$LOGDIR/game.out" "$LOGDIR/game.loadgen" \
                | sed 's#^{#{"key":"game","server":"'"$GNAME"'","group":"wsembed",#' >> "$JSONL"
        else
            printf '{"key":"game","mode":"game","error":"game_server did not start"}\n' >> "$JSONL"
        fi
    fi
fi

# ------------------------------------------------------------------ growth
# The same broadcast load against 100, 1,000 and 10,000 clients (one server process each): CPU
# per delivery should stay flat as deliveries grow, RSS per connection too.
if [ "$GROWTH" != 0 ] && { [ -z "$ONLY" ] || [[ ",$ONLY," == *",growth,"* ]]; }; then
    SCENARIO=growth
    GBIN="$ROOT/examples/c/build/echo_server"
    GNAME="wsembed (C)"
    for n in ${GROWTH_CONNS//,/ }; do
        log "growth: $n broadcast clients"
        if start_server "growth-$n" "$GBIN" --port 0 --broadcast; then
            printf '{"key":"growth","mode":"growth_base","clients":%s,"rss_kb":%s}\n' "$n" \
                "$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo null)" >> "$JSONL"
            run_loadgen growth "$GNAME" wsembed "growth-$n-lg" "$TPUT_TMO" --mode broadcast --label "$GNAME" \
                --conns "$n" --senders "$BCAST_SENDERS" --depth "$BCAST_DEPTH" --size "$BCAST_SIZE" \
                --duration "$DURATION" --warmup "$WARMUP"
            stop_server
        fi
    done
    # run_loadgen tagged them as broadcast rows of key "growth": give them their own mode
    sed -i 's#^{"key":"growth","server":"\([^"]*\)","group":"wsembed","mode":"broadcast"#{"key":"growth","server":"\1","group":"wsembed","mode":"growth"#' "$JSONL"
fi

# ------------------------------------------------------------------ table
HEADER="$([ "$REPEAT" -gt 1 ] && echo "best of $REPEAT; ")echo: ${ECHO_CONNS} conns x depth ${ECHO_DEPTH} x ${ECHO_SIZE} B; broadcast: ${BCAST_CLIENTS} clients, ${BCAST_SENDERS} senders x depth ${BCAST_DEPTH} x ${BCAST_SIZE} B; ${DURATION}s measured after ${WARMUP}s warmup; idle: ${IDLE_CONNS} conns; $([ "$GAME" != 0 ] && echo "game: ${GAME_CONNS} clients in ${GAME_ROOMS} rooms, ${GAME_DURATION}s; ")${PINNING}; $(nproc) CPUs, Linux $(uname -r), load avg at start $LOADAVG0, $(date -u +%Y-%m-%dT%H:%MZ)"
[ -n "$WSEMBED_BUILD_NOTE" ] && HEADER="$HEADER. NOTE: $WSEMBED_BUILD_NOTE"
"$PYTHON" "$BENCH/report.py" "$JSONL" "$HEADER" "$IDLE_CONNS" | tee "$RESULTS/latest.md"

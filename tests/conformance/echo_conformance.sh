#!/usr/bin/env bash
# Starts a WebSocket echo server, runs the kosoku conformance run (Autobahn cases 1.* to 10.*)
# against it, stops it, and exits with the run's status.
#
#   tests/conformance/echo_conformance.sh ECHO_SERVER_BINARY [args...]
#
# The server is started as `ECHO_SERVER_BINARY --port 0 [args...]` and must print the line
# `listening on ws://HOST:PORT` on stdout (flushed) within $ECHO_START_TIMEOUT seconds (default
# 20). Its output goes to $CONFORMANCE_OUT/server.log; the report to $CONFORMANCE_OUT (default
# target/conformance/kosoku). A server that dies during the run fails it, whatever the cases say.
# Other knobs: see run_kosoku.sh (KOSOKU_CASES, KOSOKU_PARALLELISM, KOSOKU_TIMEOUT, WSEMBED_VENV).
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,11s/^# \{0,1\}//p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
server=$1; shift
[ -x "$server" ] || { echo "echo_conformance: $server: not an executable (build it first)" >&2; exit 2; }
outdir=${CONFORMANCE_OUT:-$root/target/conformance/kosoku}
deadline=${ECHO_START_TIMEOUT:-20}
mkdir -p "$outdir"
log=$outdir/server.log
: > "$log"

# in a session (and process group) of its own, so that stopping it also stops its children
# (a wrapper script, valgrind, ...)
setsid "$server" --port 0 "$@" > "$log" 2>&1 < /dev/null &
pid=$!
stop_server() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "echo_conformance: server ignored SIGTERM for 5 s; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  local st=0
  wait "$pid" 2>/dev/null || st=$?
  kill -KILL -- "-$pid" 2>/dev/null || true    # leftovers of its process group
  return "$st"
}
trap 'stop_server >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

url=
for _ in $(seq $(( deadline * 10 ))); do
  url=$(sed -n 's/.*listening on \(wss\{0,1\}:\/\/[^[:space:]]*\).*/\1/p' "$log" | head -n1)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  if kill -0 "$pid" 2>/dev/null; then
    echo "echo_conformance: FAIL: no 'listening on ws://...' line from $server within ${deadline} s" >&2
  else
    wait "$pid" && rc=0 || rc=$?
    echo "echo_conformance: FAIL: $server exited (status $rc) before listening" >&2
  fi
  echo "---- $log ----" >&2; tail -n 40 "$log" >&2
  exit 1
fi
echo "echo_conformance: $server (pid $pid) listening on $url"

set +e
"$here/run_kosoku.sh" "$url" "$outdir"
rc=$?
set -e

if ! kill -0 "$pid" 2>/dev/null; then
  wait "$pid" && src=0 || src=$?
  echo "echo_conformance: FAIL: the server died during the run (exit status $src)" >&2
  echo "---- $log (last 40 lines) ----" >&2; tail -n 40 "$log" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
  trap - EXIT
  [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
else
  stop_server && src=0 || src=$?
  trap - EXIT
  echo "echo_conformance: server stopped (exit status $src)"
fi
[ "$rc" -eq 0 ] || { echo "---- $log (last 20 lines) ----"; tail -n 20 "$log"; }
exit "$rc"

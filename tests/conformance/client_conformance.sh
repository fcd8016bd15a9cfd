#!/usr/bin/env bash
# The Autobahn|Testsuite for a WebSocket *client*: starts kosoku's fuzzingserver on a free
# loopback port, runs CLIENT BASE_URL AGENT (the standard driver: getCaseCount, every
# runCase echoed, updateReports), and judges the report like run_kosoku.sh does.
#
#   tests/conformance/client_conformance.sh CLIENT_BINARY
#
# Cases: KOSOKU_CASES (comma-separated ids/globs), default 1.*-10.* (301 cases, about a minute).
# Report: $CONFORMANCE_OUT (default target/conformance/kosoku-client). kosoku comes from the
# same venv as run_kosoku.sh (WSEMBED_VENV).
set -euo pipefail
[ $# -eq 1 ] || { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
client=$1
[ -x "$client" ] || { echo "client_conformance: $client: not an executable (build it first)" >&2; exit 2; }
outdir=${CONFORMANCE_OUT:-$root/target/conformance/kosoku-client}
venv=${WSEMBED_VENV:-$HOME/.cache/wsembed-venv}
kosoku=${KOSOKU:-$venv/bin/kosoku}
if [ ! -x "$kosoku" ]; then
  # run_kosoku.sh makes the venv; a server run against nothing only installs it
  "$here/run_kosoku.sh" --help >/dev/null 2>&1 || true
  "${PYTHON:-python3}" -m venv "$venv" 2>/dev/null || true
  "$venv/bin/python" -m pip install -q "kosoku==${KOSOKU_VERSION:-0.1.0}"
fi
rm -rf "$outdir"; mkdir -p "$outdir"
selection=()
if [ -n "${KOSOKU_CASES:-}" ]; then
  IFS=, read -r -a pats <<<"$KOSOKU_CASES"
  for p in "${pats[@]}"; do selection+=(-i "$p"); done
  expect=0
else
  selection=(-x '12.*' -x '13.*')
  expect=301
fi
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid "$kosoku" -m fuzzingserver "127.0.0.1:$port" "${selection[@]}" -o "$outdir" > "$outdir/kosoku.log" 2>&1 &
pid=$!
trap 'kill -TERM -- "-$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening" "$outdir/kosoku.log" 2>/dev/null && break; sleep 0.1; done
echo "client_conformance: kosoku fuzzingserver on ws://127.0.0.1:$port; running $client"
start=$(date +%s)
timeout --kill-after=10 "${KOSOKU_TIMEOUT:-600}" "$client" "ws://127.0.0.1:$port" wsembed
# kosoku writes the report when the client asks for updateReports; give it a moment
for _ in $(seq 50); do [ -f "$outdir/index.json" ] && break; sleep 0.1; done
sleep 0.5
echo "client_conformance: client finished after $(( $(date +%s) - start )) s"
sed 's/^/  kosoku| /' "$outdir/kosoku.log" | tail -n 5
exec "$venv/bin/python" "$here/verdict.py" "$outdir" "$expect"

#!/usr/bin/env bash
# Runs the Autobahn|Testsuite cases 1.* to 10.* (301 cases; there is no group 8 and 11 does not
# exist) against a WebSocket echo server that is already listening at URL, with kosoku (PyPI: a
# Python 3 / Rust runner of the Autobahn case files), then prints a summary.
#
#   tests/conformance/run_kosoku.sh URL [OUTDIR]
#
#   URL     e.g. ws://127.0.0.1:9001 (the server must echo text as text, binary as binary, accept
#           16 MiB messages and messages of 65,536 fragments)
#   OUTDIR  report directory (default: target/conformance/kosoku): index.json (per case
#           "behavior" and "behaviorClose"), index.html, and a .json/.html page per case with the
#           frames exchanged. Old reports there are removed first.
#
# Exit status: 0 when no case failed: every case's behavior and behaviorClose is OK, NON-STRICT
# or INFORMATIONAL (UNIMPLEMENTED is accepted only for 12.*/13.*, permessage-deflate, which this
# run leaves out unless KOSOKU_CASES selects them); 1 when a case failed or the run did not
# finish; 2 on a usage or setup error.
#
# Where kosoku comes from: $KOSOKU if set (path to a kosoku executable you installed yourself);
# otherwise a dedicated virtualenv at ${WSEMBED_VENV:-$HOME/.cache/wsembed-venv}, created with
# ${PYTHON:-python3} (>= 3.10) and given kosoku==$KOSOKU_VERSION. The venv is reused across runs
# and recreated if broken; the user's active environment is never modified.
#
# Environment knobs:
#   KOSOKU_VERSION      pinned kosoku version (default 0.1.0: the verdicts depend on it)
#   KOSOKU_CASES        comma-separated case ids/globs instead of 1.*-10.*, e.g. '9.*,7.1.5'
#   KOSOKU_PARALLELISM  cases run at once (default 1: deterministic, about 15 s in all)
#   KOSOKU_TIMEOUT      seconds before the whole run is abandoned (default 600; a server that
#                       hangs makes each group-9 case wait 100 s)
set -euo pipefail

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case $1 in -h|--help) usage ;; esac
url=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
outdir=${2:-$root/target/conformance/kosoku}
version=${KOSOKU_VERSION:-0.1.0}
parallelism=${KOSOKU_PARALLELISM:-1}
run_timeout=${KOSOKU_TIMEOUT:-600}
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- find or install kosoku ------------------------------------------------------------------
if [ -n "${KOSOKU:-}" ]; then
  kosoku=$KOSOKU
  command -v "$kosoku" >/dev/null 2>&1 || { echo "run_kosoku: KOSOKU=$kosoku is not executable" >&2; exit 2; }
  # its own interpreter, for the summary below (any python3 does for that)
  py=python3
else
  venv=${WSEMBED_VENV:-$HOME/.cache/wsembed-venv}
  if ! "$venv/bin/python" -c 'import sys; assert sys.version_info >= (3, 10)' >/dev/null 2>&1; then
    echo "run_kosoku: creating virtualenv $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv" || {
      echo "run_kosoku: '${PYTHON:-python3} -m venv' failed (Debian: apt-get install python3-venv)" >&2
      exit 2; }
  fi
  if ! "$venv/bin/python" - "$version" >/dev/null 2>&1 <<'PY'
import sys, importlib.metadata as m
sys.exit(m.version("kosoku") != sys.argv[1])
PY
  then
    echo "run_kosoku: installing kosoku==$version into $venv"
    "$venv/bin/python" -m pip install -q "kosoku==$version" || {
      echo "run_kosoku: pip install kosoku==$version failed" >&2; exit 2; }
  fi
  kosoku=$venv/bin/kosoku
  py=$venv/bin/python
fi

# ---- run ---------------------------------------------------------------------------------------
selection=()
if [ -n "${KOSOKU_CASES:-}" ]; then
  IFS=, read -r -a pats <<<"$KOSOKU_CASES"
  for p in "${pats[@]}"; do selection+=(-i "$p"); done
  expect=0
else
  # 1.* to 10.*: kosoku errors out on a pattern that matches nothing (there is no 8.*), so
  # exclude the compression groups instead of listing the others
  selection=(-x '12.*' -x '13.*')
  expect=301
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
# kosoku adds files and rewrites index.json; leave nothing from an earlier run behind
find "$outdir" -maxdepth 1 -type f \( -name '*_case_*.json' -o -name '*_case_*.html' \
  -o -name 'index.json' -o -name 'index.html' -o -name 'kosoku.log' \) -delete

echo "run_kosoku: $kosoku $url ${selection[*]} -p $parallelism -o $outdir"
start=$(date +%s)
set +e
# kosoku exits 1 when any case is not OK/NON-STRICT/INFORMATIONAL (UNIMPLEMENTED included), and
# prints those cases; the verdict below is taken from index.json instead.
timeout --kill-after=10 "$run_timeout" "$kosoku" -m fuzzingclient "$url" "${selection[@]}" \
  -p "$parallelism" -o "$outdir" 2>&1 | tee "$outdir/kosoku.log" | sed 's/^/  kosoku| /'
krc=${PIPESTATUS[0]}
set -e
echo "run_kosoku: kosoku exited $krc after $(( $(date +%s) - start )) s"
if [ "$krc" = 124 ] || [ "$krc" = 137 ]; then
  echo "run_kosoku: FAIL: kosoku did not finish within ${run_timeout} s (a case hanging?); no report" >&2
  exit 1
fi

# ---- summary and verdict -------------------------------------------------------------------------
exec "$py" "$here/verdict.py" "$outdir" "$expect"

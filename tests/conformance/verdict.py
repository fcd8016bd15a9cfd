"""Verdict of a kosoku (Autobahn) report: every case OK, NON-STRICT or INFORMATIONAL
(UNIMPLEMENTED accepted only for 12.*/13.*, permessage-deflate). Used by run_kosoku.sh
(server side) and client_conformance.sh (client side).

    python3 verdict.py OUTDIR EXPECTED_CASES     (0: any number)
"""
import collections, json, os, sys

outdir, expect = sys.argv[1], int(sys.argv[2])
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
UNIMPL_OK = ("12.", "13.")          # permessage-deflate may be UNIMPLEMENTED

def key(c):
    return [int(p) if p.isdigit() else p for p in c.split(".")]

def failed(case, r):
    beh, close = r.get("behavior"), r.get("behaviorClose")
    if beh == "UNIMPLEMENTED":
        return not case.startswith(UNIMPL_OK)
    return beh not in ACCEPTED or close not in ACCEPTED   # FAILED, ERROR, WRONG CODE, UNCLEAN...

path = os.path.join(outdir, "index.json")
try:
    with open(path) as f:
        index = json.load(f)
except (OSError, ValueError) as e:
    print(f"run_kosoku: FAIL: no report ({path}: {e})")
    sys.exit(1)

cases = {}
for agent, per_agent in index.items():
    for c, r in per_agent.items():
        cases[c] = dict(r, agent=agent)
beh = collections.Counter(r.get("behavior") for r in cases.values())
close = collections.Counter(r.get("behaviorClose") for r in cases.values())
bad = sorted((c for c, r in cases.items() if failed(c, r)), key=key)

print(f"kosoku summary: {len(cases)} cases, agent(s): {', '.join(sorted(index))}")
print("  behavior:      " + ", ".join(f"{k}={v}" for k, v in sorted(beh.items())))
print("  behaviorClose: " + ", ".join(f"{k}={v}" for k, v in sorted(close.items())))
for label in ("NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"):
    ids = sorted((c for c, r in cases.items() if r.get("behavior") == label), key=key)
    if ids:
        shown = " ".join(ids[:30]) + (" ..." if len(ids) > 30 else "")
        print(f"  {label} ({len(ids)}): {shown}")
slow = sorted(cases.items(), key=lambda kv: -(kv[1].get("duration") or 0))[:3]
print("  slowest: " + ", ".join(f"{c}={r.get('duration', 0)}ms" for c, r in slow))
problems = 0
if bad:
    print(f"  FAILED ({len(bad)}):")
    for c in bad:
        r = cases[c]
        print(f"    {c}: behavior={r.get('behavior')} behaviorClose={r.get('behaviorClose')} "
              f"remoteCloseCode={r.get('remoteCloseCode')} -> {os.path.join(outdir, r.get('reportfile', '?'))}")
    problems += len(bad)
if expect and len(cases) != expect:
    print(f"  FAIL: expected {expect} cases in the report, found {len(cases)}")
    problems += 1
if not cases:
    print("  FAIL: the report holds no case")
    problems += 1
print(f"  report: {os.path.join(outdir, 'index.html')}")
print(f"kosoku: {'FAIL' if problems else 'PASS'}: {len(bad)} failing case(s) of {len(cases)}")
sys.exit(1 if problems else 0)

#!/usr/bin/env python3
"""Builds the benchmark's one markdown table from the loadgen's JSON lines.

    report.py RESULTS.jsonl "header text" IDLE_CONNS(e.g. 1000,10000)

Rows keep the order of first appearance. Ratio columns: against the raw TCP epoll echo (the
physical baseline) and against the best peer (ws, websockets, tokio-tungstenite) for that metric:
throughput ratios are value / reference (>1 = more), cost ratios are value / reference (<1 = cheaper).
"""
import json
import math
import sys


def load(path):
    rows = {}
    order = []
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            r = json.loads(line)
        except ValueError:
            continue
        key = r.get("key") or r.get("server") or "?"
        if key not in rows:
            rows[key] = {"name": r.get("server", key), "group": r.get("group", "peer"), "notes": []}
            order.append(key)
        row = rows[key]
        mode = r.get("mode")
        if mode == "skip":
            row["skip"] = r.get("note", "skipped")
            continue
        if r.get("error"):
            row["notes"].append(f"{mode}: {r['error']}")
        # with REPEAT > 1 keep the best measurement of each scenario
        if mode in ("echo", "raw") and r.get("msgs"):
            if r["msgs_per_s"] > row.get("echo", {}).get("msgs_per_s", -1):
                row["echo"] = r
        elif mode == "broadcast" and r.get("deliveries"):
            if r["deliveries_per_s"] > row.get("bcast", {}).get("deliveries_per_s", -1):
                row["bcast"] = r
        elif mode == "idle" and r.get("open"):
            row.setdefault("idle", {})[r["target"]] = r
        if r.get("dead"):
            row["notes"].append(f"{mode}: {r['dead']} connections died during the run")
        if r.get("stalled_conns"):
            row["notes"].append(f"{mode}: {r['stalled_conns']} sending connections completed no message in the "
                                f"measured window (per-connection min/max {r.get('conn_msgs_min')}/{r.get('conn_msgs_max')})")
        lg, scpu, dur = r.get("loadgen_cpu_pct"), r.get("server_cpu_s"), r.get("duration_s")
        if num(lg) and lg > 90 and num(scpu) and num(dur) and dur > 0 and scpu / dur < 0.9:
            row["notes"].append(f"{mode}: loadgen at {lg:.0f}% CPU but server at {100 * scpu / dur:.0f}%: "
                                "the loadgen may be the bottleneck")
    return rows, order


def num(x):
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def f_int(x):
    return f"{x:,.0f}" if num(x) else "–"


def f_us(x):
    if not num(x):
        return "–"
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def f_cpu(x):
    if not num(x):
        return "–"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def f_kib(b):
    if not num(b):
        return "–"
    return f"{b / 1024:.1f} KiB"


def f_ratio(a, b):
    if not (num(a) and num(b)) or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def main():
    path, header = sys.argv[1], sys.argv[2]
    idle_targets = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "1000,10000").split(",")]
    rows, order = load(path)

    def metric(row, m):
        e, b = row.get("echo", {}), row.get("bcast", {})
        idle = row.get("idle", {})
        return {
            "msgs": e.get("msgs_per_s"),
            "p50": e.get("p50_us"),
            "p99": e.get("p99_us"),
            "cpu": e.get("server_cpu_us_per_msg"),
            "deliv": b.get("deliveries_per_s"),
            "dcpu": b.get("server_cpu_us_per_delivery"),
            **{f"rss{t}": idle.get(t, {}).get("rss_per_conn_bytes") for t in idle_targets},
        }[m]

    higher_better = {"msgs", "deliv"}
    metrics = ["msgs", "p50", "p99", "cpu", "deliv", "dcpu"] + [f"rss{t}" for t in idle_targets]
    peers = [k for k in order if rows[k]["group"] == "peer" and "skip" not in rows[k]]
    best = {}
    for m in metrics:
        vals = [(metric(rows[k], m), k) for k in peers if num(metric(rows[k], m))]
        if m.startswith("rss"):
            vals = [(v, k) for v, k in vals if v > 0]
        if vals:
            best[m] = (max if m in higher_better else min)(vals)
    raw = next((rows[k] for k in order if rows[k]["group"] == "baseline" and "skip" not in rows[k]), None)

    def k_label(t):
        return f"{t // 1000}k" if t % 1000 == 0 else str(t)

    cols = (["server", "msgs/s", "p50 µs", "p99 µs", "CPU µs/msg", "bcast deliveries/s", "CPU µs/delivery"]
            + [f"idle RSS/conn @{k_label(t)}" for t in idle_targets]
            + ["msgs/s ÷ raw", "CPU/msg ÷ raw", "msgs/s ÷ best peer", "CPU/msg ÷ best peer",
               "deliv/s ÷ best peer", "CPU/deliv ÷ best peer", f"RSS@{k_label(idle_targets[-1])} ÷ best peer"])
    out = [f"**wsembed benchmark** — {header}", ""]
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
    notes = []
    for k in order:
        row = rows[k]
        name = row["name"] + (" *(peer)*" if row["group"] == "peer" else "")
        if "skip" in row:
            out.append(f"| {name} | {row['skip']} |" + " |" * (len(cols) - 2))
            continue
        bv = lambda m: best.get(m, (None,))[0]
        rawv = (lambda m: metric(raw, m)) if raw else (lambda m: None)
        last = f"rss{idle_targets[-1]}"
        cells = [
            name,
            f_int(metric(row, "msgs")),
            f_us(metric(row, "p50")),
            f_us(metric(row, "p99")),
            f_cpu(metric(row, "cpu")),
            "n/a" if row["group"] == "baseline" else f_int(metric(row, "deliv")),
            "n/a" if row["group"] == "baseline" else f_cpu(metric(row, "dcpu")),
            *[f_kib(metric(row, f"rss{t}")) for t in idle_targets],
            f_ratio(metric(row, "msgs"), rawv("msgs")),
            f_ratio(metric(row, "cpu"), rawv("cpu")),
            f_ratio(metric(row, "msgs"), bv("msgs")),
            f_ratio(metric(row, "cpu"), bv("cpu")),
            "n/a" if row["group"] == "baseline" else f_ratio(metric(row, "deliv"), bv("deliv")),
            "n/a" if row["group"] == "baseline" else f_ratio(metric(row, "dcpu"), bv("dcpu")),
            f_ratio(metric(row, last), bv(last)) if (num(metric(row, last)) and metric(row, last) > 0) else "–",
        ]
        out.append("| " + " | ".join(cells) + " |")
        for n in dict.fromkeys(row["notes"]):
            notes.append(f"- {row['name']}: {n}")
        for t in idle_targets:
            i = row.get("idle", {}).get(t)
            if i and i.get("open") != t:
                notes.append(f"- {row['name']}: idle @{t}: only {i.get('open')} connections opened ({i.get('failed')} failed)")
    out.append("")
    names = {"msgs": "msgs/s", "cpu": "CPU/msg", "deliv": "deliveries/s", "dcpu": "CPU/delivery",
             f"rss{idle_targets[-1]}": f"RSS/conn @{k_label(idle_targets[-1])}"}
    bp = [f"{names[m]}: {rows[best[m][1]]['name']}" for m in names if m in best]
    if bp:
        out.append("Best peer per metric — " + "; ".join(bp) + ".")
    out.append("Server CPU = utime+stime of the whole server process over the measured window. "
               "Ratios are value ÷ reference: above 1 is more throughput or more cost. "
               "The raw baseline echoes bytes over plain TCP (no WebSocket parsing).")
    if notes:
        out.append("")
        out.append("Notes:")
        out.extend(notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the benchmark's one markdown table from the loadgen's JSON lines.

    report.py RESULTS.jsonl "header text" IDLE_CONNS(e.g. 1000,10000)
    report.py --game-server GAME_SERVER_STDOUT LOADGEN_STDOUT   (prints one "game_server" JSON line)

A second table follows the main one when RESULTS.jsonl holds the game scenario (mode "game":
the loadgen's line; mode "game_server": the tick percentiles run.sh parsed from game_server's
stdout with --game-server).

Rows keep the order of first appearance. Ratio columns: against the raw TCP epoll echo (the
physical baseline) and against the best peer (ws, websockets, tokio-tungstenite) for that metric:
throughput ratios are value / reference (>1 = more), cost ratios are value / reference (<1 = cheaper).
"""
import json
import math
import re
import sys

GAME_MODES = ("game", "game_server", "game_skip", "growth", "growth_base")
TOTAL_LINE = re.compile(r"^total ticks (\d+) p50_us (\d+) p99_us (\d+) max_us (\d+) players (\d+)\s*$")
TICK_LINE = re.compile(r"^ticks (\d+) p50_us (\d+) p99_us (\d+) max_us (\d+) players (\d+)\s*$")


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
        if r.get("mode") in GAME_MODES:
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


def game_server(server_out, loadgen_out):
    """game_server prints `ticks 300 ...` after each 300 ticks (line k covers ticks
    [300(k-1), 300k)) and a partial `ticks n<300 ...` line at exit. Keep the 300-tick lines that
    lie inside [tick_start, hold_until_tick) of the loadgen's window: they cover the measured
    window exactly when it is a multiple of 300 ticks, else the window plus the tail up to the
    next boundary, during which the loadgen kept the same load running."""
    out = {"mode": "game_server"}
    lg = None
    for line in open(loadgen_out):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("mode") == "game" and r.get("tick_start") is not None:
            lg = r
    full, last = [], None
    for line in open(server_out):
        summary = TOTAL_LINE.match(line.strip())
        if summary:  # the whole-run summary game_server prints at exit
            out["exit_line"] = dict(zip(("ticks", "p50_us", "p99_us", "max_us", "players"), map(int, summary.groups())))
            continue
        m = TICK_LINE.match(line.strip())
        if not m:
            continue
        t = dict(zip(("ticks", "p50_us", "p99_us", "max_us", "players"), map(int, m.groups())))
        last = t
        if t["ticks"] == 300:
            full.append(t)
    if out.get("exit_line") is None:
        out["exit_line"] = last if (last is not None and last["ticks"] < 300) else None
    if lg is None:
        out["error"] = "no loadgen game result: no tick window to select"
        print(json.dumps(out))
        return
    lo, hi = lg["tick_start"], lg["hold_until_tick"]
    sel = [(k, t) for k, t in enumerate(full) if 300 * k >= lo and 300 * (k + 1) <= hi]
    if not sel or len(sel) != (hi - lo) // 300:
        out["error"] = (f"game_server printed {len(full)} full 300-tick lines; ticks [{lo}, {hi}) "
                        f"need lines {lo // 300 + 1}..{hi // 300}")
    if sel:
        w = [t for _, t in sel]
        out.update({
            "tick_first": 300 * sel[0][0], "tick_last": 300 * (sel[-1][0] + 1) - 1, "windows": len(w),
            # exact for one window; over several: mean of the p50s, worst p99, max of max
            "tick_p50_us": sum(t["p50_us"] for t in w) / len(w),
            "tick_p99_us": max(t["p99_us"] for t in w),
            "tick_max_us": max(t["max_us"] for t in w),
            "players": min(t["players"] for t in w),
        })
    print(json.dumps(out))


def game_table(path):
    lg = srv = skip = None
    errors = []
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        mode = r.get("mode")
        if mode == "game_skip":
            skip = r.get("note", "skipped")
        elif mode == "game":
            if r.get("tick_start") is not None:
                lg = r
            if r.get("error"):
                errors.append(f"loadgen: {r['error']}")
        elif mode == "game_server":
            srv = r
            if r.get("error"):
                errors.append(f"game_server log: {r['error']}")
    if not (lg or srv or skip or errors):
        return []
    out = ["", "**game loop** — examples/c/game_server (60 Hz, one binary snapshot per room per tick), "
           "clients send 8-byte inputs"]
    if lg:
        out[-1] += f" at {lg.get('input_hz', 0):g} Hz; measured ticks [{lg['tick_start']}, {lg['tick_end']})"
    out += ["", "| clients | rooms | tick p50 µs | tick p99 µs | tick max µs | delivery p50 µs | delivery p99 µs "
            "| delivery max µs | snapshots/s received | expected | server CPU % | loadgen CPU % |",
            "|" + "|".join(["---:"] * 12) + "|"]
    if skip and not lg:
        out.append(f"| {skip} |" + " |" * 11)
    else:
        lg, srv = lg or {}, srv or {}
        pc = lambda x: f"{x:.0f}%" if num(x) else "–"
        out.append("| " + " | ".join([
            f_int(lg.get("conns")), f_int(lg.get("rooms")),
            f_us(srv.get("tick_p50_us")), f_us(srv.get("tick_p99_us")), f_us(srv.get("tick_max_us")),
            f_us(lg.get("p50_us")), f_us(lg.get("p99_us")), f_us(lg.get("max_us")),
            f_int(lg.get("snapshots_per_s")), f_int(lg.get("expected_per_s")),
            pc(lg.get("server_cpu_pct")), pc(lg.get("loadgen_cpu_pct"))]) + " |")
    out.append("")
    out.append("Tick µs: game_server's own tick duration (drain input, simulate, publish), from its "
               "`ticks 300 ...` lines for the 300-tick windows covering the measured ticks"
               + (f" (ticks {srv['tick_first']}–{srv['tick_last']}, {srv['windows']} window(s); over several: "
                  "mean p50, worst p99, max)" if srv.get("tick_first") is not None else "")
               + ". Delivery µs: loadgen CLOCK_REALTIME at read() − the snapshot's server time. "
               "Expected = 60 × clients. Server CPU % is of one core, over the measured window.")
    notes = list(errors)
    if lg:
        if lg.get("snapshots") is not None and lg.get("expected") and lg["snapshots"] < lg["expected"]:
            notes.append(f"{lg['expected'] - lg['snapshots']:,} of {lg['expected']:,} snapshots of the measured ticks "
                         f"not received ({lg.get('missed', 0):,} were gaps in a client's tick sequence)")
        if lg.get("ticks_seen") is not None and lg["ticks_seen"] < lg["tick_end"] - lg["tick_start"]:
            notes.append(f"only {lg['ticks_seen']} of {lg['tick_end'] - lg['tick_start']} ticks reached any client")
        if lg.get("count_mismatch"):
            notes.append(f"{lg['count_mismatch']:,} snapshots listed a player count other than the room's open clients")
        if lg.get("negative_latency"):
            notes.append(f"{lg['negative_latency']:,} snapshots arrived before their server timestamp (clock?)")
        if lg.get("dead"):
            notes.append(f"{lg['dead']} client connections died")
        if num(lg.get("loadgen_cpu_pct")) and lg["loadgen_cpu_pct"] > 90:
            notes.append(f"loadgen at {lg['loadgen_cpu_pct']:.0f}% CPU: delivery latency includes its queueing")
    if srv and srv.get("exit_line") is None and not skip:
        notes.append("game_server printed no `total ticks` summary at exit (killed?)")
    if notes:
        out += ["", "Notes:"] + [f"- game: {n}" for n in dict.fromkeys(notes)]
    return out


def growth_table(path):
    """The growth scenario: one `--broadcast` server per client count (mode "growth": the
    loadgen's broadcast line; "growth_base": the server's RSS before any connection)."""
    runs, base = [], {}
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("mode") == "growth_base":
            base[(r.get("key"), r.get("clients"))] = r.get("rss_kb")
        elif r.get("mode") == "growth":
            runs.append(r)
    if not runs:
        return []
    out = ["", f"**growth** — {runs[0].get('server', '?')}: broadcast to N clients ({runs[0].get('senders')} senders x "
           f"depth {runs[0].get('depth')} x {runs[0].get('size')} B); cost per delivery should stay flat, "
           "and RSS per connection too", "",
           "| clients | deliveries/s | CPU µs/delivery | ÷ first row | RSS/conn (open, under load) | p50 µs | p99 µs | loadgen CPU % |",
           "|" + "|".join(["---:"] * 8) + "|"]
    first = None
    notes = []
    for r in sorted(runs, key=lambda r: r.get("clients") or 0):
        if r.get("error") or not r.get("deliveries"):
            out.append(f"| {f_int(r.get('clients'))} | – | – | – | – | – | – | – |")
            notes.append(f"- growth {r.get('clients')}: {r.get('error') or 'no delivery'}")
            continue
        cpu = r.get("server_cpu_us_per_delivery")
        first = first if first is not None else cpu
        b, rss = base.get((r.get("key"), r.get("clients"))), r.get("server_rss_kb")
        per_conn = f_kib((rss - b) * 1024 / r["clients"]) if num(b) and num(rss) and r.get("clients") else "–"
        pc = r.get("loadgen_cpu_pct")
        out.append("| " + " | ".join([
            f_int(r.get("clients")), f_int(r.get("deliveries_per_s")), f_cpu(cpu), f_ratio(cpu, first), per_conn,
            f_us(r.get("p50_us")), f_us(r.get("p99_us")), f"{pc:.0f}%" if num(pc) else "–"]) + " |")
        if num(pc) and pc > 90:
            notes.append(f"- growth {r['clients']}: loadgen at {pc:.0f}% CPU (it reads every client): "
                         "latency includes its queueing")
    out.append("")
    out.append("p50/p99: send to receipt at the designated non-sending client. RSS/conn: server VmRSS at the end "
               "of the measured window minus before the first connection, ÷ clients (includes send queues in use).")
    if notes:
        out += ["", "Notes:"] + notes
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--game-server":
        game_server(sys.argv[2], sys.argv[3])
        return
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
    game = game_table(path)
    if not order and game:  # e.g. --only game: no main table
        out = [f"**wsembed benchmark** — {header}"]
    out.extend(game)
    out.extend(growth_table(path))
    print("\n".join(out))


if __name__ == "__main__":
    main()

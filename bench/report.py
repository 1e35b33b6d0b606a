#!/usr/bin/env python3
"""Render bench/results/latest.json (written by bench/run.sh) into latest.md
and one PNG chart per scenario (gnuplot).  usage: report.py latest.json OUTDIR"""
import json, os, shutil, statistics, subprocess, sys

src, outdir = sys.argv[1], sys.argv[2]
data = json.load(open(src))
runs = data["runs"]
S = data["settings"]
proxies = S["proxies"]
# "candidate" is an experiment build of snisplice (CANDIDATE=...), not a peer.
peers = [p for p in proxies if p not in ("direct", "snisplice", "candidate")]
GIB = 1024 ** 3

SCEN = {
    "cps_c1": "Connections/s, Chromium hello (1932 B), concurrency 1, 1 KiB reply",
    "cps_c50": "Connections/s, Chromium hello, concurrency 50, 1 KiB reply",
    "cps_c500": "Connections/s, Chromium hello, concurrency 500, 1 KiB reply",
    "cps_curl_c50": "Connections/s, curl/OpenSSL hello (517 B), concurrency 50, 1 KiB reply",
    "latency": "Latency, open loop %s conn/s, Chromium hello, 1 KiB reply (connect to end of reply)" % S["latency_rate"],
    "bulk_down": "Bulk download, 2 connections x %s each" % S["bulk_size"],
    "bulk_up": "Bulk upload, 2 connections x %s each (verified by the backend)" % S["bulk_size"],
    "idle": "Idle connections: %d held open" % S["idle_connections"],
}


def cpu_s(r):
    return r.get("cpu_ticks", 0) / r.get("clk_tck", 100)


def lg(k):
    return lambda r: r["loadgen"].get(k)


def per_conn(r):
    n = r["loadgen"].get("connections", 0)
    return cpu_s(r) * 1e6 / n if n else None


def switches_per_conn(r):
    n = r["loadgen"].get("connections", 0)
    return r["context_switches"] / n if n and "context_switches" in r else None


def per_gib(r):
    b = r["loadgen"].get("bytes", 0)
    return cpu_s(r) / (b / GIB) if b else None


def idle_delta(before, after, per=True):
    def f(r):
        if before not in r:
            return None
        return (r[after] - r[before]) / (r["idle_connections"] if per else 1)
    return f


# metric: (label, fn, higher_is_better, proxy_only, decimals)
M_CPS = [
    ("conn/s", lg("conn_per_s"), True, False, 0),
    ("p50 µs", lg("p50_us"), False, False, 0),
    ("p99 µs", lg("p99_us"), False, False, 0),
    ("p99.9 µs", lg("p999_us"), False, False, 0),
    ("proxy CPU µs/conn", per_conn, False, True, 1),
    ("proxy context switches/conn", switches_per_conn, False, True, 2),
]
M_LAT = [
    ("p50 µs", lg("p50_us"), False, False, 0),
    ("p99 µs", lg("p99_us"), False, False, 0),
    ("p99.9 µs", lg("p999_us"), False, False, 0),
    ("proxy CPU µs/conn", per_conn, False, True, 1),
]
M_BULK = [
    ("Gbit/s", lg("gbps"), True, False, 2),
    ("proxy CPU s/GiB", per_gib, False, True, 3),
]
M_IDLE = [
    ("RSS KiB/conn", idle_delta("rss_kib_before", "rss_kib_with"), False, True, 2),
    ("fds/conn", idle_delta("fds_before", "fds_with"), False, True, 2),
    ("threads before", lambda r: r.get("threads_before"), False, True, 0),
    ("threads with", lambda r: r.get("threads_with"), False, True, 0),
    ("iou-wrk threads before (system)", lambda r: r.get("iou_wrk_before"), False, True, 0),
    ("iou-wrk threads with (system)", lambda r: r.get("iou_wrk_with"), False, True, 0),
]
METRICS = {"latency": M_LAT, "bulk_down": M_BULK, "bulk_up": M_BULK, "idle": M_IDLE}
PRIMARY = {"latency": 1, "idle": 0}  # index of the charted metric (default 0)


def stats(sc, p, fn):
    rs = [r for r in runs if r["scenario"] == sc and r["proxy"] == p]
    ok = [r for r in rs if r["ok"]]
    vals = [v for v in (fn(r) for r in ok) if v is not None]
    return {"n": len(rs), "failed": len(rs) - len(ok), "vals": vals,
            "med": statistics.median(vals) if vals else None,
            "min": min(vals) if vals else None, "max": max(vals) if vals else None}


def fmt(v, d):
    if v is None:
        return "–"
    if d == 0:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{d}f}"


def cell(st, d):
    if st["n"] == 0:
        return "–"
    if st["med"] is None:
        return "**FAILED** (%d/%d)" % (st["failed"], st["n"])
    s = fmt(st["med"], d)
    if len(st["vals"]) > 1:
        s += " (%s–%s)" % (fmt(st["min"], d), fmt(st["max"], d))
    if st["failed"]:
        s += " **%d/%d FAILED**" % (st["failed"], st["n"])
    return s


def per_repetition_ratio(sc, fn, hib):
    """snisplice / best peer within each repetition, median (min-max).

    The runs of one repetition are seconds apart, so a drift of the machine
    between a fast and a slow mode over minutes moves both sides of each
    ratio; the ratio of two medians taken over the whole scenario does not
    cancel it (bench/NOTES.md)."""
    ok_runs = {(r["proxy"], r["rep"]): r for r in runs if r["scenario"] == sc and r["ok"]}

    def value(p, rep):
        r = ok_runs.get((p, rep))
        return fn(r) if r else None
    ratios = []
    for rep in sorted({r["rep"] for r in runs if r["scenario"] == sc}):
        ours = value("snisplice", rep)
        theirs = [v for v in (value(p, rep) for p in peers) if v is not None]
        if ours is None or not theirs:
            continue
        best = max(theirs) if hib else min(theirs)
        if best:
            ratios.append(ours / best)
    if not ratios:
        return "–"
    text = "%.2f" % statistics.median(ratios)
    if len(ratios) > 1:
        text += " (%.2f–%.2f)" % (min(ratios), max(ratios))
    return text


def ratio(a, b):
    if a is None or b in (None, 0):
        return "–"
    return "%.2f" % (a / b)


scenarios = [s for s in SCEN if any(r["scenario"] == s for r in runs)]
md = []
m = data["machine"]
md.append("# snisplice benchmark results\n")
md.append("Generated by `bench/run.sh%s` on %s.\n" % ("" if S["profile"] == "full" else " --" + S["profile"], m["date"]))
md.append("| fact | value |\n| --- | --- |")
md.append("| CPU | %s |" % m["cpu"])
md.append("| nproc | %s |" % m["nproc"])
md.append("| kernel | %s |" % m["kernel"])
if "syscall_ns" in m:
    md.append("| one system call (getppid, on the proxy's CPU) | %s ns |" % m["syscall_ns"])
md.append("| workers per proxy | %s |" % S["workers"])
md.append("| pinning | %s |" % S["pinning"])
md.append("| repetitions | %s (interleaved: rep 1 of every proxy, then rep 2, ...) |" % S["reps"])
md.append("| cps duration | %s s per run |" % S["cps_duration_s"])
md.append("| latency run | %s s at %s conn/s |" % (S["latency_duration_s"], S["latency_rate"]))
md.append("| bulk size | %s per connection, 2 connections |" % S["bulk_size"])
md.append("| idle connections | %s |" % S["idle_connections"])
md.append("| wall time | %s s |" % S["wall_s"])
L = data.get("load", {})
if L:
    md.append("| load average (1/5/15 min) | start %s, end %s |" % (L.get("loadavg_start"), L.get("loadavg_end")))
    if "cpu_busy_pct_before" in L:
        md.append("| machine CPU busy during the 1 s before the bench | %s %% |" % L["cpu_busy_pct_before"])
    if L.get("busy_processes_at_start"):
        md.append("| busy processes before the bench (ps %%cpu > 5) | %s |" % L["busy_processes_at_start"])
for v in data["versions"]:
    md.append("| version | %s |" % v.strip())
md.append("")
md.append("Cells: median (min–max) over the repetitions that had no error. A run with any "
          "error (connect failure, reset, short read, wrong byte, timeout, proxy died) is "
          "counted as **FAILED** and left out of the median. Proxy CPU = utime+stime of all "
          "the proxy's processes (/proc/PID/stat) during the run. `direct` = loadgen talks to "
          "the backend with no proxy. *best peer* = best median among %s. "
          "*Same, per repetition*: snisplice / the best peer of each repetition, median "
          "(min–max) over the repetitions: their runs are seconds apart, so the machine's "
          "slow drifts move both sides of each ratio. "
          "sniproxy is single-threaded whatever the worker count. haproxy = with "
          "`option splice-request/splice-response`; haproxy-nosplice = without.\n"
          % (", ".join(peers) or "(no peer in this run)"))
md.append("""Notes:
- Everything runs on loopback of one machine. With WORKERS=1 the proxy is pinned to CPU 0 and
  loadgen + backend share CPU 1. On loopback the receiver's TCP processing runs in the
  sender's softirq context, so part of every proxy's kernel work lands on CPU 1 and the
  loadgen/backend CPU is often the bottleneck: conn/s and Gbit/s compare proxies under the
  same constraint, not their absolute ceiling. Proxy CPU per connection / per GiB is the
  more direct cost measure.
- cps: closed loop, every connection sends the ClientHello + a 16-byte request and reads
  a 1 KiB reply until the backend closes; latency = connect() to end of reply.
  Connections still in flight when the time is up are dropped, not counted.
- idle: the proxy is restarted before each idle run; RSS and fd deltas are taken between
  "proxy started, no connection" and "all connections got their first byte".
  iou-wrk threads are counted system-wide (`ps -eLo comm`).
- sniproxy is single-threaded; haproxy runs `nbthread WORKERS`, nginx `worker_processes
  WORKERS`, snisplice `workers = WORKERS`.
- The machine may be shared with other jobs (see load average above); interleaved
  repetitions spread such noise over every proxy rather than one.
""")

for sc in scenarios:
    mets = METRICS.get(sc, M_CPS)
    md.append("## %s\n\n%s\n" % (sc, SCEN[sc]))
    hdr = ("| metric | " + " | ".join(proxies) +
           " | snisplice / best peer | same, per repetition | snisplice / direct |")
    md.append(hdr)
    md.append("|" + " --- |" * (len(proxies) + 4))
    for (label, fn, hib, proxy_only, d) in mets:
        sts = {p: stats(sc, p, fn) for p in proxies}
        row = []
        for p in proxies:
            row.append("–" if (proxy_only and p == "direct") else cell(sts[p], d))
        sn = sts.get("snisplice", {}).get("med")
        pm = [sts[p]["med"] for p in peers if sts[p]["med"] is not None]
        best = (max(pm) if hib else min(pm)) if pm else None
        dr = None if proxy_only else sts.get("direct", {}).get("med")
        md.append("| %s | %s | %s | %s | %s |" % (label, " | ".join(row), ratio(sn, best),
                                                  per_repetition_ratio(sc, fn, hib), ratio(sn, dr)))
        if sc == "latency" and label in ("p50 µs", "p99 µs") and "direct" in proxies:
            dmed = sts["direct"]["med"]
            added = []
            for p in proxies:
                if p == "direct" or sts[p]["med"] is None or dmed is None:
                    added.append("–")
                else:
                    added.append(fmt(sts[p]["med"] - dmed, 0))
            sa = None if sn is None or dmed is None else sn - dmed
            pa = [sts[p]["med"] - dmed for p in peers if sts[p]["med"] is not None and dmed is not None]
            md.append("| %s added vs direct | %s | %s | – | – |" % (label, " | ".join(added),
                      ratio(sa, min(pa) if pa else None) if sa is not None and pa and min(pa) > 0 else "–"))
    md.append("")
    md.append("![%s](%s.png)\n" % (sc, sc))

md.append("Raw runs: `latest.json` (every repetition, loadgen output, CPU ticks, idle counters).\n")
open(os.path.join(outdir, "latest.md"), "w").write("\n".join(md))

# ---------------------------------------------------------------- charts
gp = shutil.which("gnuplot")
if not gp:
    print("report: gnuplot not found, no charts", file=sys.stderr)
    sys.exit(0)
term = "pngcairo size 900,500 font ',10'"
if subprocess.run([gp, "-e", "set terminal pngcairo"], capture_output=True).returncode != 0:
    term = "png size 900,500"
for sc in scenarios:
    mets = METRICS.get(sc, M_CPS)
    label, fn, hib, proxy_only, d = mets[PRIMARY.get(sc, 0)]
    datf = os.path.join(outdir, ".%s.dat" % sc)
    rows = []
    for i, p in enumerate(proxies):
        if proxy_only and p == "direct":
            continue
        st = stats(sc, p, fn)
        if st["med"] is None:
            rows.append('"%s\\n(FAILED)" 0 0 0' % p)
        else:
            rows.append('"%s" %g %g %g' % (p, st["med"], st["min"], st["max"]))
    open(datf, "w").write("\n".join(rows) + "\n")
    script = f"""
set terminal {term}
set output '{os.path.join(outdir, sc + '.png')}'
set title noenhanced "{sc}: {label} ({'higher' if hib else 'lower'} is better), median and min-max of {S['reps']} reps"
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:*]
set grid ytics
set key off
set ylabel "{label}"
plot '{datf}' using 0:2:xtic(1) with boxes lc rgb '#4a7ebb', \\
     '' using 0:2:3:4 with yerrorbars lc rgb 'black' pt 0, \\
     '' using 0:2:(sprintf('%.{d}f', $2)) with labels offset 0,1
"""
    r = subprocess.run([gp], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("report: gnuplot failed for %s: %s" % (sc, r.stderr), file=sys.stderr)
    os.unlink(datf)

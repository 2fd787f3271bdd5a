#!/usr/bin/env python3
"""summarize.py OUTDIR - medians, same-run ratios, syscalls/op and gnuplot
scripts from the files bench/run wrote into OUTDIR.

Ratios are computed inside each repetition (system / flat table of the same
repetition, which ran minutes apart at most) and then the median of those
ratios is reported with their range, so slow drifts of a shared machine
cancel out.  The flat in-process table (bench/flat.c) is the reference;
"pointer table" is bench/inproc.c.  Runs of shmcache-bench-static
("link": "static"), on a huge-page cache ("huge": 1) and on a cache that
keeps its miss-ratio curve ("mrc": 1) are told apart by those fields of
their results: shmcache-static, shmcache-huge, shmcache-mrc.
"""
import json
import os
import statistics
import sys

out = sys.argv[1]
SYS_ORDER = ["flat", "shmcache", "shmcache-mrc", "shmcache-static",
             "shmcache-huge",
             "shmcache-static-huge", "shmcache-ref", "shmcache-mget",
             "inproc", "memcached", "redis", "redis-pipe"]
BASE = "flat"
LABEL = {"flat": "flat table (reference)",
         "inproc": "pointer table",
         "shmcache": "shmcache (.so)",
         "shmcache-static": "shmcache (static)",
         "shmcache-huge": "shmcache (huge)",
         "shmcache-mrc": "shmcache (miss-ratio curve)",
         "shmcache-static-huge": "shmcache (static, huge)",
         "shmcache-ref": "shmcache-ref (zero-copy)",
         "shmcache-mget": "shmcache-mget (16 a batch)"}


def variant(r):
    """The system a result row measured, variants of shmcache apart."""
    s = r["system"]
    if s == "shmcache":
        if r.get("link") == "static":
            s += "-static"
        if r.get("huge"):
            s += "-huge"
        if r.get("mrc"):
            s += "-mrc"
    return s


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def med(xs):
    return statistics.median(xs) if xs else float("nan")


runs = load("results.jsonl")
groups = {}
for r in runs:
    w = (f'{r["key_size"]}/{r["value_size"]}', r["mix"], r["dist"],
         r["procs"])
    groups.setdefault(w, {}).setdefault(variant(r), []).append(r)

workloads = sorted(groups, key=lambda w: (w[0], ["get", "90/10", "50/50",
                                                 "set"].index(w[1])
                                          if w[1] in ["get", "90/10", "50/50",
                                                      "set"] else 9,
                                          w[2], w[3]))
systems = [s for s in SYS_ORDER if any(s in groups[w] for w in workloads)]

summary = []
lines = []
hdr = ("| kv | mix | dist | procs | system | Mops/s (min-max) | x flat "
       "(min-max) | p50 ns | p99 ns | p99.9 ns | CPU ns/op | hit % | runs |")
lines.append(hdr)
lines.append("|" + "---|" * 13)


def same_rep_ratios(rs, base):
    return [r["ops_per_sec"] / base[r["label"]] for r in rs
            if base.get(r["label"])]


def spread(xs, fmt):
    return f"{fmt(min(xs))}-{fmt(max(xs))}" if xs else "-"


for w in workloads:
    g = groups[w]
    base = {r["label"]: r["ops_per_sec"] for r in g.get(BASE, [])}
    for s in systems:
        rs = g.get(s, [])
        if not rs:
            continue
        ratios = same_rep_ratios(rs, base)
        row = {
            "kv": w[0], "mix": w[1], "dist": w[2], "procs": w[3],
            "system": s, "runs": len(rs),
            "ops_per_sec": med([r["ops_per_sec"] for r in rs]),
            "ratio_to_flat": med(ratios),
            "ratio_to_flat_min": min(ratios) if ratios else None,
            "ratio_to_flat_max": max(ratios) if ratios else None,
            "p50_ns": med([r["p50_ns"] for r in rs]),
            "p99_ns": med([r["p99_ns"] for r in rs]),
            "p999_ns": med([r["p999_ns"] for r in rs]),
            "cpu_ns_per_op": med([r["cpu_ns_per_op"] for r in rs]),
            "hit_ratio": med([r["hit_ratio"] for r in rs]),
            "ops_per_sec_all": [round(r["ops_per_sec"]) for r in rs],
            "shmem_huge_kb": max([r.get("shmem_huge_kb", 0) for r in rs]),
        }
        summary.append(row)
        hit = f'{100 * row["hit_ratio"]:.1f}' if w[1] != "set" else "-"
        ops = [r["ops_per_sec"] / 1e6 for r in rs]
        lines.append(
            f'| {w[0]} | {w[1]} | {w[2]} | {w[3]} | {LABEL.get(s, s)} | '
            f'{row["ops_per_sec"] / 1e6:.3f} ({spread(ops, lambda x: f"{x:.2f}")}) | '
            f'{row["ratio_to_flat"]:.3f} ({spread(ratios, lambda x: f"{x:.2f}")}) | '
            f'{row["p50_ns"]:.0f} | {row["p99_ns"]:.0f} | {row["p999_ns"]:.0f} | '
            f'{row["cpu_ns_per_op"]:.0f} | {hit} | {len(rs)} |')

def wl_name(w):
    m = {"get": "GET", "set": "SET"}.get(w[1], w[1])
    return f"{m} {w[2]}"


# The ratio table: one row per workload, the flat table's median and
# every other system's median same-repetition ratio to it (min-max).
RATIO_COLS = [s for s in ["shmcache", "shmcache-mrc", "shmcache-static",
                          "shmcache-huge",
                          "shmcache-static-huge", "shmcache-ref",
                          "shmcache-mget", "inproc"] if s in systems]
rt = ["| kv | workload | procs | flat M ops/s (min-max) | " +
      " | ".join(f"{LABEL.get(s, s)} x flat" for s in RATIO_COLS) + " |",
      "|" + "---|" * (4 + len(RATIO_COLS))]
for w in workloads:
    g = groups[w]
    if BASE not in g:
        continue
    fl = [r["ops_per_sec"] / 1e6 for r in g[BASE]]
    base = {r["label"]: r["ops_per_sec"] for r in g[BASE]}
    cells = []
    for s in RATIO_COLS:
        rs = same_rep_ratios(g.get(s, []), base)
        cells.append(f"{med(rs):.2f} ({spread(rs, lambda x: f'{x:.2f}')})"
                     if rs else "-")
    rt.append(f"| {w[0]} | {wl_name(w)} | {w[3]} | {med(fl):.2f} "
              f"({spread(fl, lambda x: f'{x:.2f}')}) | " + " | ".join(cells) +
              " |")

# Variant against variant, same repetition: what the static link and the
# huge pages buy.
PAIRS = [("shmcache-static", "shmcache", "static / .so"),
         ("shmcache-huge", "shmcache", "huge / 4 KiB pages"),
         ("shmcache-static-huge", "shmcache-static", "static: huge / 4 KiB"),
         ("shmcache-ref", "shmcache", "zero-copy / copy-out"),
         ("shmcache-mget", "shmcache", "mget / get")]
PAIRS = [p for p in PAIRS if p[0] in systems and p[1] in systems]
vt = []
if PAIRS:
    vt = ["| kv | workload | procs | " + " | ".join(p[2] for p in PAIRS) +
          " |", "|" + "---|" * (3 + len(PAIRS))]
    for w in workloads:
        g = groups[w]
        cells = []
        for a, b, _ in PAIRS:
            base = {r["label"]: r["ops_per_sec"] for r in g.get(b, [])}
            rs = same_rep_ratios(g.get(a, []), base)
            cells.append(f"{med(rs):.2f} ({spread(rs, lambda x: f'{x:.2f}')})"
                         if rs else "-")
        vt.append(f"| {w[0]} | {wl_name(w)} | {w[3]} | " +
                  " | ".join(cells) + " |")
huge_kb = [r["shmem_huge_kb"] for r in summary
           if r["system"].endswith("-huge")]

# 2 processes vs twice one, same workload, shmcache
scal = []
for w in workloads:
    if w[3] != 2:
        continue
    one = (w[0], w[1], w[2], 1)
    for s in systems:
        if one in groups and s in groups[one] and s in groups[w]:
            a = {r["label"]: r["ops_per_sec"] for r in groups[one][s]}
            rs = [r["ops_per_sec"] / (2 * a[r["label"]]) for r in groups[w][s]
                  if a.get(r["label"])]
            if rs:
                scal.append((w, s, med(rs)))

# system calls per operation
sc = []
strace_runs = {r["system"]: r for r in load("strace.jsonl")}
sc_path = os.path.join(out, "syscalls.txt")
if os.path.exists(sc_path):
    with open(sc_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[0] in strace_runs:
                ops = strace_runs[parts[0]]["ops"]
                sc.append((parts[0], int(parts[1]), ops,
                           int(parts[1]) / ops if ops else float("nan")))

replay = load("replay.jsonl")
scen = load("scenarios.jsonl")

text = []
machine = os.path.join(out, "machine.txt")
if os.path.exists(machine):
    with open(machine) as f:
        text += ["## Machine", ""] + [f"- {line.strip()}" for line in f
                                      if line.strip()] + [""]
text += ["## Ratios to the flat in-process table (same repetition; median, "
         "min-max)", "", *rt, ""]
if vt:
    text += ["## Variants against each other (same repetition; median, "
             "min-max)", "", *vt, ""]
if huge_kb:
    text += [f"Huge-page rows: ShmemHugePages after the run up to "
             f"{max(huge_kb) / 1024:.0f} MiB (0 would mean the huge pages "
             f"were not used).", ""]
skipped = os.path.join(out, "skipped.txt")
if os.path.exists(skipped):
    with open(skipped) as f:
        text += [f"Skipped: {line.strip()}" for line in f if line.strip()]
    text.append("")
text += ["## Throughput and latency (medians)", "", *lines, ""]
if scal:
    text += ["## 2 processes / (2 x 1 process), same repetition (median)", "",
             "| kv | mix | dist | system | ratio |", "|---|---|---|---|---|"]
    text += [f"| {w[0]} | {w[1]} | {w[2]} | {LABEL.get(s, s)} | {r:.3f} |"
             for w, s, r in scal]
    text.append("")
if sc:
    text += ["## System calls per operation (strace -f -c, 90/10 uniform, "
             "10k keys, 0.5 s; the whole process incl. setup and loading)",
             "", "| system | syscalls | ops | syscalls/op |",
             "|---|---|---|---|"]
    text += [f"| {s} | {c} | {o} | {p:.4f} |" for s, c, o, p in sc]
    text.append("")
if replay:
    text += ["## Trace replay (cloudPhysicsIO, 113,872 requests)", "",
             "| cache | value bytes | miss ratio | byte miss ratio | "
             "evictions |", "|---|---|---|---|---|"]
    for r in replay:
        what = (f'{r["items"]} objects' if r["items"] else
                f'{r["memory"] >> 20} MiB, object sizes')
        text.append(f'| {what} | {r["value_size"] or "obj"} | '
                    f'{r["miss_ratio"]:.4f} | {r["byte_miss_ratio"]:.4f} | '
                    f'{r["evictions"]} |')
    text.append("")
if scen:
    text += ["## Scenarios (cache smaller than the key set)", "",
             "| scenario | system | Mops/s | hit ratio | hot hit ratio, "
             "last interval |", "|---|---|---|---|---|"]
    for r in scen:
        iv = r["intervals"]
        last = iv[-1]["hot_hit"] if iv else float("nan")
        text.append(f'| {r["scenario"]} | {r["system"]} | '
                    f'{r["ops_per_sec"] / 1e6:.3f} | {r["hit_ratio"]:.4f} | '
                    f'{last:.4f} |')
    text.append("")

# what a dependent miss costs here (shmcache-bench chase): the bound on a
# single-key get, which is two dependent misses where the flat table's is one
chase = os.path.join(out, "chase.txt")
if os.path.exists(chase):
    with open(chase) as f:
        rows = [line.split() for line in f if line[:2] in ("4K", "2M")]
    if rows:
        text += ["## What a dependent miss costs (shmcache-bench chase)", "",
                 "| pages | huge-backed | one miss ns | two dependent misses"
                 " ns | two chains ns/load | bound on a 2-miss get vs a"
                 " 1-miss get |", "|---|---|---|---|---|---|"]
        for r in rows:
            one, two = float(r[2]), float(r[3])
            text.append(f"| {r[0]} | {r[1]} | {one:.0f} | {two:.0f} | "
                        f"{float(r[4]):.0f} | {one / two:.2f} |")
        text.append("")

md = "\n".join(text)
print(md)
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(md + "\n")
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump({"throughput": summary,
               "two_procs_over_twice_one": [
                   {"kv": w[0], "mix": w[1], "dist": w[2], "system": s,
                    "ratio": r} for w, s, r in scal],
               "syscalls": [{"system": s, "syscalls": c, "ops": o,
                             "per_op": p} for s, c, o, p in sc],
               "replay": replay, "scenarios": scen}, f, indent=1)

# gnuplot: clustered bars of median Mops/s, one cluster per workload.
dat = os.path.join(out, "throughput.dat")
with open(dat, "w") as f:
    f.write("# workload " + " ".join(systems) + "\n")
    for w in workloads:
        cells = []
        for s in systems:
            v = [r["ops_per_sec"] for r in summary
                 if (r["kv"], r["mix"], r["dist"], r["procs"]) == w
                 and r["system"] == s]
            cells.append(f"{v[0] / 1e6:.4f}" if v else "NaN")
        f.write(f'"{w[0]} {w[1]} {w[2]} {w[3]}p" ' + " ".join(cells) + "\n")
plot = ", ".join(
    f"'{dat}' using {i + 2}:xtic(1) title '{LABEL.get(s, s)}'" for i, s in
    enumerate(systems))
with open(os.path.join(out, "throughput.gp"), "w") as f:
    f.write(f"""set terminal pngcairo size 1400,600 noenhanced
set output '{os.path.join(out, "throughput.png")}'
set title 'shmcache-bench: median throughput (Mops/s, log scale; higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [0.001:*]
set ylabel 'M ops/s (all worker processes)'
set xtics rotate by -30
set key outside right
set grid ytics
plot {plot}
""")

# scenarios: hit ratio over time
with open(os.path.join(out, "scenarios.gp"), "w") as f:
    f.write(f"""set terminal pngcairo size 1200,500 noenhanced
set output '{os.path.join(out, "scenarios.png")}'
set multiplot layout 1,2
set yrange [0:1]
set xlabel 'seconds'
set ylabel 'hit ratio per interval'
set grid
""")
    for scname in ("flash-sale", "scan"):
        rs = [r for r in scen if r["scenario"] == scname]
        if not rs:
            continue
        parts = []
        for r in rs:
            p = os.path.join(out, f'{scname}-{r["system"]}.dat')
            key = "hot_hit" if scname == "scan" else "hit"
            with open(p, "w") as d:
                for iv in r["intervals"]:
                    d.write(f'{iv["t"]} {iv[key]}\n')
            parts.append(f"'{p}' using 1:2 with lines lw 2 title "
                         f"'{r['system']}'")
        what = ("hit ratio (new hot set from half time)" if scname ==
                "flash-sale" else "hit ratio of the Zipf requests "
                "(scan in the middle third)")
        f.write(f"set title '{scname}: {what}'\nplot {', '.join(parts)}\n")
    f.write("unset multiplot\n")

#!/usr/bin/env python3
"""Virtqueue round trip side by side: the JMH VirtqueueRoundTripBenchmark (Java) and benchmarks/c's
virtqueue_bench (gcc -O2, the same rings, chain shapes, batches and device-side checks), alternated.

Per shape (ring, descriptors, indirect, batch) it prints the C figure (median of its runs), the Java
figure (JMH's mean), Java/C, and JMH's gc.alloc.rate.norm (B/op) so that an allocating hot path shows.
The C loop is the peer: ns per chain, lower is better; the target of issue 11 is Java/C <= 1.5.
Exit status 77 when gcc is missing (2 with --required).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

C_LINE = re.compile(r"^(split|packed)\s+(\d+)\s+(true|false)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s*$")


def run_c(binary, seconds, runs, cpu):
    cmd = [binary, str(seconds), str(runs)]
    if cpu is not None and common.find("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    figures = {}
    for line in out.splitlines():
        m = C_LINE.match(line.strip())
        if m:
            figures[(m.group(1), int(m.group(2)), m.group(3) == "true", int(m.group(4)))] = float(m.group(6))
    return figures


def run_jmh(java, jar, a, json_path):
    cmd = [java, "--enable-native-access=ALL-UNNAMED", "-jar", jar, "VirtqueueRoundTripBenchmark",
           "-f", str(a.forks), "-wi", str(a.warmup_iterations), "-w", a.iteration_time,
           "-i", str(a.iterations), "-r", a.iteration_time, "-prof", "gc", "-rf", "json", "-rff", json_path]
    for p in a.param:
        cmd += ["-p", p]
    if a.cpu is not None and common.find("taskset"):
        cmd = ["taskset", "-c", str(a.cpu)] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if a.quiet else None)
    with open(json_path) as f:
        data = json.load(f)
    figures = {}
    for b in data:
        p = b["params"]
        batch = 32 if b["benchmark"].endswith("batch32") else 1
        key = (p["ring"], int(p["descriptors"]), p["indirect"] == "true", batch)
        alloc = b.get("secondaryMetrics", {}).get("gc.alloc.rate.norm", {}).get("score", float("nan"))
        figures[key] = (b["primaryMetric"]["score"], alloc)
    return figures


def main():
    root = common.repo_root()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1, help="alternations: C then Java, then Java then C, ...")
    ap.add_argument("--c-seconds", default="0.5", help="seconds per C run")
    ap.add_argument("--c-runs", type=int, default=8, help="C runs per shape (median)")
    ap.add_argument("--forks", type=int, default=1)
    ap.add_argument("--warmup-iterations", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=8)
    ap.add_argument("--iteration-time", default="500ms")
    ap.add_argument("--param", action="append", default=[], help="a JMH -p filter, e.g. ring=split")
    ap.add_argument("--cpu", type=int, default=None, help="pin both to this CPU")
    ap.add_argument("--jar", default=os.path.join(root, "benchmarks", "target", "benchmarks.jar"))
    ap.add_argument("--work-dir", default="/tmp/outproc-bench-virtqueue-%d" % os.getpid())
    ap.add_argument("--quiet", action="store_true", help="hide JMH's own output")
    ap.add_argument("--required", action="store_true", help="a missing gcc is an error, not a skip")
    a = ap.parse_args()
    gcc = common.find("gcc")
    if gcc is None:
        common.skip_or_fail("virtqueue: gcc is not installed; skipped", a.required)
    if not os.path.exists(a.jar):
        sys.exit("virtqueue: %s is missing; build with ./mvnw -B -q -DskipTests package" % a.jar)
    os.makedirs(a.work_dir, exist_ok=True)
    binary = os.path.join(a.work_dir, "virtqueue_bench")
    subprocess.run([gcc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-o", binary,
                    os.path.join(root, "benchmarks", "c", "virtqueue_bench.c")], check=True)
    java = common.java_binary()
    print("# virtqueue round trip: JMH VirtqueueRoundTripBenchmark against benchmarks/c (gcc -O2)")
    print("# %s" % common.machine_line())
    print("# %s, %d round(s) alternated; C: median of %d runs of %s s; JMH: %d x %s warm-up, %d x %s measured"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.rounds, a.c_runs, a.c_seconds,
             a.warmup_iterations, a.iteration_time, a.iterations, a.iteration_time), flush=True)
    c_runs, j_runs = [], []
    for r in range(a.rounds):
        steps = ["c", "java"] if r % 2 == 0 else ["java", "c"]
        for s in steps:
            if s == "c":
                c_runs.append(run_c(binary, a.c_seconds, a.c_runs, a.cpu))
            else:
                j_runs.append(run_jmh(java, a.jar, a, os.path.join(a.work_dir, "jmh-%d.json" % r)))
        print("# round %d done, load %s" % (r + 1, common.load_average()), flush=True)
    rows = []
    for key in sorted(j_runs[0], key=lambda k: (k[0] != "split", k[1], k[2], k[3])):
        c = common.median([run[key] for run in c_runs if key in run])
        j = common.median([run[key][0] for run in j_runs])
        alloc = common.median([run[key][1] for run in j_runs])
        rows.append([key[0], str(key[1]), str(key[2]).lower(), str(key[3]), common.fmt(c), common.fmt(j),
                     common.fmt(common.ratio(j, c)), common.fmt(alloc, 4)])
    common.print_table(["ring", "descriptors", "indirect", "batch", "C ns/chain", "Java ns/chain", "Java/C",
                        "Java B/op"], rows)


if __name__ == "__main__":
    main()

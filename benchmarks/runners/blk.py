#!/usr/bin/env python3
"""vhost-user-blk side by side: qemu-storage-daemon's vhost-user-blk export (C) and outproc's vhost-user-blk
serve the same RAM-backed image (on tmpfs); the same front-end, outproc's BlkLoad (benchmarks jar), drives
each with 4 KiB random reads and writes at queue depths 1 and 32 on 1 and 2 queues, alternated.

Each measurement starts the back-end pinned to --backend-cpu and the load pinned to --frontend-cpu, runs
--warmup seconds unmeasured and --seconds measured, and reads BlkLoad's line (IOPS, p50 and p99 latency).
Prints a Markdown table: peer IOPS, ours IOPS, ours/peer, and both p50/p99.
Exit status 77 when qemu-storage-daemon is missing (2 with --required).
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

RESULT = re.compile(r"iops=(\S+) p50_us=(\S+) p99_us=(\S+) requests=(\d+) errors=(\d+)")


def main():
    root = common.repo_root()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", default="read,write")
    ap.add_argument("--depths", default="1,32")
    ap.add_argument("--queues", default="1,2")
    ap.add_argument("--block", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="alternations: peer, ours, then ours, peer, ...")
    ap.add_argument("--image-mib", type=int, default=256)
    ap.add_argument("--image-dir", default="/dev/shm", help="a tmpfs for the image")
    ap.add_argument("--backend-cpu", type=int, default=0)
    ap.add_argument("--frontend-cpu", type=int, default=1)
    ap.add_argument("--jar", default=os.path.join(root, "examples", "target", "outproc-examples.jar"))
    ap.add_argument("--bench-jar", default=os.path.join(root, "benchmarks", "target", "benchmarks.jar"))
    ap.add_argument("--our-arg", action="append", default=[], help="an extra vhost-user-blk option (e.g. --busy-poll)")
    ap.add_argument("--work-dir", default="/tmp/outproc-bench-blk-%d" % os.getpid())
    ap.add_argument("--required", action="store_true", help="a missing qemu-storage-daemon is an error, not a skip")
    a = ap.parse_args()
    qsd = common.find("qemu-storage-daemon")
    if qsd is None:
        common.skip_or_fail("blk: qemu-storage-daemon is not installed; skipped", a.required)
    for jar in (a.jar, a.bench_jar):
        if not os.path.exists(jar):
            sys.exit("blk: %s is missing; build with ./mvnw -B -q -DskipTests package" % jar)
    java = common.java_binary()
    os.makedirs(a.work_dir, exist_ok=True)
    image = os.path.join(a.image_dir, "outproc-bench-blk-%d.img" % os.getpid())
    with open(image, "wb") as f:
        f.truncate(a.image_mib << 20)
    counter = [0]

    def measure(contestant, op, depth, queues):
        counter[0] += 1
        work = os.path.join(a.work_dir, "%s-%s-qd%d-q%d-%d" % (contestant, op, depth, queues, counter[0]))
        os.makedirs(work, exist_ok=True)
        sock = os.path.join(work, "blk.sock")
        if contestant == "peer":
            cmd = [qsd, "--blockdev", "driver=file,node-name=file0,filename=%s" % image,
                   "--blockdev", "driver=raw,node-name=disk0,file=file0",
                   "--export", "type=vhost-user-blk,id=exp0,addr.type=unix,addr.path=%s,node-name=disk0,"
                               "writable=on,num-queues=%d" % (sock, queues)]
        else:
            cmd = [java, "--enable-native-access=ALL-UNNAMED", "-Xms256m", "-Xmx256m", "-jar", a.jar,
                   "vhost-user-blk", "--socket-path", sock, "--image", image, "--queues", str(queues)] + a.our_arg
        be = common.start(cmd, os.path.join(work, "backend.log"), cpu=a.backend_cpu)
        load = None
        try:
            common.wait_for(lambda: os.path.exists(sock), 60, "the back-end's socket " + sock, [be])
            time.sleep(0.2)
            load = common.start([java, "--enable-native-access=ALL-UNNAMED", "-cp", a.bench_jar,
                                 "dev.outproc.benchmarks.blk.BlkLoad", "--socket", sock, "--queues", str(queues),
                                 "--depth", str(depth), "--op", op, "--block", str(a.block),
                                 "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--seed", str(counter[0])],
                                os.path.join(work, "load.log"), cpu=a.frontend_cpu)
            common.wait_for(lambda: load.poll() is not None, a.seconds + a.warmup + 90, "the load to finish", [be])
            m = RESULT.search(common.read_log(load))
            if load.returncode != 0 or m is None:
                raise RuntimeError("BlkLoad failed (status %s) against %s; log %s:\n%s"
                                   % (load.returncode, contestant, load.log_path, common.read_log(load)[-3000:]))
            iops, p50, p99, requests, errors = float(m.group(1)), float(m.group(2)), float(m.group(3)), \
                int(m.group(4)), int(m.group(5))
            if errors:
                raise RuntimeError("%d of %d requests failed against %s" % (errors, requests, contestant))
            return iops, p50, p99
        finally:
            common.stop(load)
            common.stop(be)

    print("# blk: BlkLoad (CPU %d) against each back-end (CPU %d), %d-byte random requests, image %d MiB on %s"
          % (a.frontend_cpu, a.backend_cpu, a.block, a.image_mib, a.image_dir))
    print("# %s" % common.machine_line())
    print("# %s, %.0f s measured after %.0f s warm-up, %d round(s) alternated"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.seconds, a.warmup, a.rounds))
    contestants = ["peer", "ours"]
    results = {}
    keys = [(op, int(d), int(q)) for q in a.queues.split(",") for op in a.ops.split(",") for d in a.depths.split(",")]
    try:
        for key in keys:
            for r in range(a.rounds):
                for c in (contestants if r % 2 == 0 else list(reversed(contestants))):
                    iops, p50, p99 = measure(c, *key)
                    results.setdefault(key + (c,), []).append((iops, p50, p99))
                    print("# round %d %-4s %-5s QD %2d queues %d: %.0f IOPS p50 %.1f us p99 %.1f us, load %s"
                          % (r + 1, c, key[0], key[1], key[2], iops, p50, p99, common.load_average()), flush=True)
    finally:
        os.unlink(image)
    rows = []
    for key in keys:
        fig = {}
        for c in contestants:
            runs = results[key + (c,)]
            fig[c] = tuple(common.median([x[i] for x in runs]) for i in range(3))
        rows.append([key[0], str(key[1]), str(key[2]), "%.0f" % fig["peer"][0], "%.0f" % fig["ours"][0],
                     common.fmt(common.ratio(fig["ours"][0], fig["peer"][0])),
                     "%.1f / %.1f" % fig["peer"][1:], "%.1f / %.1f" % fig["ours"][1:]])
    common.print_table(["op", "QD", "queues", "peer IOPS", "ours IOPS", "ours/peer",
                        "peer p50/p99 us", "ours p50/p99 us"], rows)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""vhost-user-net side by side: DPDK testpmd's net_vhost (C) and outproc's vhost-user-net as back-ends,
each driven by the same traffic end, testpmd's net_virtio_user, in one invocation and alternated.

Shapes (what the back-end does; the traffic end's figure is what is compared):
  sink      front-end txonly -> back-end takes every frame (testpmd rxonly / --mode sink)   front-end Tx-pps
  source    back-end fills every receive buffer (testpmd txonly / --mode source) -> front-end rxonly   Rx-pps
  loopback  front-end io --tx-first <-> back-end returns every frame (testpmd io / --mode loopback)   Rx-pps

Each measurement starts the back-end pinned to --backend-cpu (taskset for the JVM, --lcores for testpmd),
the front-end pinned to --frontend-cpu, reads testpmd's one-second statistics, drops --warmup samples and
takes the median of the next --samples. Prints a Markdown table: peer Mpps, ours Mpps, ours/peer.
Exit status 77 when testpmd is missing (2 with --required).
"""

import argparse
import glob
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

RX_PPS = re.compile(r"Rx-pps:\s+(\d+)")
TX_PPS = re.compile(r"Tx-pps:\s+(\d+)")

SHAPES = {
    # shape: (front-end forward mode, extra front-end args, metric, peer back-end mode, our --mode)
    "sink": ("txonly", [], TX_PPS, "rxonly", "sink"),
    "source": ("rxonly", [], RX_PPS, "txonly", "source"),
    "loopback": ("io", ["--tx-first"], RX_PPS, "io", "loopback"),
}


class Run:
    counter = 0

    def __init__(self, args):
        self.args = args
        self.testpmd = common.find("dpdk-testpmd")
        self.java = common.java_binary()

    def prefix(self):
        Run.counter += 1
        return "outproc-bench-%d-%d" % (os.getpid(), Run.counter)

    def testpmd_cmd(self, prefix, cpu, vdev, forward, frame, queues, extra):
        lcores = ",".join("%d@%d" % (i, cpu) for i in range(queues + 1))
        cmd = [self.testpmd, "--no-pci", "--no-huge", "-m", "1024", "--file-prefix", prefix,
               "--lcores", lcores, "--vdev", vdev, "--",
               "--forward-mode=" + forward, "--txpkts=%d" % frame, "--nb-cores=%d" % queues,
               "--stats-period", "1", "--total-num-mbufs=32768"]
        if queues > 1:
            cmd += ["--rxq=%d" % queues, "--txq=%d" % queues]
        return cmd + extra

    def backend(self, contestant, shape, frame, socket, log):
        a = self.args
        _, _, _, peer_mode, our_mode = SHAPES[shape]
        if contestant == "peer":
            prefix = self.prefix()
            vdev = "net_vhost0,iface=%s,queues=%d" % (socket, a.queue_pairs)
            p = common.start(self.testpmd_cmd(prefix, a.backend_cpu, vdev, peer_mode, frame, a.queue_pairs, []), log)
            p.dpdk_prefix = prefix
            return p
        jar = self.jar_of(contestant)
        cmd = [self.java, "--enable-native-access=ALL-UNNAMED", "-Xms256m", "-Xmx256m"] + a.java_opt + [
            "-jar", jar, "vhost-user-net", "--socket-path", socket, "--mode", our_mode, "--busy-poll",
            "--workers", str(a.queue_pairs)]
        # Only the options a shape needs, so that older builds (--compare) run the shapes they have.
        if our_mode == "source":
            cmd += ["--frame-size", str(frame)]
        if a.queue_pairs > 1:
            cmd += ["--queue-pairs", str(a.queue_pairs)]
        p = common.start(cmd, log, cpu=a.backend_cpu)
        p.dpdk_prefix = None
        return p

    def jar_of(self, contestant):
        if contestant == "ours":
            return self.args.jar
        return dict(self.args.compare)[contestant]

    def measure(self, contestant, shape, frame):
        a = self.args
        forward, extra, metric, _, _ = SHAPES[shape]
        work = os.path.join(a.work_dir, "%s-%s-%d-%d" % (contestant, shape, frame, Run.counter))
        os.makedirs(work, exist_ok=True)
        socket = os.path.join(work, "net.sock")
        be = self.backend(contestant, shape, frame, socket, os.path.join(work, "backend.log"))
        fe = None
        try:
            common.wait_for(lambda: os.path.exists(socket), 60, "the back-end's socket " + socket, [be])
            if contestant != "peer":
                # The JVM binds the socket before its workers run: wait for the start line.
                common.wait_for(lambda: "vhost-user-net: " in common.read_log(be), 60, "the back-end's start", [be])
            time.sleep(0.5)
            prefix = self.prefix()
            vdev = "net_virtio_user0,path=%s,queues=%d" % (socket, a.queue_pairs)
            fe = common.start(self.testpmd_cmd(prefix, a.frontend_cpu, vdev, forward, frame, a.queue_pairs, extra),
                              os.path.join(work, "frontend.log"))
            fe.dpdk_prefix = prefix
            wanted = a.warmup + a.samples
            common.wait_for(lambda: len(metric.findall(common.read_log(fe))) >= wanted + 1,
                            wanted * 3 + 60, "%d statistics periods of the front-end" % wanted, [fe, be])
            values = [int(v) for v in metric.findall(common.read_log(fe))]
            # The first figure is the period in which forwarding started; then warm-up periods.
            samples = values[1 + a.warmup:1 + wanted]
            return common.median(samples) / 1e6, samples
        finally:
            for p in (fe, be):
                if p is not None:
                    common.stop(p)
                    if getattr(p, "dpdk_prefix", None):
                        for base in ("/var/run/dpdk", os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), "dpdk")):
                            shutil.rmtree(os.path.join(base, p.dpdk_prefix), ignore_errors=True)


def main():
    root = common.repo_root()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="sink,source,loopback")
    ap.add_argument("--sizes", default="64,1500", help="frame sizes in bytes (testpmd --txpkts, our --frame-size)")
    ap.add_argument("--samples", type=int, default=10, help="one-second samples per measurement (median)")
    ap.add_argument("--warmup", type=int, default=5, help="one-second samples dropped first")
    ap.add_argument("--rounds", type=int, default=1, help="alternations: peer, ours, then ours, peer, ...")
    ap.add_argument("--queue-pairs", type=int, default=1)
    ap.add_argument("--backend-cpu", type=int, default=0)
    ap.add_argument("--frontend-cpu", type=int, default=1)
    ap.add_argument("--jar", default=os.path.join(root, "examples", "target", "outproc-examples.jar"))
    ap.add_argument("--compare", action="append", default=[], metavar="LABEL=JAR",
                    help="another build of the examples jar to measure alongside (before/after)")
    ap.add_argument("--no-peer", action="store_true", help="measure only our jars (before/after runs)")
    ap.add_argument("--java-opt", action="append", default=[], help="an extra JVM option for our back-end")
    ap.add_argument("--work-dir", default="/tmp/outproc-bench-net-%d" % os.getpid())
    ap.add_argument("--required", action="store_true", help="a missing testpmd is an error, not a skip")
    a = ap.parse_args()
    a.compare = [tuple(c.split("=", 1)) for c in a.compare]
    run = Run(a)
    if run.testpmd is None:
        common.skip_or_fail("net: dpdk-testpmd is not installed; skipped", a.required)
    if not os.path.exists(a.jar):
        sys.exit("net: %s is missing; build with ./mvnw -B -q -DskipTests package" % a.jar)
    contestants = ([] if a.no_peer else ["peer"]) + ["ours"] + [label for label, _ in a.compare]
    os.makedirs(a.work_dir, exist_ok=True)
    print("# net: testpmd net_virtio_user (CPU %d) against each back-end (CPU %d), %d queue pair(s)"
          % (a.frontend_cpu, a.backend_cpu, a.queue_pairs))
    print("# %s" % common.machine_line())
    print("# %s, median of %d one-second samples after %d warm-up, %d round(s) alternated"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.samples, a.warmup, a.rounds))
    results = {}
    for shape in a.shapes.split(","):
        for frame in [int(s) for s in a.sizes.split(",")]:
            for r in range(a.rounds):
                order = contestants if r % 2 == 0 else list(reversed(contestants))
                for c in order:
                    mpps, samples = run.measure(c, shape, frame)
                    results.setdefault((shape, frame, c), []).append(mpps)
                    print("# round %d %-8s %-8s %5d B: %.3f Mpps (samples %s) load %s"
                          % (r + 1, c, shape, frame, mpps, " ".join("%.2f" % (s / 1e6) for s in samples),
                             common.load_average()), flush=True)
    base = contestants[0]
    header = ["shape", "frame B"] + ["%s Mpps" % c for c in contestants] + \
             ["%s/%s" % (c, base) for c in contestants[1:]]
    rows = []
    for shape in a.shapes.split(","):
        for frame in [int(s) for s in a.sizes.split(",")]:
            figs = {c: common.median(results[(shape, frame, c)]) for c in contestants}
            rows.append([shape, str(frame)] + [common.fmt(figs[c], 3) for c in contestants]
                        + [common.fmt(common.ratio(figs[c], figs[base])) for c in contestants[1:]])
    common.print_table(header, rows)
    for d in glob.glob(os.path.join(a.work_dir, "*", "net.sock")):
        try:
            os.unlink(d)
        except OSError:
            pass


if __name__ == "__main__":
    main()

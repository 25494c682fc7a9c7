"""Shared helpers of the side-by-side runners: processes, pinning, medians, tables.

Standard library only. Every process a runner starts is recorded here and ended by its id when the run
ends (normally, on an error or on Ctrl-C).
"""

import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

_started = []


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def java_binary():
    """The JDK the build uses: $JAVA_HOME, else scripts/jdk22.sh's answer, else java on the PATH."""
    home = os.environ.get("JAVA_HOME")
    if not home:
        script = os.path.join(repo_root(), "scripts", "jdk22.sh")
        if os.path.exists(script):
            try:
                home = subprocess.run(["sh", script], capture_output=True, text=True, check=True).stdout.strip()
            except (subprocess.CalledProcessError, OSError):
                home = None
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    return shutil.which("java") or "java"


def find(program):
    """{return the program's path, or None when it is not installed}"""
    return shutil.which(program)


def start(cmd, log_path, cpu=None, env=None):
    """Starts cmd with stdout and stderr in log_path, pinned to cpu (taskset) when given."""
    if cpu is not None and find("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + list(cmd)
    log = open(log_path, "wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, env=env)
    p.log_path = log_path
    p.log_file = log
    p.cmdline = " ".join(cmd)
    _started.append(p)
    return p


def stop(p, grace=5.0):
    """SIGTERM (testpmd prints its final statistics), SIGKILL after grace seconds; by process id only."""
    if p is None:
        return
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass
    p.log_file.close()
    if p in _started:
        _started.remove(p)


@atexit.register
def _stop_all():
    for p in list(_started):
        stop(p, grace=2.0)


def read_log(p):
    p.log_file.flush()
    with open(p.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_for(predicate, timeout, what, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError("%s: process exited (status %s) before %s; log %s:\n%s"
                                   % (p.cmdline, p.returncode, what, p.log_path, read_log(p)[-3000:]))
        time.sleep(0.05)
    raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))


def median(values):
    return statistics.median(values) if values else float("nan")


def ratio(ours, peer):
    return ours / peer if peer else float("nan")


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


def machine_line():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    java = java_binary()
    try:
        jv = subprocess.run([java, "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError):
        jv = "unknown JDK"
    return "%s, %d CPUs, %s, %s, load average %s" % (cpu, os.cpu_count() or 0, os.uname().release, jv,
                                                      load_average())


def print_table(header, rows, out=sys.stdout):
    """A Markdown table (what RESULTS.md holds)."""
    out.write("| " + " | ".join(header) + " |\n")
    out.write("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|\n")
    for r in rows:
        out.write("| " + " | ".join(r) + " |\n")
    out.flush()


def fmt(value, digits=2):
    if value != value:  # NaN
        return "n/a"
    return ("%." + str(digits) + "f") % value


def skip_or_fail(message, required):
    """A missing peer: exit 77 (skipped) unless the caller requires it (exit 2)."""
    sys.stderr.write(message + "\n")
    sys.exit(2 if required else 77)

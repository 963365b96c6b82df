#!/usr/bin/env python3
"""wedge ps --all --json against ps -eLo pid,tid,stat,wchan:32, on a machine
with N extra threads (default 10,000), in the same run.

wedge reads more per thread than ps (stat, status, wchan, syscall, schedstat
and the kernel stack, versus ps's stat, status and wchan), so the target is
wedge's wall time <= ps's.

Usage: benches/ps_vs_procps.py [--threads N] [--runs R] [--wedge PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time


def spawn_threads(n):
    threading.stack_size(64 * 1024)
    stop = threading.Event()
    started = threading.Semaphore(0)

    def body():
        started.release()
        stop.wait()

    threads = []
    for _ in range(n):
        t = threading.Thread(target=body, daemon=True)
        t.start()
        threads.append(t)
    for _ in range(n):
        started.acquire()
    return stop, threads


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[:500]}")
    return dt, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--wedge", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "wedge"))
    a = ap.parse_args()
    if not os.path.exists(a.wedge):
        sys.exit(f"{a.wedge} not found: cargo build --release -p wedge")
    stop, _ = spawn_threads(a.threads)
    total = sum(1 for _ in os.scandir("/proc") if _.name.isdigit())
    tasks = int(subprocess.run(["sh", "-c", "ls -d /proc/[0-9]*/task/[0-9]* | wc -l"], capture_output=True, text=True).stdout)
    wedge_cmd = [a.wedge, "ps", "--all", "--json"]
    ps_cmd = ["ps", "-eLo", "pid,tid,stat,wchan:32"]
    timed(wedge_cmd), timed(ps_cmd)  # warm the dentry cache for both
    w, p = [], []
    for _ in range(a.runs):
        w.append(timed(wedge_cmd)[0])
        p.append(timed(ps_cmd)[0])
    _, out = timed(wedge_cmd)
    import json
    snap = json.loads(out)
    seen = snap["stats"]["threads"]
    with_stack = sum(1 for pr in snap["processes"] for t in pr["threads"] if isinstance(t["kernel_stack"], list))
    stop.set()
    wm, pm = statistics.median(w), statistics.median(p)
    print(f"machine: {total} processes, {tasks} threads ({a.threads} spawned by this script)")
    print(f"wedge ps --all --json : median {wm*1000:.1f} ms over {a.runs} runs; {seen} threads, {with_stack} with kernel stacks")
    print(f"ps -eLo pid,tid,stat,wchan:32 : median {pm*1000:.1f} ms")
    # Each wedge run is paired with the ps run right after it: on a shared
    # VM the speed drifts over seconds, and a ratio of neighbours drifts less.
    paired = sorted(wi / pi for wi, pi in zip(w, p))
    print(f"ratio wedge/ps = {wm/pm:.2f} of medians; paired runs: median {statistics.median(paired):.2f}, "
          f"range {paired[0]:.2f}-{paired[-1]:.2f}  (target <= 1.00)")
    print(f"wedge cost per thread = {wm/seen*1e6:.1f} us; ps = {pm/tasks*1e6:.1f} us")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What the block-device mapping costs the verdict: `wedge` (the
whole-machine verdict, release build) with the sysfs device reading on and
off (`--no-devices`), alternated in one run on a machine with N extra
threads (default 10,000). The issue's target: at most 10% more.

Each run with devices is paired with the run without them right after it
(on a shared VM the speed drifts over seconds; neighbours drift less); the
script prints both medians, their ratio and the median of the paired
ratios.

Usage: benches/storage_cost.py [--threads N] [--runs R] [--wedge PATH] [--no-bpf]
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
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode not in (0, 1, 3):
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[:500]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--no-bpf", action="store_true", help="measure the /proc-only verdict")
    ap.add_argument("--wedge", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "wedge"))
    a = ap.parse_args()
    if not os.path.exists(a.wedge):
        sys.exit(f"{a.wedge} not found: cargo build --release -p wedge")
    stop, _ = spawn_threads(a.threads)
    tasks = sum(len(os.listdir(f"/proc/{p}/task")) for p in os.listdir("/proc") if p.isdigit() and os.path.isdir(f"/proc/{p}/task"))
    devices = len(os.listdir("/sys/class/block"))
    base = [a.wedge] + (["--no-bpf"] if a.no_bpf else [])
    on, off = base, base + ["--no-devices"]
    timed(on), timed(off)  # warm the dentry cache for both
    w, wo = [], []
    for _ in range(a.runs):
        w.append(timed(on))
        wo.append(timed(off))
    stop.set()
    m, mo = statistics.median(w), statistics.median(wo)
    paired = sorted(x / y for x, y in zip(w, wo))
    print(f"machine: {tasks} threads ({a.threads} spawned by this script), {devices} block devices")
    print(f"{' '.join(on)} : median {m*1000:.1f} ms over {a.runs} runs")
    print(f"{' '.join(off)} : median {mo*1000:.1f} ms")
    print(f"ratio with/without devices = {m/mo:.3f} of medians; paired runs: median "
          f"{statistics.median(paired):.3f}, range {paired[0]:.3f}-{paired[-1]:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()

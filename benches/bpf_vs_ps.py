#!/usr/bin/env python3
"""The BPF snapshot (crates/wedge-bpf/examples/pass.rs: Bpf::open() and one
task-iterator pass: state, flags, blocker and kernel stack of every thread)
against ps -eLo pid,tid,stat,wchan:32, on a machine with N extra threads
(default 10,000), alternating in the same run.

The target is the BPF process's wall time <= 0.15x ps's. Besides the whole
process, the example reports the pass alone (attach, read, parse) and the
open (BTF parse, CO-RE relocation, verifier), so the cost per thread is the
pass's and the fixed cost is the open's.

Usage: benches/bpf_vs_ps.py [--threads N] [--runs R] [--pass PATH]
Build first: cargo build --release -p wedge-bpf --example pass (as root).
"""
import argparse
import os
import resource
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


def cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def timed(cmd):
    c = cpu()
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[:500]}")
    timed.cpu = cpu() - c
    return dt, r.stdout.decode()


def fields(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--pass", dest="pass_bin",
                    default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "examples", "pass"))
    a = ap.parse_args()
    if not os.path.exists(a.pass_bin):
        sys.exit(f"{a.pass_bin} not found: cargo build --release -p wedge-bpf --example pass")
    stop, _ = spawn_threads(a.threads)
    tasks = int(subprocess.run(["sh", "-c", "ls -d /proc/[0-9]*/task/[0-9]* | wc -l"],
                               capture_output=True, text=True).stdout)
    bpf_cmd = [a.pass_bin]
    ps_cmd = ["ps", "-eLo", "pid,tid,stat,wchan:32"]
    timed(bpf_cmd), timed(ps_cmd)  # warm caches for both
    b, p, inner, bc, pc = [], [], [], [], []
    for _ in range(a.runs):
        dt, out = timed(bpf_cmd)
        b.append(dt)
        bc.append(timed.cpu)
        inner.append(fields(out.strip().splitlines()[-1]))
        p.append(timed(ps_cmd)[0])
        pc.append(timed.cpu)
    stop.set()
    bm, pm = statistics.median(b), statistics.median(p)
    recs = statistics.median(i["records"] for i in inner)
    pass_ms = statistics.median(i["pass_ms"] for i in inner)
    open_ms = statistics.median(i["open_ms"] for i in inner)
    print(f"machine: {tasks} threads ({a.threads} spawned by this script)")
    print(f"BPF open+pass process : median {bm*1000:.1f} ms over {a.runs} runs; {recs:.0f} records; "
          f"inside it: open {open_ms:.1f} ms, pass {pass_ms:.1f} ms")
    print(f"ps -eLo pid,tid,stat,wchan:32 : median {pm*1000:.1f} ms")
    # Each BPF run is paired with the ps run right after it: on a shared VM
    # the speed drifts over seconds, and a ratio of neighbours drifts less.
    paired = sorted(bi / pi for bi, pi in zip(b, p))
    print(f"ratio bpf/ps = {bm/pm:.3f} of medians; paired runs: median {statistics.median(paired):.3f}, "
          f"range {paired[0]:.3f}-{paired[-1]:.3f}  (target <= 0.15)")
    print(f"pass alone / ps = {pass_ms/1000/pm:.3f}")
    # CPU time (user + system) drifts less than wall time on a shared VM.
    print(f"CPU time: bpf {statistics.median(bc)*1000:.1f} ms, ps {statistics.median(pc)*1000:.1f} ms, "
          f"ratio {statistics.median(bc)/statistics.median(pc):.3f}")
    print(f"cost per thread: pass {pass_ms/recs*1e3:.2f} us (+ {open_ms:.0f} ms fixed open); "
          f"ps {pm/tasks*1e6:.1f} us")


if __name__ == "__main__":
    main()

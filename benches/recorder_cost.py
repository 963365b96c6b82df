#!/usr/bin/env python3
"""What `wedge record` costs while it runs: at one sample a second on a
machine with N extra threads (default 10,000, like storage_cost.py), for
each source — BPF with the system-call rings, BPF without them
(`--no-syscalls`), /proc only (`--no-bpf`):

- CPU: utime+stime (and its reaped children's) from /proc/PID/stat over the
  measured window, as % of one CPU (the issue's target: < 0.5 %);
- RSS: VmRSS sampled every few seconds over the window (first, max, last:
  flat or growing?);
- the database's growth (its pages in use) over the window, extrapolated
  to an hour, and its size on disk (file + WAL) at the end; and the
  samples' own scan_ms from the database.

The first --warmup seconds are not measured: they load the BPF programs
and parse kallsyms, BTF and ORC once (reported separately).

Usage: benches/recorder_cost.py [--duration S] [--threads N] [--modes bpf,bpf-nosyscalls,proc]
                                [--interval S] [--wedge PATH]
"""
import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

MODES = {
    "bpf": [],
    "bpf-nosyscalls": ["--no-syscalls"],
    "proc": ["--no-bpf"],
}


def spawn_threads(n):
    threading.stack_size(64 * 1024)
    stop = threading.Event()
    started = threading.Semaphore(0)

    def body():
        started.release()
        stop.wait()

    for _ in range(n):
        threading.Thread(target=body, daemon=True).start()
    for _ in range(n):
        started.acquire()
    return stop


def cpu_ticks(pid):
    """utime + stime + cutime + cstime (fields 14-17 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): fields 14..17 are rest[11..14].
    return sum(int(x) for x in rest[11:15])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def size_on_disk(db):
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


def live_bytes(db):
    """Bytes in the database's pages that hold data (page_count minus the
    free list): what the history takes, whatever the WAL's and the file's
    momentary length (the first samples import the whole boot's kernel log
    into the WAL, which a checkpoint later truncates)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        q = lambda p: c.execute(f"PRAGMA {p}").fetchone()[0]
        return (q("page_count") - q("freelist_count")) * q("page_size")
    finally:
        c.close()


def db_samples(db, since_ms):
    """(count, median scan_ms, max scan_ms, sources) of the samples since."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        rows = c.execute(
            "SELECT scan_ms, source FROM samples WHERE unix_ms >= ?", (since_ms,)
        ).fetchall()
    finally:
        c.close()
    if not rows:
        return 0, 0.0, 0.0, set()
    scans = [r[0] for r in rows]
    return len(rows), statistics.median(scans), max(scans), {r[1] for r in rows}


def measure(a, mode, scratch):
    db = os.path.join(scratch, f"{mode}.db")
    err_path = os.path.join(scratch, f"{mode}.stderr")
    cmd = [a.wedge, "record", "--db", db, "--interval", str(a.interval)] + MODES[mode]
    with open(err_path, "w") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        time.sleep(a.warmup)
        if p.poll() is not None:
            sys.exit(f"{' '.join(cmd)} exited {p.returncode}: {open(err_path).read()[:500]}")
        warm_ticks = cpu_ticks(p.pid)
        t0, c0, s0 = time.monotonic(), warm_ticks, live_bytes(db)
        since_ms = int(time.time() * 1000)
        rss = []
        while time.monotonic() - t0 < a.duration:
            rss.append(rss_kb(p.pid))
            time.sleep(min(5.0, max(0.0, a.duration - (time.monotonic() - t0))))
        c1, t1, s1 = cpu_ticks(p.pid), time.monotonic(), live_bytes(db)
        disk = size_on_disk(db)
        rss.append(rss_kb(p.pid))
        n, scan_med, scan_max, sources = db_samples(db, since_ms)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    start_line = open(err_path).read().strip().splitlines()[:1]
    elapsed = t1 - t0
    return {
        "mode": mode,
        "start": start_line[0] if start_line else "",
        "exit": rc,
        "warmup_cpu_s": warm_ticks / TICK,
        "cpu_pct": 100.0 * (c1 - c0) / TICK / elapsed,
        "elapsed": elapsed,
        "rss": (rss[0], max(rss), rss[-1]),
        "growth_per_h": (s1 - s0) / elapsed * 3600,
        "size": disk,
        "samples": n,
        "scan_med": scan_med,
        "scan_max": scan_max,
        "sources": ",".join(sorted(sources)),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=120, help="measured seconds per mode")
    ap.add_argument("--warmup", type=float, default=8, help="seconds before measuring")
    ap.add_argument("--threads", type=int, default=10_000)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--modes", default="bpf,bpf-nosyscalls,proc")
    ap.add_argument("--wedge", default=os.path.join(ROOT, "target", "release", "wedge"))
    a = ap.parse_args()
    if not os.path.exists(a.wedge):
        sys.exit(f"{a.wedge} not found: cargo build --release -p wedge")
    modes = a.modes.split(",")
    for m in modes:
        if m not in MODES:
            sys.exit(f"--modes: {m!r} is not one of {', '.join(MODES)}")
    stop = spawn_threads(a.threads)
    tasks = sum(
        len(os.listdir(f"/proc/{p}/task"))
        for p in os.listdir("/proc")
        if p.isdigit() and os.path.isdir(f"/proc/{p}/task")
    )
    # Scratch databases under target/, never /tmp.
    os.makedirs(os.path.join(ROOT, "target", "tmp"), exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="recorder-cost-", dir=os.path.join(ROOT, "target", "tmp")) as scratch:
        for m in modes:
            results.append(measure(a, m, scratch))
    stop.set()
    print(f"machine: {tasks} threads ({a.threads} spawned by this script), {os.cpu_count()} CPUs; "
          f"interval {a.interval} s, {a.duration:.0f} s measured per mode after {a.warmup:.0f} s of warm-up")
    for r in results:
        print(f"\n[{r['mode']}] {r['start']}")
        print(f"  CPU      {r['cpu_pct']:.2f} % of one CPU over {r['elapsed']:.0f} s "
              f"(target < 0.5 %); start-up {r['warmup_cpu_s']:.2f} CPU-s")
        print(f"  RSS      first {r['rss'][0] / 1024:.1f} MiB, max {r['rss'][1] / 1024:.1f} MiB, "
              f"last {r['rss'][2] / 1024:.1f} MiB")
        print(f"  database {r['growth_per_h'] / 2**20:.2f} MiB/hour (extrapolated from {r['elapsed']:.0f} s; "
              f"{r['size'] / 2**20:.2f} MiB at the end)")
        print(f"  samples  {r['samples']} ({r['sources']}), scan+diagnosis median {r['scan_med']:.0f} ms, "
              f"max {r['scan_max']:.0f} ms; exit {r['exit']} on SIGTERM")


if __name__ == "__main__":
    main()

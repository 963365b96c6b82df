#!/usr/bin/env python3
"""All-thread backtraces of a 64-thread core: `wedge core` against
`gdb -batch -ex 'thread apply all bt'` on the same core, in the same run.

Builds wedge (release), compiles a C program whose 64 threads block at
different depths in different functions (sleep, condition wait, pipe read,
pause), and makes the kernel dump it (abort in main). Making a kernel core
needs root: core_pattern is pointed at a temp dir and restored on exit.
Without root the core comes from gdb's gcore of the running program.

Target: wedge's wall time <= 0.25 x gdb's. Prints both times and the ratio.

Usage: benches/core_vs_gdb.py [--threads N] [--runs R] [--wedge PATH]
"""
import argparse
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PROGRAM = r"""
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define N NTHREADS
static pthread_barrier_t ready;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int fds[2];
__attribute__((noinline)) static void block(int kind) {
    pthread_barrier_wait(&ready);
    char c;
    switch (kind) {
    case 0: for (;;) sleep(100);
    case 1: pthread_mutex_lock(&mu); for (;;) pthread_cond_wait(&cv, &mu);
    case 2: for (;;) read(fds[0], &c, 1);
    default: for (;;) pause();
    }
}
__attribute__((noinline)) static int level_a(int d, int kind);
__attribute__((noinline)) static int level_b(int d, int kind) {
    volatile char pad[64]; memset((char *)pad, d, sizeof pad);
    if (d <= 0) block(kind); return level_a(d - 1, kind) + pad[1];
}
__attribute__((noinline)) static int level_a(int d, int kind) {
    volatile char pad[32]; memset((char *)pad, d, sizeof pad);
    if (d <= 0) block(kind); return level_b(d - 1, kind) + pad[2];
}
static void *worker(void *arg) {
    long i = (long)arg;
    level_a((int)(i % 9) + 2, (int)(i % 4));
    return 0;
}
int main(int argc, char **argv) {
    pthread_t t[N];
    if (pipe(fds)) return 1;
    pthread_barrier_init(&ready, 0, N + 1);
    for (long i = 0; i < N; i++) pthread_create(&t[i], 0, worker, (void *)i);
    pthread_barrier_wait(&ready);
    usleep(300 * 1000);
    if (argc > 1) for (;;) pause();   /* "hang": for gcore */
    abort();
}
"""


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def timed(cmd, ok=(0,)):
    t = time.perf_counter()
    r = run(cmd)
    dt = time.perf_counter() - t
    if r.returncode not in ok:
        sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[:800]}")
    return dt, r.stdout.decode(errors="replace")


def kernel_core(exe, tmp):
    pattern_file = "/proc/sys/kernel/core_pattern"
    with open(pattern_file) as f:
        saved = f.read().strip()
    cores = os.path.join(tmp, "cores")
    os.makedirs(cores)
    try:
        with open(pattern_file, "w") as f:
            f.write(os.path.join(cores, "%e.%P.core"))

        def unlimited():
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)

        subprocess.run([exe], preexec_fn=unlimited, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        with open(pattern_file, "w") as f:
            f.write(saved)
    found = glob.glob(os.path.join(cores, "*.core"))
    return found[0] if found else None


def gcore_core(exe, tmp):
    p = subprocess.Popen([exe, "hang"])
    time.sleep(1.0)
    out = os.path.join(tmp, "core")
    r = run(["gcore", "-o", out, str(p.pid)])
    p.send_signal(signal.SIGKILL)
    p.wait()
    found = glob.glob(out + "*")
    if r.returncode != 0 or not found:
        sys.exit(f"gcore failed: {r.stderr.decode()[:500]}")
    return found[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--wedge", help="a built wedge binary (default: build release)")
    a = ap.parse_args()
    for tool in ("gcc", "gdb"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wedge = a.wedge
    if not wedge:
        r = subprocess.run(["cargo", "build", "--release", "-q", "-p", "wedge"], cwd=root)
        if r.returncode != 0:
            sys.exit("cargo build failed")
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
        wedge = os.path.join(target, "release", "wedge")

    with tempfile.TemporaryDirectory(prefix="wedge-bench-core-") as tmp:
        src = os.path.join(tmp, "threads.c")
        exe = os.path.join(tmp, "wb-threads")
        with open(src, "w") as f:
            f.write(PROGRAM.replace("NTHREADS", str(a.threads)))
        r = run(["gcc", "-O1", "-g", "-pthread", "-o", exe, src])
        if r.returncode != 0:
            sys.exit(r.stderr.decode())
        core = kernel_core(exe, tmp) if os.geteuid() == 0 else None
        how = "kernel"
        if core is None:
            core, how = gcore_core(exe, tmp), "gcore"
        size = os.path.getsize(core)

        wedge_cmd = [wedge, "core", core]
        gdb_cmd = ["gdb", "-batch", "-nx", "-ex", "set debuginfod enabled off",
                   "-ex", "thread apply all bt", exe, core]
        # Warm the page cache for both (binaries, debug files, the core).
        _, wout = timed(wedge_cmd)
        _, gout = timed(gdb_cmd)
        wt, gt = [], []
        for _ in range(a.runs):
            wt.append(timed(wedge_cmd)[0])
            gt.append(timed(gdb_cmd)[0])
        w, g = statistics.median(wt), statistics.median(gt)
        wthreads = sum(1 for l in wout.splitlines()
                       if l.startswith("thread ") and " of " not in l)
        gthreads = sum(1 for l in gout.splitlines() if l.startswith("Thread "))
        wframes = sum(1 for l in wout.splitlines() if l.lstrip().startswith("#"))
        gframes = sum(1 for l in gout.splitlines() if l.startswith("#"))
        print(f"core: {how}-made, {size / 1e6:.1f} MB, {a.threads + 1} threads")
        print(f"wedge core:            {w * 1000:8.1f} ms  (median of {a.runs}; "
              f"{wthreads} threads, {wframes} frames)")
        print(f"gdb thread apply all bt: {g * 1000:6.1f} ms  (median of {a.runs}; "
              f"{gthreads} threads, {gframes} frames)")
        ratio = w / g
        print(f"ratio wedge/gdb: {ratio:.3f}  (target <= 0.25: "
              f"{'met' if ratio <= 0.25 else 'NOT met'})")


if __name__ == "__main__":
    main()

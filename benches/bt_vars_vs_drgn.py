#!/usr/bin/env python3
"""Every frame variable of every task of a dump, with the same DWARF:
`wedge vmcore DUMP --debuginfo VMLINUX [--debuginfo MODDIR] bt --all --vars
--json` against drgn reading every local of every frame in Python. Not run
in CI (the issue's targets: at most 0.3x drgn's wall time, 0.5x its peak RSS).

Needs: drgn (pip install drgn; 0.3.0 here), the -dbg vmlinux (see
benches/vmcore_vs_drgn.py for unpacking it), `cargo build --release -p wedge`.

Usage:
    benches/bt_vars_vs_drgn.py DUMP --vmlinux PATH [--modules DIR] [--drgn EXE] [--runs N]

Each run is a fresh process (open + unwind + every variable), measured with
GNU time (wall and peak RSS); best of N.
"""
import argparse, os, re, subprocess, tempfile

DRGN_SCRIPT = r'''
from drgn import FaultError
from drgn.helpers.linux.pid import for_each_task
n = 0
for t in for_each_task(prog):
    try:
        trace = prog.stack_trace(t)
    except Exception:
        continue
    for f in trace:
        for name in f.locals():
            try:
                o = f[name]
                if not o.absent_:
                    try:
                        o.read_()
                    except FaultError:
                        pass
                n += 1
            except Exception:
                pass
print(n)
'''


def timed(cmd):
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M"] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.findall(r"TIME ([0-9.]+) ([0-9]+)", r.stderr)
    if r.returncode != 0 or not m:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    return float(m[-1][0]), int(m[-1][1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--vmlinux", required=True)
    ap.add_argument("--modules", help="/usr/lib/debug/lib/modules/RELEASE")
    ap.add_argument("--drgn", default="drgn")
    ap.add_argument("--wedge", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "wedge"))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    w = [a.wedge, "vmcore", a.dump, "--debuginfo", a.vmlinux]
    d = [a.drgn, "-q", "-c", a.dump, "-s", a.vmlinux]
    if a.modules:
        w += ["--debuginfo", a.modules]
        for root, _, files in os.walk(a.modules):
            d += [x for f in files if f == "fuse.ko" for x in ("-s", os.path.join(root, f))]
    w += ["bt", "--all", "--vars", "--json"]
    with tempfile.NamedTemporaryFile("w", suffix=".py") as s:
        s.write(DRGN_SCRIPT)
        s.flush()
        wt = min(timed(w) for _ in range(a.runs))
        dt = min(timed(d + [s.name]) for _ in range(a.runs))
    print("wedge bt --all --vars: %.2f s, peak RSS %d MB" % (wt[0], wt[1] // 1024))
    print("drgn, every local:     %.2f s, peak RSS %d MB" % (dt[0], dt[1] // 1024))
    print("ratio: wall %.2fx, RSS %.2fx" % (wt[0] / dt[0], wt[1] / dt[1]))


if __name__ == "__main__":
    main()

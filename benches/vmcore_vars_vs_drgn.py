#!/usr/bin/env python3
"""wedge vmcore vs drgn with the same DWARF: every frame variable of every
task of a crash dump, and the expression set of scripts/drgn-exprs.tsv.
Not run in CI (a benchmark, not a timed test).

Needs what the tests fetch (scripts/vmcore-debuginfo.sh: the fixture
kernel's -dbg vmlinux and modules, drgn 0.3.0 from PyPI, under the fixture
cache), the crash dump the tests make (cargo test -p wedge --test
vmcore_drgn builds it), and a release wedge:

    cargo build --release -p wedge
    python3 benches/vmcore_vars_vs_drgn.py [--dump DUMP] [--runs N]

Measures, each a fresh process, best of N runs, both tools in the same run:
  - wedge vmcore DUMP --debuginfo VMLINUX --debuginfo MOD.ko... bt --all --vars --json
    against drgn -c DUMP -s VMLINUX -s MOD.ko... scripts/drgn-bt.py --vars;
  - wedge ... eval --json EXPR for each expression (one process each, as
    a user types them) against one drgn process evaluating the whole set.
Wall time and peak RSS (wait4's rusage of the child), and the ratios
(the issue's target for the variables: <= 0.3x drgn's time, <= 0.5x its RSS).
"""
import argparse, glob, json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache():
    return os.environ.get("WEDGE_VMCORE_FIXTURES", os.path.join(ROOT, "target", "vmcore-fixtures"))


def run(cmd, check=True):
    """(wall seconds, peak RSS KiB, stdout) of one fresh process; stdout
    None for a failure when not `check`."""
    with tempfile.TemporaryFile() as out:  # unlinked already: nothing left behind
        t = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.monotonic() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0 and not check:
            return dt, ru.ru_maxrss, None
        if p.returncode != 0:
            sys.exit("%s failed (%d): %s" % (" ".join(cmd[:6]), p.returncode, err.decode()[-2000:]))
        out.seek(0)
        return dt, ru.ru_maxrss, out.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", help="default: the tests' crash boot ELF dump in the fixture cache")
    ap.add_argument("--vmlinux", default=os.environ.get("WEDGE_DEBUGINFO"))
    ap.add_argument("--drgn", default=os.environ.get("WEDGE_DRGN", os.path.join(cache(), "drgn", "bin", "drgn")))
    ap.add_argument("--wedge", default=os.environ.get("WEDGE", os.path.join(ROOT, "target", "release", "wedge")))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    dump = a.dump or next(iter(sorted(glob.glob(os.path.join(cache(), "*", "crash", "elf.dump")))), None)
    if not dump:
        sys.exit("no crash dump under %s: cargo test -p wedge --test vmcore_drgn makes it" % cache())
    vmlinux = a.vmlinux or next(iter(sorted(glob.glob(os.path.join(cache(), "debuginfo/usr/lib/debug/boot/vmlinux-*")))), None)
    if not vmlinux or not os.path.isfile(vmlinux):
        sys.exit("no vmlinux with DWARF: run scripts/vmcore-debuginfo.sh (or --vmlinux PATH)")
    for tool in (a.drgn, a.wedge):
        if not os.path.isfile(tool):
            sys.exit("no %s (scripts/vmcore-debuginfo.sh for drgn, cargo build --release -p wedge)" % tool)
    # The guest's modules beside the vmlinux, in the -dbg package's layout.
    release = os.path.basename(vmlinux)[len("vmlinux-"):]
    debug = os.path.dirname(os.path.dirname(vmlinux))
    mods = [m for m in (os.path.join(debug, "lib/modules", release, "kernel", p)
                        for p in ("fs/fuse/fuse.ko", "drivers/firmware/qemu_fw_cfg.ko")) if os.path.isfile(m)]
    files = [vmlinux] + mods
    wedge = [a.wedge, "vmcore", dump] + [x for f in files for x in ("--debuginfo", f)]
    drgn = [a.drgn, "-q", "--no-default-symbols", "-c", dump] + [x for f in files for x in ("-s", f)]
    script = os.path.join(ROOT, "scripts", "drgn-bt.py")
    print("dump %s (%d MB); DWARF %s + %d module(s); best of %d" % (
        dump, os.path.getsize(dump) >> 20, vmlinux, len(mods), a.runs))

    # Alternate the two so that a machine whose speed drifts treats both alike.
    w, d = [], []
    for _ in range(a.runs):
        w.append(run(wedge + ["bt", "--all", "--vars", "--json"]))
        d.append(run(drgn + [script, "--vars"]))
    wt, wrss = min(r[0] for r in w), min(r[1] for r in w)
    dt, drss = min(r[0] for r in d), min(r[1] for r in d)
    wj, dj = json.loads(w[0][2]), json.loads(d[0][2])

    def count(doc):
        fs = [f for t in doc["tasks"] for f in t["frames"]]
        vs = [v for f in fs for v in f.get("variables") or []]
        return len(doc["tasks"]), len(fs), len(vs), sum(v.get("value") is not None for v in vs)
    print("variables: wedge %d tasks, %d frames, %d variables (%d with a value); drgn %d, %d, %d (%d)" % (
        count(wj) + count(dj)))
    print("  wall: wedge %.3f s, drgn %.3f s: %.2fx (target <= 0.3)" % (wt, dt, wt / dt))
    print("  peak RSS: wedge %.1f MiB, drgn %.1f MiB: %.2fx (target <= 0.5)" % (
        wrss / 1024, drss / 1024, wrss / drss))

    rows = [ln.split("\t") for ln in open(os.path.join(ROOT, "scripts", "drgn-exprs.tsv"))
            if ln.strip() and not ln.startswith("#")]
    exprs = [r[0] for r in rows]
    tsv = os.path.join(ROOT, "scripts", "drgn-exprs.tsv")
    # The rows this wedge answers (a row needing DWARF types of globals
    # fails on a wedge without them): timed; the others named.
    failed = [e for e in exprs if run(wedge + ["eval", "--json", e], check=False)[2] is None]
    if failed:
        print("eval: wedge cannot evaluate %d of the %d expressions, left out: %s" % (
            len(failed), len(exprs), "; ".join(failed)))
    exprs = [e for e in exprs if e not in failed]
    per, total, erss = [], [], []
    d = []
    for _ in range(a.runs):
        rs = [run(wedge + ["eval", "--json", e]) for e in exprs]
        per.append(sorted(r[0] for r in rs)[len(rs) // 2])
        total.append(sum(r[0] for r in rs))
        erss.append(max(r[1] for r in rs))
        d.append(run(drgn + [script, "--exprs", tsv]))
    et, drss2 = min(r[0] for r in d), min(r[1] for r in d)
    print("eval of %d expressions: wedge %.3f s each (median; %.3f s for all, one process each), "
          "drgn %.3f s for all %d in one process" % (len(exprs), min(per), min(total), et, len(rows)))
    print("  one wedge eval / drgn's whole set: %.2fx; all of wedge's / drgn's: %.2fx" % (
        min(per) / et, min(total) / et))
    print("  peak RSS: wedge %.1f MiB (largest eval), drgn %.1f MiB: %.2fx" % (
        min(erss) / 1024, drss2 / 1024, min(erss) / drss2))


if __name__ == "__main__":
    main()

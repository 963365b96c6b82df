#!/usr/bin/env python3
"""wedge vmcore vs drgn on the same dump: every task, its state and its
kernel stack. Not run in CI.

Needs (Debian bookworm):
    apt-get install linux-image-$(REL)-dbg      # ~860 MB, the DWARF drgn needs
      (or, without installing: apt-get download linux-image-$(REL)-dbg &&
       dpkg-deb --fsys-tarfile linux-image-*-dbg_*.deb | tar -x -C /tmp/dbg
       --wildcards '*/boot/vmlinux-*', then --vmlinux /tmp/dbg/usr/lib/debug/boot/vmlinux-$(REL))
    pip install drgn                             # 0.3.0 here
    cargo build --release -p wedge

Usage:
    benches/vmcore_vs_drgn.py DUMP [--vmlinux PATH] [--drgn PYTHON] [--runs N]

drgn gets the -dbg vmlinux; wedge gets nothing but the dump. Reports both wall
times (best of N, each a fresh process: open + list + unwind everything),
their ratio (target: wedge <= 0.5x drgn), and where the two disagree on
tasks, states or the function names of frames drgn prints.
"""
import argparse, json, os, subprocess, sys, tempfile, time

DRGN_SCRIPT = r'''
import json, sys
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char
out = []
for t in for_each_task(prog):
    try:
        # Inlined frames are drgn's reading of DWARF; a stack without
        # debuginfo has only the real (call) frames, so mark them.
        frames = [[f.name or hex(f.pc), bool(f.is_inline)] for f in prog.stack_trace(t)]
    except Exception as e:
        frames = [["<error: %s>" % e, False]]
    out.append({"pid": int(t.pid), "comm": t.comm.string_().decode(),
                "state": task_state_to_char(t), "frames": frames})
json.dump(out, sys.stdout)
'''

ALIASES = {"entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64"}

def base(name):
    # GCC's clones and split-off cold parts (.constprop.0, .isra.0, .part.0,
    # .cold) are the same source function; DWARF names the function, the
    # symbol table the clone.
    name = ALIASES.get(name, name)
    return name.split(".")[0] if "." in name and not name.startswith(".") else name

def run(cmd):
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (cmd[0], p.returncode, p.stderr[-2000:]))
    return dt, p.stdout

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--vmlinux")
    venv = "target/drgn-venv/bin/python3"
    ap.add_argument("--drgn", default=venv if os.path.exists(venv) else sys.executable)
    ap.add_argument("--wedge", default=os.environ.get("WEDGE", "target/release/wedge"))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    wt, wout = min((run([a.wedge, "--json", "vmcore", a.dump, "tasks"]) for _ in range(a.runs)), key=lambda r: r[0])
    wedge = {r["task"]["pid"]: r for r in json.loads(wout)}
    rel = None
    for line in subprocess.run([a.wedge, "--json", "vmcore", a.dump], capture_output=True, text=True).stdout.splitlines():
        if '"kernel_release"' in line:
            rel = line.split('"')[3]
    vmlinux = a.vmlinux or "/usr/lib/debug/boot/vmlinux-%s" % rel
    if not os.path.exists(vmlinux):
        sys.exit("no %s: apt-get install linux-image-%s-dbg" % (vmlinux, rel))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(DRGN_SCRIPT)
    dt, dout = min((run([a.drgn, "-m", "drgn", "-c", a.dump, "-s", vmlinux, f.name]) for _ in range(a.runs)), key=lambda r: r[0])
    drgn = {r["pid"]: r for r in json.loads(dout)}

    diffs, frames_checked, frames_matched, unnamed_by_drgn, zombies = [], 0, 0, 0, 0
    for pid, d in sorted(drgn.items()):
        w = wedge.get(pid)
        if w is None:
            diffs.append("pid %d (%s): not listed by wedge" % (pid, d["comm"]))
            continue
        if w["task"]["comm"] != d["comm"]:
            diffs.append("pid %d: comm %r vs drgn %r" % (pid, w["task"]["comm"], d["comm"]))
        ws = w["task"]["state"]
        wcode = {"running": "R", "sleeping": "S", "disk_sleep": "D", "stopped": "T",
                 "tracing_stop": "t", "zombie": "Z", "dead": "X", "parked": "P", "idle": "I"}.get(ws, "?")
        if wcode != d["state"]:
            diffs.append("pid %d (%s): state %s vs drgn %s" % (pid, d["comm"], wcode, d["state"]))
        wf = [f["function"] for f in (w.get("stack") or {}).get("frames", []) if f.get("function")]
        # Every real (non-inline) frame drgn names must be wedge's frame at
        # the same depth. kallsyms has entry_SYSCALL_64_after_hwframe, a
        # label inside entry_SYSCALL_64 that DWARF does not name. A frame
        # drgn can only print as an address (a module without debuginfo)
        # keeps its depth but is not compared; wedge names it from the
        # module's own symbols.
        if d["state"] == "Z":
            # A zombie's kernel stack is freed when it last schedules
            # (put_task_stack); /proc/PID/stack shows nothing, and so does
            # wedge. drgn unwinds whatever the freed pages still hold.
            zombies += 1
            continue
        real = [n for n, inline in d["frames"] if not inline and not n.startswith("<error")]
        wf = [base(n) for n in wf]
        for i, name in enumerate(real):
            if name.startswith("0x"):
                if i < len(wf) and len(real) > i + 1:
                    unnamed_by_drgn += 1
                continue
            name = base(name)
            frames_checked += 1
            if i >= len(wf) or wf[i] != name:
                diffs.append("pid %d (%s): frame %d is %s, drgn says %s" % (
                    pid, d["comm"], i, wf[i] if i < len(wf) else "missing", name))
                break
            frames_matched += 1
    only_wedge = sorted(set(wedge) - set(drgn))
    print("tasks: wedge %d, drgn %d (only wedge: %s; drgn's for_each_task skips the idle tasks)" % (
        len(wedge), len(drgn), ", ".join("%d %s" % (p, wedge[p]["task"]["comm"]) for p in only_wedge) or "none"))
    print("real frames named by drgn: %d, the same function at the same depth in wedge: %d" % (
        frames_checked, frames_matched))
    print("frames drgn printed as bare addresses (modules without debuginfo), named by wedge: %d" % unnamed_by_drgn)
    print("zombies not compared (their stacks are freed; drgn reads stale pages): %d" % zombies)
    print("wall time: wedge %.3f s (no debuginfo), drgn %.3f s (with %s)" % (wt, dt, vmlinux))
    print("ratio wedge/drgn: %.2f (target <= 0.5)" % (wt / dt))
    for d in diffs[:50]:
        print("  " + d)
    print("%d differences" % len(diffs))

if __name__ == "__main__":
    main()

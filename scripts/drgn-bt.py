# drgn's reading of a kernel crash dump in the JSON shapes wedge prints, so
# that the two compare field by field (crates/wedge/tests/vmcore_drgn.rs,
# benches/vmcore_vars_vs_drgn.py). Runs under drgn, given the same DWARF
# wedge gets:
#
#   drgn -q --no-default-symbols -c DUMP -s VMLINUX [-s MODULE.ko]... \
#       scripts/drgn-bt.py [--vars] [PID...]
#     -> wedge vmcore DUMP bt --all|PID... [--vars] --json:
#        {"tasks": [{"pid", "comm", "state", "frames": [{"function", "inline", "file",
#         "line", "variables": [{"name", "type", "value"}]}]}]}
#
#   drgn ... scripts/drgn-bt.py --exprs FILE
#     -> for each line of FILE (scripts/drgn-exprs.tsv: the C expression
#        wedge evaluates, TAB, the same in drgn's Python), wedge vmcore DUMP
#        eval --json EXPR's {"type", "value"}, as one JSON list:
#        [{"expr", "type", "value"} or {"expr", "error"}]
#
# Frames are the kernel stack's, the user-space frames drgn goes on to
# after a syscall's pt_regs left out (counted in "user_frames").
# Without PIDs every task: init_task and the idle task of each other online
# CPU (pid 0, swapper/N: drgn's for_each_task skips them, wedge lists them)
# then every thread.
# --no-default-symbols keeps drgn to the files given: no debuginfod
# download, no /usr/lib/debug of the host's own kernel.
#
# Values as wedge's JSON prints them: integers, enums and pointers as
# integers, bool as true/false, char arrays as strings up to the first NUL,
# other arrays as lists, structs and unions as objects of their members
# (anonymous members' members in their place), null past the depth limit
# or for a type with no value. A variable drgn reads as absent (optimised
# out at that pc) is null with "absent": true; one whose read fails is null
# with "error"; a variable that is not a scalar, pointer, enum or bool is
# null with "scalar": false (frame variables are compared as scalars only).
import itertools
import json
import sys

import drgn
from drgn import Object, TypeKind, cast, container_of, offsetof, sizeof  # noqa: F401
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.percpu import per_cpu, per_cpu_ptr  # noqa: F401
from drgn.helpers.linux.pid import find_task, for_each_task  # noqa: F401
from drgn.helpers.linux.sched import idle_task, task_state_to_char

prog = drgn.get_default_prog()

# wedge-kmem's print::Limits: structs nested deeper than this are null,
# arrays twice as deep, at most this many array elements.
DEPTH = 3
ELEMENTS = 1024
SCALARS = (TypeKind.INT, TypeKind.BOOL, TypeKind.ENUM, TypeKind.POINTER)
# x86-64: the kernel half of the address space (4- and 5-level paging).
KERNEL_START = 0xFF00000000000000


def underlying(t):
    t = t.unqualified()
    while t.kind == TypeKind.TYPEDEF:
        t = t.type.unqualified()
    return t


def members(t):
    # Anonymous structs and unions: their members in their place, as
    # wedge (and C) name them.
    for m in t.members:
        if m.name is None:
            yield from members(underlying(m.type))
        else:
            yield m.name


def value(obj, depth=0):
    t = underlying(obj.type_)
    if t.kind == TypeKind.BOOL:
        return bool(obj.value_())
    if t.kind in (TypeKind.INT, TypeKind.ENUM, TypeKind.POINTER):
        return int(obj.value_())
    if t.kind == TypeKind.FLOAT:
        return float(obj.value_())
    if t.kind == TypeKind.ARRAY:
        elem = underlying(t.type)
        if elem.kind == TypeKind.INT and sizeof(elem) == 1 and "char" in (elem.name or ""):
            return obj.string_().decode("utf-8", "replace")
        if depth >= DEPTH * 2:
            return None
        n = min(t.length or 0, ELEMENTS)
        return [value(obj[i], depth + 1) for i in range(n)]
    if t.kind in (TypeKind.STRUCT, TypeKind.UNION):
        if depth >= DEPTH:
            return None
        return {name: value(obj.member_(name), depth + 1) for name in members(t)}
    return None


def variable(frame, name):
    v = {"name": name, "type": None, "value": None}
    try:
        obj = frame[name]
        v["type"] = obj.type_.type_name()
        if obj.absent_:
            v["absent"] = True
        elif underlying(obj.type_).kind in SCALARS:
            v["value"] = value(obj)
        else:
            v["scalar"] = False
    except Exception as e:  # a fault reading memory, a location drgn cannot evaluate
        v["error"] = str(e)
    return v


def frame_json(frame, with_vars):
    try:
        file, line, _column = frame.source()
    except LookupError:  # no line information at this pc
        file, line = None, None
    f = {
        "function": frame.name or hex(frame.pc),
        "inline": bool(frame.is_inline),
        "file": file,
        "line": line,
    }
    if with_vars:
        f["variables"] = [variable(frame, n) for n in frame.locals()]
    return f


def task_json(task, with_vars):
    # The state lets a comparison leave out zombies: their stack pages are
    # freed (put_task_stack) and drgn unwinds whatever the pages still hold.
    t = {
        "pid": int(task.pid),
        "comm": task.comm.string_().decode("utf-8", "replace"),
        "state": task_state_to_char(task),
    }
    try:
        trace = list(prog.stack_trace(task))
    except Exception as e:  # a stack drgn cannot unwind: say so, keep going
        trace = []
        t["error"] = str(e)
    # The kernel stack only, as wedge gives it: from a syscall's pt_regs
    # drgn goes on into the user program's frames (bare addresses here),
    # and past them into whatever user memory looks like a frame.
    kernel = list(itertools.takewhile(lambda f: f.pc >= KERNEL_START, trace))
    t["frames"] = [frame_json(f, with_vars) for f in kernel]
    t["user_frames"] = len(trace) - len(kernel)
    return t


def tasks(pids):
    if pids:
        for pid in pids:
            task = find_task(prog, pid)
            if task:
                yield task
            else:
                print("drgn-bt: no task %d" % pid, file=sys.stderr)
        return
    # init_task (the boot CPU's idle task) always, as the task list holds
    # it, and the other online CPUs' idle tasks: a panic's smp_send_stop
    # takes CPUs offline, the boot CPU too when another one panicked.
    init = prog["init_task"].address_of_()
    yield init
    for cpu in for_each_online_cpu(prog):
        idle = idle_task(prog, cpu)
        if idle.value_() != init.value_():
            yield idle
    yield from for_each_task(prog)


def evaluate(line):
    expr, _, py = line.partition("\t")
    py = py.split("\t")[0].strip()
    r = {"expr": expr}
    try:
        obj = eval(py)
        r["type"] = obj.type_.type_name()
        r["value"] = None if obj.absent_ else value(obj)
    except Exception as e:
        r["error"] = "%s: %s" % (type(e).__name__, e)
    return r


def main(argv):
    if argv[:1] == ["--exprs"]:
        with open(argv[1]) as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith("#")]
        json.dump([evaluate(ln) for ln in lines], sys.stdout)
        return
    with_vars = "--vars" in argv
    pids = [int(a) for a in argv if a != "--vars"]
    json.dump({"tasks": [task_json(t, with_vars) for t in tasks(pids)]}, sys.stdout)


main(sys.argv[1:])

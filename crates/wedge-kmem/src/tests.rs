//! The evaluator and printer on a small in-memory kernel: hand-built BTF
//! (the kernel's layouts, shrunk) and memory holding an `init_task`, a
//! second task linked to it, and per-CPU run queues for two CPUs.

use crate::cmd;
use crate::source::{Fault, KernelMemory, SymbolAt};
use std::collections::BTreeMap;
use wedge_vmcore::btf::Btf;

/// BTF written the way pahole writes it.
#[derive(Default)]
struct BtfBuilder {
    types: Vec<u8>,
    strs: Vec<u8>,
    n: u32,
}

impl BtfBuilder {
    fn new() -> BtfBuilder {
        BtfBuilder {
            strs: vec![0],
            ..Default::default()
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strs.len() as u32;
        self.strs.extend(name.as_bytes());
        self.strs.push(0);
        off
    }
    fn ty(&mut self, name: &str, kind: u32, vlen: u32, kflag: bool, sz: u32, extra: &[u32]) -> u32 {
        let n = self.s(name);
        self.types.extend(n.to_le_bytes());
        self.types
            .extend((vlen | (kind << 24) | ((kflag as u32) << 31)).to_le_bytes());
        self.types.extend(sz.to_le_bytes());
        for e in extra {
            self.types.extend(e.to_le_bytes());
        }
        self.n += 1;
        self.n
    }
    fn int(&mut self, name: &str, size: u32, enc: u32) -> u32 {
        self.ty(name, 1, 0, false, size, &[(enc << 24) | (size * 8)])
    }
    fn ptr(&mut self, to: u32) -> u32 {
        self.ty("", 2, 0, false, to, &[])
    }
    fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        self.ty("", 3, 0, false, 0, &[elem, index, n])
    }
    /// Members: (name, type, bit offset, bit-field width).
    fn record(
        &mut self,
        kind: u32,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u32)],
    ) -> u32 {
        let kflag = members.iter().any(|m| m.3 != 0);
        let mut extra = Vec::new();
        for (n, t, off, bits) in members {
            extra.push(self.s(n));
            extra.push(*t);
            extra.push(if kflag { (bits << 24) | off } else { *off });
        }
        self.ty(name, kind, members.len() as u32, kflag, size, &extra)
    }
    fn build(self) -> Btf {
        let mut b = Vec::new();
        b.extend(0xeb9fu16.to_le_bytes());
        b.extend([1u8, 0]);
        b.extend(24u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((self.types.len() as u32).to_le_bytes());
        b.extend((self.types.len() as u32).to_le_bytes());
        b.extend((self.strs.len() as u32).to_le_bytes());
        b.extend(self.types);
        b.extend(self.strs);
        Btf::parse(b).expect("test BTF parses")
    }
}

const INIT_TASK: u64 = 0xffff_ffff_8200_0000;
const TASK1: u64 = 0xffff_8880_0010_0000;
const PCPU0: u64 = 0xffff_8880_1000_0000;
const PCPU1: u64 = 0xffff_8880_1010_0000;
const RUNQUEUES: u64 = 0x2_0000;
/// Two functions: `fake_fn` calls `fake_fn2`.
const TEXT: u64 = 0xffff_ffff_8100_0000;
/// `fake_fn`: push rbp; call fake_fn2; pop rbp; ret; int3 — then `fake_fn2`: ret.
const CODE: [u8; 10] = [0x55, 0xe8, 0x03, 0, 0, 0, 0x5d, 0xc3, 0xcc, 0xc3];
/// `fake_gs`: per-CPU reads through GS, as this_cpu_read() compiles.
const GS_TEXT: u64 = TEXT + 0x40;
const GS_CODE: [u8; 33] = [
    // mov rax, gs:[0x20000]   (runqueues)
    0x65, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00,
    // mov eax, gs:[0x20008]   (runqueues+0x8)
    0x65, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x02, 0x00,
    // mov rax, gs:[rax+0x20000]   (a base register: not named)
    0x65, 0x48, 0x8b, 0x80, 0x00, 0x00, 0x02, 0x00,
    // inc dword ptr gs:[rip+disp], then ret: disp (filled in by fake())
    // wraps the next instruction's address (GS_TEXT + 32) round to 0x20004
    0x65, 0xff, 0x05, 0, 0, 0, 0, 0xc3,
];
/// A corrupt list: its head leads to A, A to B, B back to A.
const CYCLE: u64 = 0xffff_8880_0020_0000;
/// An hlist_head, and a chain of two `struct pid_entry` on it.
const HLIST: u64 = 0xffff_8880_0030_0000;
/// A list made up on read: the node at GEN + 16 i points to the next,
/// for longer than MAX_LIST.
const GEN: u64 = 0xffff_c900_0000_0000;
const GEN_NODES: u64 = 200_000;

struct Fake {
    btf: Btf,
    mem: BTreeMap<u64, Vec<u8>>,
    syms: Vec<(&'static str, u64)>,
}

impl KernelMemory for Fake {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        if (GEN..GEN + 16 * GEN_NODES).contains(&addr) {
            for (i, b) in buf.iter_mut().enumerate() {
                let a = addr + i as u64;
                let (node, off) = ((a - GEN) / 16, (a - GEN) % 16);
                let next = GEN + 16 * (node + 1);
                *b = if off < 8 {
                    next.to_le_bytes()[off as usize]
                } else {
                    0
                };
            }
            return Ok(());
        }
        let Some((start, bytes)) = self.mem.range(..=addr).next_back() else {
            return Err(Fault {
                addr,
                detail: "not mapped".into(),
            });
        };
        let off = (addr - start) as usize;
        match bytes.get(off..off + buf.len()) {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(Fault {
                addr,
                detail: "not mapped".into(),
            }),
        }
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| s.0 == name).map(|s| s.1)
    }
    fn symbolize(&self, addr: u64) -> Option<String> {
        (INIT_TASK..INIT_TASK + 128).contains(&addr).then(|| {
            let off = addr - INIT_TASK;
            if off == 0 {
                "init_task+0".to_string()
            } else {
                format!("init_task+{off:#x}")
            }
        })
    }
    fn symbol_at(&self, addr: u64) -> Option<SymbolAt> {
        // The kernel image only: as kallsyms, a symbol reaches the next.
        let mut image: Vec<_> = self.syms.iter().filter(|s| s.1 >= TEXT).collect();
        image.sort_by_key(|s| s.1);
        let i = image.partition_point(|s| s.1 <= addr);
        let s = image.get(i.checked_sub(1)?)?;
        let next = image.get(i).map(|n| n.1)?;
        Some(SymbolAt {
            name: s.0.to_string(),
            start: s.1,
            size: Some(next - s.1),
            kind: self.symbol_kind(s.0)?,
            module: None,
        })
    }
    fn symbol_kind(&self, name: &str) -> Option<char> {
        let a = self.symbol(name)?;
        Some(if (TEXT..INIT_TASK).contains(&a) {
            'T'
        } else {
            'D'
        })
    }
    fn for_each_symbol(&self, f: &mut dyn FnMut(&str)) {
        for s in &self.syms {
            f(s.0);
        }
    }
    fn per_cpu_symbol_at(&self, offset: u64) -> Option<(String, u64)> {
        let end = self.symbol("__per_cpu_end")?;
        self.syms
            .iter()
            .filter(|s| s.1 <= offset && offset < end && s.1 != end)
            .max_by_key(|s| s.1)
            .map(|s| (s.0.to_string(), offset - s.1))
    }
    fn per_cpu_offset(&self, cpu: u32) -> Result<u64, String> {
        match cpu {
            0 => Ok(PCPU0),
            1 => Ok(PCPU1),
            _ => Err(format!("CPU {cpu} does not exist (nr_cpu_ids is 2)")),
        }
    }
    fn btf(&self) -> &Btf {
        &self.btf
    }
    fn crashed_cpu(&self) -> Option<u32> {
        Some(1)
    }
    fn crashed_task(&self) -> Option<u64> {
        Some(TASK1)
    }
    fn task(&self, pid: i64) -> Option<u64> {
        match pid {
            0 => Some(INIT_TASK),
            1 => Some(TASK1),
            _ => None,
        }
    }
}

/// struct task_struct {             // 72 bytes
///     pid_t pid;                   // 0
///     char comm[16];               // 4
///     struct list_head tasks;      // 24
///     unsigned int flags:3;        // 40, bits 0-2
///     int prio:5;                  // 40, bits 3-7
///     union { long a; int b; };    // 48
///     struct task_struct *parent;  // 56
///     int vals[2];                 // 64
///     enum state st;               // 72 → size 80
/// };
fn fake() -> Fake {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, 1);
    let ch = b.int("char", 1, 3);
    let ulong = b.int("long unsigned int", 8, 0);
    let uint = b.int("unsigned int", 4, 0);
    let long = b.int("long int", 8, 1);
    let lh_ptr_slot = b.n + 2;
    let list_head = b.record(
        4,
        "list_head",
        16,
        &[("next", lh_ptr_slot, 0, 0), ("prev", lh_ptr_slot, 64, 0)],
    );
    let lh_ptr = b.ptr(list_head);
    assert_eq!(lh_ptr, lh_ptr_slot);
    let comm = b.array(ch, int, 16);
    let pid_t = b.ty("pid_t", 8, 0, false, int, &[]);
    let anon = b.record(5, "", 8, &[("a", long, 0, 0), ("b", int, 0, 0)]);
    let vals = b.array(int, int, 2);
    let state = {
        let (r, s) = (b.s("RUNNING"), b.s("SLEEPING"));
        b.ty("state", 6, 2, false, 4, &[r, 0, s, 1])
    };
    let ts_ptr_slot = b.n + 2;
    let task = b.record(
        4,
        "task_struct",
        80,
        &[
            ("pid", pid_t, 0, 0),
            ("comm", comm, 32, 0),
            ("tasks", list_head, 192, 0),
            ("flags", uint, 320, 3),
            ("prio", int, 323, 5),
            ("", anon, 384, 0),
            ("parent", ts_ptr_slot, 448, 0),
            ("vals", vals, 512, 0),
            ("st", state, 576, 0),
        ],
    );
    let ts_ptr = b.ptr(task);
    assert_eq!(ts_ptr, ts_ptr_slot);
    let rq = b.record(4, "rq", 16, &[("cpu", int, 0, 0), ("clock", ulong, 64, 0)]);
    b.ty("runqueues", 14, 0, false, rq, &[1]);
    let _ = uint;
    // struct hlist_node { struct hlist_node *next, **pprev; };
    // struct hlist_head { struct hlist_node *first; };
    // struct pid_entry { int nr; struct hlist_node node; };   // 24 bytes
    let hn_ptr_slot = b.n + 2;
    let hlist_node = b.record(
        4,
        "hlist_node",
        16,
        &[("next", hn_ptr_slot, 0, 0), ("pprev", hn_ptr_slot, 64, 0)],
    );
    let hn_ptr = b.ptr(hlist_node);
    assert_eq!(hn_ptr, hn_ptr_slot);
    b.record(4, "hlist_head", 8, &[("first", hn_ptr, 0, 0)]);
    b.record(
        4,
        "pid_entry",
        24,
        &[("nr", int, 0, 0), ("node", hlist_node, 64, 0)],
    );

    let task_bytes = |pid: i32, comm: &str, next: u64, prev: u64, flags: u8, parent: u64| {
        let mut t = vec![0u8; 80];
        t[0..4].copy_from_slice(&pid.to_le_bytes());
        t[4..4 + comm.len()].copy_from_slice(comm.as_bytes());
        t[24..32].copy_from_slice(&next.to_le_bytes());
        t[32..40].copy_from_slice(&prev.to_le_bytes());
        t[40] = flags;
        t[48..56].copy_from_slice(&(-2i64).to_le_bytes());
        t[56..64].copy_from_slice(&parent.to_le_bytes());
        t[64..68].copy_from_slice(&7i32.to_le_bytes());
        t[68..72].copy_from_slice(&9i32.to_le_bytes());
        t[72..76].copy_from_slice(&1u32.to_le_bytes());
        t
    };
    let mut mem = BTreeMap::new();
    // flags 0b101, prio -1 (all five bits set): byte 0b1111_1101.
    mem.insert(
        INIT_TASK,
        task_bytes(0, "swapper/0", TASK1 + 24, TASK1 + 24, 0xfd, INIT_TASK),
    );
    mem.insert(
        TASK1,
        task_bytes(1, "init", INIT_TASK + 24, INIT_TASK + 24, 0, INIT_TASK),
    );
    let rq_bytes = |cpu: i32| {
        let mut r = vec![0u8; 16];
        r[0..4].copy_from_slice(&cpu.to_le_bytes());
        r[8..16].copy_from_slice(&(1000 + cpu as u64).to_le_bytes());
        r
    };
    let words = |w: &[u64]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    mem.insert(TEXT, CODE.to_vec());
    let mut gs = GS_CODE.to_vec();
    let disp = 0x20004u64.wrapping_sub(GS_TEXT + 32) as u32;
    gs[28..32].copy_from_slice(&disp.to_le_bytes());
    mem.insert(GS_TEXT, gs);
    // The cycle: head → A (+0x10) → B (+0x20) → A.
    mem.insert(
        CYCLE,
        words(&[CYCLE + 0x10, 0, CYCLE + 0x20, 0, CYCLE + 0x10, 0]),
    );
    // hlist head at HLIST; entries at +0x10 (nr 7) and +0x30 (nr 8):
    // their node members at +0x18 and +0x38.
    mem.insert(
        HLIST,
        words(&[
            HLIST + 0x18,
            0,
            7,
            HLIST + 0x38,
            HLIST,
            0,
            8,
            0,
            HLIST + 0x18,
        ]),
    );
    mem.insert(PCPU0 + RUNQUEUES, rq_bytes(0));
    mem.insert(PCPU1 + RUNQUEUES, rq_bytes(1));
    Fake {
        btf: b.build(),
        mem,
        syms: vec![
            ("init_task", INIT_TASK),
            ("runqueues", RUNQUEUES),
            ("init_tasks_x", 0x1),
            ("__per_cpu_end", 0x3_0000),
            ("fake_fn", TEXT),
            ("fake_fn2", TEXT + 9),
            ("fake_gs", GS_TEXT),
            ("_etext", TEXT + 10),
            ("_end", INIT_TASK + 0x1000),
        ],
    }
}

fn ev(e: &str) -> String {
    cmd::eval(&fake(), e, false).unwrap_or_else(|err| panic!("{e}:\n{err}"))
}
fn js(e: &str) -> serde_json::Value {
    let out = cmd::eval(&fake(), e, true).unwrap_or_else(|err| panic!("{e}:\n{err}"));
    serde_json::from_str(&out).unwrap()
}
fn err(e: &str) -> String {
    match cmd::eval(&fake(), e, false) {
        Ok(v) => panic!("{e}: expected an error, got {v}"),
        Err(m) => m,
    }
}

#[test]
fn members_typedefs_strings_and_bitfields() {
    assert_eq!(ev("init_task.comm"), "(char [16])\"swapper/0\"\n");
    assert_eq!(ev("init_task.pid"), "(pid_t)0\n");
    assert_eq!(ev("task(1)->comm"), "(char [16])\"init\"\n");
    assert_eq!(ev("init_task.flags"), "(unsigned int)5\n");
    assert_eq!(ev("init_task.prio"), "(int)-1\n");
    // Through the anonymous union.
    assert_eq!(ev("init_task.a"), "(long int)-2\n");
    assert_eq!(ev("init_task.b"), "(int)-2\n");
    assert_eq!(ev("init_task.st"), "(enum state)SLEEPING\n");
    assert_eq!(ev("init_task.vals[1]"), "(int)9\n");
    assert_eq!(ev("init_task.comm[1]"), "(char)119\n");
    // Pointers name what they point into.
    assert_eq!(
        ev("init_task.parent"),
        format!("(struct task_struct *){INIT_TASK:#x} <init_task+0>\n")
    );
    assert_eq!(
        ev("init_task.tasks.next->next"),
        format!(
            "(struct list_head *){:#x} <init_task+0x18>\n",
            INIT_TASK + 24
        )
    );
    // Following pointers with '.', as drgn does.
    assert_eq!(ev("init_task.parent.parent.pid"), "(pid_t)0\n");
}

#[test]
fn casts_and_addresses() {
    assert_eq!(ev("((struct task_struct *)&init_task)->pid"), "(pid_t)0\n");
    assert_eq!(
        ev("(*(struct task_struct *)((char *)init_task.tasks.next - 24)).pid"),
        "(pid_t)1\n"
    );
    assert_eq!(ev("(unsigned char)-1"), "(unsigned char)255\n");
    assert_eq!(ev("(long)(int)0xffffffff"), "(long)-1\n");
    assert_eq!(ev("(pid_t)7 + 1"), "(int)8\n");
    assert_eq!(ev("(bool)5"), "(bool)true\n");
    assert_eq!(
        ev("&init_task"),
        format!("(struct task_struct *){INIT_TASK:#x} <init_task+0>\n")
    );
    assert_eq!(ev("*&init_task.pid"), "(pid_t)0\n");
}

#[test]
fn pointer_arithmetic_and_difference() {
    assert_eq!(ev("&init_task.tasks - &init_task.tasks"), "(ptrdiff_t)0\n");
    assert_eq!(
        ev("&init_task.vals[1] - &init_task.vals[0]"),
        "(ptrdiff_t)1\n"
    );
    assert_eq!(
        ev("&init_task.comm[9] - &init_task.comm[2]"),
        "(ptrdiff_t)7\n"
    );
    assert_eq!(
        ev("&init_task.comm[2] - &init_task.comm[9]"),
        "(ptrdiff_t)-7\n"
    );
    // An array decays to a pointer to its first element.
    assert_eq!(ev("&init_task.vals[1] - init_task.vals"), "(ptrdiff_t)1\n");
    assert_eq!(ev("*(init_task.vals + 1)"), "(int)9\n");
    assert_eq!(
        ev("(&init_task.tasks + 1) == (struct list_head *)((char *)&init_task.tasks + 16)"),
        "(bool)true\n"
    );
    assert_eq!(
        ev("(char *)&init_task.comm + 4 - (char *)&init_task"),
        "(ptrdiff_t)8\n"
    );
    assert!(err("&init_task.vals[1] - &init_task.tasks").contains("different sizes"));
    assert!(err("&init_task * 2").contains("does not apply to pointers"));
}

#[test]
fn precedence_and_integer_arithmetic() {
    assert_eq!(ev("1 + 2 * 3"), "(int)7\n");
    assert_eq!(ev("(1 + 2) * 3"), "(int)9\n");
    assert_eq!(ev("10 - 2 - 3"), "(int)5\n");
    assert_eq!(ev("1 << 4 | 1"), "(int)17\n");
    assert_eq!(ev("-1 < 0"), "(bool)true\n");
    // The usual conversions: -1 as unsigned is the largest value.
    assert_eq!(ev("-1 < 0u + (unsigned int)0"), "(bool)false\n");
    assert_eq!(ev("~0 & 0xff"), "(int)255\n");
    assert_eq!(ev("!0 && 2 || 0"), "(bool)true\n");
    assert_eq!(ev("7 / 2 + 7 % 2"), "(int)4\n");
    assert_eq!(
        ev("0xffffffffffffffff"),
        "(unsigned long)18446744073709551615\n"
    );
    assert_eq!(ev("RUNNING + SLEEPING"), "(int)1\n");
    // && short-circuits: the right side is never read.
    assert_eq!(ev("0 && *(int *)0"), "(bool)false\n");
    assert!(err("1 / 0").contains("division by zero"));
}

#[test]
fn the_conditional_operator() {
    assert_eq!(ev("1 ? 2 : 3"), "(int)2\n");
    assert_eq!(ev("0 ? 2 : 3"), "(int)3\n");
    // Right-associative, below ||, a whole expression in the middle.
    assert_eq!(ev("0 ? 1 : 0 ? 2 : 3"), "(int)3\n");
    assert_eq!(ev("1 ? 0 ? 4 : 5 : 6"), "(int)5\n");
    assert_eq!(ev("0 || 0 ? 7 : 8"), "(int)8\n");
    assert_eq!(ev("1 ? 1 + 2 : 0"), "(int)3\n");
    // Lazy: the branch not taken is never read, nor its names looked up.
    assert_eq!(ev("0 ? *(int *)0 : 9"), "(int)9\n");
    assert_eq!(ev("1 ? 9 : no_such_symbol"), "(int)9\n");
    // Pointers as conditions and as values; the value keeps its type.
    assert_eq!(
        ev("(task(1)->parent ? task(1)->parent : task(1))->comm"),
        "(char [16])\"swapper/0\"\n"
    );
    assert_eq!(
        ev("init_task.comm[0] == 's' ? init_task.pid : -1"),
        "(pid_t)0\n"
    );
    // The condition's own errors point at it.
    let e = err("init_task ? 1 : 2");
    assert!(e.contains("is not a number or a pointer"), "{e}");
    assert!(e.contains("column 1"), "{e}");
}

#[test]
fn sizeof_offsetof_container_of() {
    assert_eq!(ev("sizeof(struct task_struct)"), "(unsigned long)80\n");
    assert_eq!(ev("sizeof(pid_t)"), "(unsigned long)4\n");
    assert_eq!(ev("sizeof(init_task.comm)"), "(unsigned long)16\n");
    assert_eq!(
        ev("offsetof(struct task_struct, tasks)"),
        "(unsigned long)24\n"
    );
    assert_eq!(
        ev("offsetof(struct task_struct, tasks.prev)"),
        "(unsigned long)32\n"
    );
    assert_eq!(ev("offsetof(struct task_struct, b)"), "(unsigned long)48\n");
    assert_eq!(
        ev("container_of(&init_task.tasks, struct task_struct, tasks) == &init_task"),
        "(bool)true\n"
    );
    assert_eq!(
        ev("container_of(init_task.tasks.next, struct task_struct, tasks)->comm"),
        "(char [16])\"init\"\n"
    );
    assert!(err("offsetof(struct task_struct, flags)").contains("bit field"));
}

#[test]
fn per_cpu_and_crash_helpers() {
    assert_eq!(ev("per_cpu(runqueues, 0).cpu"), "(int)0\n");
    assert_eq!(
        ev("per_cpu(runqueues, 1).clock"),
        "(long unsigned int)1001\n"
    );
    assert_eq!(ev("per_cpu_ptr(&runqueues, 1)->cpu"), "(int)1\n");
    assert_eq!(ev("per_cpu(runqueues, crashed_cpu).cpu"), "(int)1\n");
    assert_eq!(ev("crashed_task->comm"), "(char [16])\"init\"\n");
    assert_eq!(ev("crashed_cpu"), "(int)1\n");
    assert!(err("per_cpu(runqueues, 5)").contains("CPU 5 does not exist"));
    assert!(err("task(99)").contains("no task with pid 99"));
    // A per-CPU variable read without per_cpu(): its symbol is an offset.
    let e = err("runqueues.cpu");
    assert!(
        e.starts_with("fault at 0x20000") && e.contains("per_cpu(VAR, CPU)"),
        "{e}"
    );
}

#[test]
fn faults_name_the_address() {
    let e = err("*(int *)0x1234");
    assert!(e.starts_with("fault at 0x1234"), "{e}");
    // The address of the member read, not of the struct.
    let e = err("((struct task_struct *)0xdead0000)->comm");
    assert!(e.starts_with("fault at 0xdead0004"), "{e}");
    let e = err(
        "init_task.parent->parent->tasks.next->next->next->prev == 0 || task(1)->vals[100000000]",
    );
    assert!(e.starts_with("fault at 0x"), "{e}");
    // A struct whose pointer member leads nowhere still prints.
    assert!(ev("*(struct list_head *)&init_task.tasks").contains(".next = (struct list_head *)"));
}

#[test]
fn unknown_names_name_the_near_ones() {
    let e = err("init_task.pdi");
    assert!(
        e.contains("struct task_struct has no member \"pdi\" (near: pid"),
        "{e}"
    );
    assert!(e.contains("column 11"), "{e}");
    assert!(e.ends_with("\n  init_task.pdi\n            ^^^"), "{e}");
    let e = err("init_tsak.pid");
    assert!(
        e.contains("unknown symbol init_tsak (near: init_task"),
        "{e}"
    );
    assert!(e.contains("column 1"), "{e}");
    let e = err("(struct task_strcut *)0");
    assert!(
        e.contains("unknown type struct task_strcut (near: struct task_struct)"),
        "{e}"
    );
    assert!(e.contains("column 2"), "{e}");
    let e = err("per_cpus(runqueues, 0)");
    assert!(
        e.contains("unknown function per_cpus (near: per_cpu"),
        "{e}"
    );
    let e = err("init_tasks_x");
    assert!(e.contains("has no type without DWARF"), "{e}");
    let e = err("init_task->pid");
    assert!(e.contains("not a pointer"), "{e}");
    let e = err("*(void *)&init_task");
    assert!(e.contains("void pointer"), "{e}");
    // A type's name without its keyword, as a value or in a cast.
    let e = err("sizeof(task_struct)");
    assert!(
        e.starts_with("unknown symbol task_struct: task_struct is a type, write struct task_struct (column 7)"),
        "{e}"
    );
    let e = err("(task_struct *)0");
    assert!(
        e.starts_with("unknown type task_struct: task_struct is a struct, write struct task_struct (column 2)\n  (task_struct *)0\n   ^^^^^^^^^^^^^"),
        "{e}"
    );
    let e = err("(pid_tt)1");
    assert!(
        e.starts_with("unknown type pid_tt (near: pid_t) (column 2)"),
        "{e}"
    );
    // Enumerators are among the near names of a constant.
    let e = err("SLEEPNG");
    assert!(e.contains("unknown symbol SLEEPNG (near: SLEEPING)"), "{e}");
    let e = cmd::ptype(&fake(), "task_struct").unwrap_err();
    assert!(e.contains("write struct task_struct"), "{e}");
}

#[test]
fn structs_print_nested_and_as_json() {
    let t = ev("init_task");
    assert!(t.starts_with(&format!("*(struct task_struct *){INIT_TASK:#x} = {{\n\t.pid = (pid_t)0,\n\t.comm = (char [16])\"swapper/0\",\n\t.tasks = (struct list_head){{\n\t\t.next = (struct list_head *)0x")), "{t}");
    assert!(
        t.contains("\t.flags = (unsigned int)5,\n\t.prio = (int)-1,\n\t.a = (long int)-2,\n"),
        "{t}"
    );
    assert!(
        t.contains("\t.vals = (int [2]){ 7, 9 },\n\t.st = (enum state)SLEEPING,\n}"),
        "{t}"
    );
    let j = js("init_task");
    assert_eq!(j["type"], "struct task_struct");
    assert_eq!(j["value"]["comm"], "swapper/0");
    assert_eq!(j["value"]["pid"], 0);
    assert_eq!(j["value"]["prio"], -1);
    assert_eq!(j["value"]["tasks"]["next"], TASK1 + 24);
    assert_eq!(j["value"]["vals"], serde_json::json!([7, 9]));
    assert_eq!(js("&init_task")["value"], INIT_TASK);
    assert_eq!(js("&init_task")["type"], "struct task_struct *");
    assert_eq!(js("1 == 1")["value"], true);
    assert_eq!(
        js("task(1)->comm"),
        serde_json::json!({"schema_version": 1, "type": "char [16]", "value": "init"})
    );
}

#[test]
fn depth_limits_nested_structs() {
    let at = |depth: u32, json: bool| {
        let lim = cmd::limits(Some(depth)).unwrap();
        cmd::eval_limited(&fake(), "init_task", json, lim).unwrap()
    };
    // The default is what eval prints without --depth.
    assert_eq!(cmd::limits(None).unwrap().depth, 3);
    assert_eq!(at(3, false), ev("init_task"));
    // Depth 1: the task's members print, the list_head inside it does not.
    let t = at(1, false);
    assert!(t.contains("\t.tasks = (struct list_head){...},\n"), "{t}");
    assert!(t.contains("\t.comm = (char [16])\"swapper/0\",\n"), "{t}");
    // Scalar arrays are not structs: they still print.
    assert!(t.contains("\t.vals = (int [2]){ 7, 9 },\n"), "{t}");
    // Depth 0: the struct itself is elided.
    assert_eq!(
        at(0, false),
        format!("*(struct task_struct *){INIT_TASK:#x} = {{...}}\n")
    );
    // Depth 2 reaches the list_head's pointers.
    assert!(at(2, false).contains("\t\t.next = (struct list_head *)0x"));
    // JSON: an elided struct is null.
    let j: serde_json::Value = serde_json::from_str(&at(1, true)).unwrap();
    assert_eq!(j["value"]["tasks"], serde_json::Value::Null);
    assert_eq!(j["value"]["pid"], 0);
    let e = cmd::limits(Some(cmd::MAX_DEPTH + 1)).unwrap_err();
    assert!(e.contains("too deep"), "{e}");
}

#[test]
fn ptype_prints_the_layout() {
    let p = cmd::ptype(&fake(), "struct task_struct").unwrap();
    assert!(p.starts_with("struct task_struct {\n\tpid_t pid;"), "{p}");
    assert!(p.contains("\tchar comm[16];"), "{p}");
    assert!(p.contains("\tunsigned int flags:3;"), "{p}");
    assert!(p.contains("\tunion {\n\t\tlong int a;"), "{p}");
    assert!(p.contains("/*    24    16 */"), "{p}");
    assert!(p.contains("\tstruct task_struct *parent;"), "{p}");
    assert!(p.contains("/* size: 80, members: 11 */"), "{p}");
    let p = cmd::ptype(&fake(), "init_task.tasks").unwrap();
    assert!(
        p.starts_with("struct list_head {\n\tstruct list_head *next;"),
        "{p}"
    );
    let p = cmd::ptype(&fake(), "task(1)").unwrap();
    assert!(
        p.starts_with("struct task_struct {\n") && p.ends_with("\n} *;\n"),
        "{p}"
    );
    let p = cmd::ptype(&fake(), "pid_t").unwrap();
    assert_eq!(p, "pid_t = int;\t/* size: 4 */\n");
    let p = cmd::ptype(&fake(), "enum state").unwrap();
    assert!(p.contains("\tSLEEPING = 1,"), "{p}");
    assert!(cmd::ptype(&fake(), "struct nope")
        .unwrap_err()
        .contains("unknown type struct nope"));
}

#[test]
fn list_iteration_and_count() {
    assert_eq!(ev("list_count(&init_task.tasks)"), "(unsigned long)1\n");
    assert_eq!(ev("list_count(init_task.tasks)"), "(unsigned long)1\n");
    assert_eq!(
        ev("list_for_each_entry(&init_task.tasks, struct task_struct, tasks)"),
        format!("(struct task_struct *[1]){{\n\t[0] = (struct task_struct *){TASK1:#x},\n}}\n")
    );
    assert_eq!(
        ev("list_for_each_entry(&init_task.tasks, struct task_struct, tasks)[0]->comm"),
        "(char [16])\"init\"\n"
    );
    // From the other task's node, the list holds init_task.
    assert_eq!(
        ev("list_for_each_entry(&task(1)->tasks, struct task_struct, tasks)[0] == &init_task"),
        "(bool)true\n"
    );
    let j = js("list_for_each_entry(&init_task.tasks, struct task_struct, tasks)");
    assert_eq!(j["type"], "struct task_struct *[1]");
    assert_eq!(j["value"], serde_json::json!([TASK1]));
    assert!(j.get("notes").is_none());
    // hlist: a NULL-terminated chain.
    let h = format!("(struct hlist_head *){HLIST:#x}");
    assert_eq!(ev(&format!("list_count({h})")), "(unsigned long)2\n");
    assert_eq!(
        ev(&format!(
            "hlist_for_each_entry({h}, struct pid_entry, node)[1]->nr"
        )),
        "(int)8\n"
    );
    assert_eq!(
        js(&format!(
            "hlist_for_each_entry({h}, struct pid_entry, node)"
        ))["value"],
        serde_json::json!([HLIST + 0x10, HLIST + 0x30])
    );
}

#[test]
fn list_walks_are_bounded() {
    // A cycle not through the head: the walk stops and says so.
    let c = format!("(struct list_head *){CYCLE:#x}");
    let out = ev(&format!("list_count({c})"));
    assert!(
        out.starts_with("(unsigned long)2\nnote: list walk stopped after 2 entries: a cycle"),
        "{out}"
    );
    let j = js(&format!(
        "list_for_each_entry({c}, struct task_struct, tasks)"
    ));
    assert!(j["notes"][0].as_str().unwrap().contains("a cycle"), "{j}");
    // A list longer than the cap.
    let out = ev(&format!("list_count((struct list_head *){GEN:#x})"));
    assert_eq!(
        out,
        format!(
            "(unsigned long){}\nnote: list walk stopped at the cap of {} entries\n",
            crate::eval::MAX_LIST,
            crate::eval::MAX_LIST
        )
    );
    // A fault after the head is a stop with the entries read.
    let out = ev(&format!(
        "list_count((struct list_head *){:#x})",
        GEN + 16 * (GEN_NODES - 2)
    ));
    assert!(
        out.contains("note: list walk stopped after 2 entries: fault at"),
        "{out}"
    );
}

#[test]
fn list_errors() {
    assert!(err("list_count(0)").contains("needs a struct list_head"));
    assert!(err("list_count((struct list_head *)0x10)").starts_with("fault at 0x10"));
    let e = err("list_for_each_entry(&init_task.tasks, struct task_struct, comm)");
    assert!(e.contains("needs a struct list_head member"), "{e}");
    let e = err("list_for_each_entry(&init_task.tasks, struct task_struct, taks)");
    assert!(e.contains("(near: tasks"), "{e}");
    let e = err(&format!(
        "list_for_each_entry((struct hlist_head *){HLIST:#x}, struct pid_entry, node)"
    ));
    assert!(e.contains("use hlist_for_each_entry"), "{e}");
    let e = err("list_for_each_entr(&init_task.tasks)");
    assert!(e.contains("near: list_for_each_entry"), "{e}");
}

#[test]
fn sym_both_ways() {
    let f = fake();
    let s = cmd::sym(&f, "fake_fn", false).unwrap();
    assert_eq!(s, format!("{TEXT:016x} (T) fake_fn  text, size 0x9\n"));
    let s = cmd::sym(&f, &format!("{:#x}", TEXT + 6), false).unwrap();
    assert_eq!(
        s,
        format!("{:016x} (T) fake_fn+0x6  text, size 0x9\n", TEXT + 6)
    );
    // Without 0x, as crash prints addresses; and symbol+offset.
    let s = cmd::sym(&f, &format!("{:x}", TEXT + 9), false).unwrap();
    assert!(s.contains("(T) fake_fn2+0 "), "{s}");
    assert!(cmd::sym(&f, "fake_fn+6", false)
        .unwrap()
        .contains("fake_fn+0x6"));
    let s = cmd::sym(&f, "runqueues", false).unwrap();
    assert!(s.contains("per-CPU"), "{s}");
    let j: serde_json::Value =
        serde_json::from_str(&cmd::sym(&f, "fake_fn2", true).unwrap()).unwrap();
    assert_eq!(j["address"], TEXT + 9);
    assert_eq!(j["kind"], "T");
    assert_eq!(j["class"], "text");
    let e = cmd::sym(&f, "fake_fm", false).unwrap_err();
    assert!(e.contains("unknown symbol fake_fm (near: fake_fn"), "{e}");
    let e = cmd::sym(&f, "0x10", false).unwrap_err();
    assert!(e.contains("0x10 is in no symbol"), "{e}");
}

#[test]
fn rd_words_and_faults() {
    let f = fake();
    let out = cmd::rd(&f, "&init_task", Some(4), false).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    // pid 0 and "swap" in the first word, as bytes.
    assert_eq!(
        lines[0],
        format!("{INIT_TASK:016x}:  7061777300000000  ....swap")
    );
    // A word pointing into the kernel image is symbolised.
    let out = cmd::rd(&f, "&init_task.parent", Some(1), false).unwrap();
    assert!(out.trim_end().ends_with("<init_task+0>"), "{out}");
    // Past the end of what is mapped: the words read, then the fault.
    let out = cmd::rd(&f, &format!("{:#x}", INIT_TASK + 64), Some(4), false).unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with(&format!("fault at {:#x}", INIT_TASK + 80)),
        "{out}"
    );
    let j: serde_json::Value = serde_json::from_str(
        &cmd::rd(&f, &format!("{:#x}", INIT_TASK + 64), Some(4), true).unwrap(),
    )
    .unwrap();
    assert_eq!(j["words"].as_array().unwrap().len(), 2);
    assert_eq!(j["fault"]["address"], INIT_TASK + 80);
    assert!(cmd::rd(&f, "0x10", None, false)
        .unwrap_err()
        .starts_with("fault at 0x10"));
    assert!(cmd::rd(&f, "init_task", Some(0), false)
        .unwrap_err()
        .contains("at least 1"));
    assert!(cmd::rd(&f, "init_task", Some(1 << 40), false)
        .unwrap_err()
        .contains("too many"));
    assert!(cmd::rd(&f, "nope_sym", None, false)
        .unwrap_err()
        .contains("unknown symbol nope_sym"));
}

#[test]
fn dis_names_per_cpu_operands() {
    let out = cmd::dis(&fake(), "fake_gs", Some(4), false).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("   {GS_TEXT:#x} <fake_gs+0>:\tmov rax, gs:[0x20000]  # <runqueues> (per-CPU)"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("mov eax, gs:[0x20008]  # <runqueues+0x8> (per-CPU)"),
        "{out}"
    );
    // A base register makes the displacement only part of the address.
    assert!(lines[2].ends_with("mov rax, gs:[rax+0x20000]"), "{out}");
    // RIP-relative, as the kernel writes `%gs:var(%rip)`.
    assert!(
        lines[3].ends_with("  # <runqueues+0x4> (per-CPU)") && lines[3].contains("gs:["),
        "{out}"
    );
}

#[test]
fn dis_functions_and_counts() {
    let f = fake();
    let out = cmd::dis(&f, "fake_fn", None, false).unwrap();
    assert!(
        out.starts_with(&format!(
            "Dump of assembler code for function fake_fn ({TEXT:#x}, 0x9 bytes):\n   {TEXT:#x} <+0>:\tpush rbp\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("<+1>:\tcall {:#x} <fake_fn2>\n", TEXT + 9)),
        "{out}"
    );
    assert!(
        out.contains("<+7>:\tret\n") && out.ends_with("End of assembler dump.\n"),
        "{out}"
    );
    assert!(!out.contains("=>"), "{out}");
    // An address inside: the function, the instruction marked.
    let out = cmd::dis(&f, &format!("{:#x}", TEXT + 6), None, false).unwrap();
    assert!(
        out.contains(&format!("=> {:#x} <+6>:\tpop rbp\n", TEXT + 6)),
        "{out}"
    );
    // COUNT instructions from an address, labelled by symbol.
    let out = cmd::dis(&f, "fake_fn+1", Some(2), false).unwrap();
    assert_eq!(
        out,
        format!(
            "   {:#x} <fake_fn+0x1>:\tcall {:#x} <fake_fn2>\n   {:#x} <fake_fn+0x6>:\tpop rbp\n",
            TEXT + 1,
            TEXT + 9,
            TEXT + 6
        )
    );
    let j: serde_json::Value =
        serde_json::from_str(&cmd::dis(&f, "fake_fn", None, true).unwrap()).unwrap();
    assert_eq!(j["function"], "fake_fn");
    assert_eq!(j["instructions"][1]["target"], TEXT + 9);
    assert_eq!(j["instructions"][1]["bytes"], "e803000000");
    // Bad input.
    assert!(cmd::dis(&f, "init_task", None, false)
        .unwrap_err()
        .contains("not a function"));
    assert!(cmd::dis(&f, "0x10", None, false)
        .unwrap_err()
        .contains("in no function"));
    assert!(cmd::dis(&f, "0x10", Some(3), false)
        .unwrap_err()
        .starts_with("fault at 0x10"));
    assert!(cmd::dis(&f, "fake_fn", Some(0), false)
        .unwrap_err()
        .contains("at least 1"));
    assert!(cmd::dis(&f, "fake_fn", Some(u64::MAX), false)
        .unwrap_err()
        .contains("too many"));
    assert!(cmd::dis(&f, "fake_fnn", None, false)
        .unwrap_err()
        .contains("near: fake_fn"));
}

fn complete(line: &str) -> (usize, Vec<String>) {
    let f = fake();
    let sh = crate::shell::Shell::new(&f);
    let c = sh.completer();
    c.complete(line, line.len())
}

fn cands(line: &str) -> Vec<String> {
    complete(line).1
}

#[test]
fn completion_of_commands_symbols_and_types() {
    assert_eq!(complete("ev"), (0, vec!["eval".to_string()]));
    assert_eq!(complete("  pt"), (2, vec!["ptype".to_string()]));
    assert_eq!(cands("help di"), ["dis"]);
    // Symbols from kallsyms, helpers with their parenthesis.
    let (start, c) = complete("eval init_t");
    assert_eq!(start, 5);
    assert_eq!(c, ["init_task", "init_tasks_x"]);
    assert_eq!(cands("sym fake_"), ["fake_fn", "fake_fn2", "fake_gs"]);
    assert_eq!(cands("eval per_"), ["per_cpu(", "per_cpu_ptr("]);
    assert_eq!(cands("eval 1 + crashed_t"), ["crashed_task"]);
    // Typedefs are names an expression takes too (casts).
    assert_eq!(cands("eval (pid"), ["pid_t"]);
    // Enumerators are constants an expression takes.
    assert_eq!(cands("eval init_task.st == SLEEP"), ["SLEEPING"]);
    // Type names of the keyword's kind from BTF.
    assert_eq!(cands("ptype struct task_"), ["task_struct"]);
    assert_eq!(cands("eval (struct list_"), ["list_head"]);
    assert_eq!(
        cands("eval container_of(p, struct hl"),
        ["hlist_head", "hlist_node"]
    );
    assert_eq!(cands("ptype enum st"), ["state"]);
    assert!(cands("ptype union st").is_empty());
    // per_cpu's first argument: the per-CPU variables only.
    assert_eq!(cands("eval per_cpu("), ["runqueues"]);
    assert_eq!(cands("eval per_cpu(ru"), ["runqueues"]);
    assert!(cands("eval per_cpu(init").is_empty());
    // Its second argument is an ordinary expression.
    assert_eq!(cands("eval per_cpu(runqueues, crashed_c"), ["crashed_cpu"]);
}

#[test]
fn completion_of_members_from_the_type_of_the_prefix() {
    assert_eq!(cands("eval init_task.t"), ["tasks"]);
    assert_eq!(cands("eval init_task.tasks.n"), ["next"]);
    assert_eq!(cands("eval task(1)->pa"), ["parent"]);
    assert_eq!(
        cands("eval init_task.parent->parent->p"),
        ["parent", "pid", "prio"]
    );
    // Anonymous members' own members are reached through the parent.
    let all = cands("eval init_task.");
    for m in ["a", "b", "comm", "pid", "st", "vals"] {
        assert!(all.iter().any(|c| c == m), "{m}: {all:?}");
    }
    assert_eq!(cands("eval 1 + task(1)->"), all);
    assert_eq!(cands("eval per_cpu(runqueues, 1)."), ["clock", "cpu"]);
    assert_eq!(
        cands("eval per_cpu_ptr(&runqueues, 0)->c"),
        ["clock", "cpu"]
    );
    // The prefix's type, not its value: 0x10 is never read (a read there
    // faults), yet its members complete.
    assert_eq!(cands("eval ((struct task_struct *)0x10)->co"), ["comm"]);
    assert_eq!(
        cands("eval ((struct task_struct *)0x10)->parent->tasks.p"),
        ["prev"]
    );
    assert_eq!(
        cands("eval init_task.vals[1] + init_task.tasks.prev->n"),
        ["next"]
    );
    // An entry of a list walk is typed by walking it (bounded).
    assert_eq!(
        cands("eval list_for_each_entry(&init_task.tasks, struct task_struct, tasks)[0]->pi"),
        ["pid"]
    );
    // Nothing to complete: not a record, or not an expression.
    assert!(cands("eval init_task.pid.").is_empty());
    assert!(cands("eval nosuch->").is_empty());
    assert!(cands("eval )->").is_empty());
}

#[test]
fn shell_lines_dispatch_and_errors_go_on() {
    use crate::shell::{Shell, Step};
    let f = fake();
    let mut calls = Vec::new();
    let mut sh = Shell::new(&f);
    sh.add(
        "ps",
        "ps [--all]",
        Box::new(|args, json| {
            calls.push(format!("{args}|{json}"));
            Ok("ps output\n".into())
        }),
    );
    let out = |s: Step| match s {
        Step::Output(o) => o,
        other => panic!("{other:?}"),
    };
    let err = |s: Step| match s {
        Step::Error(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        out(sh.run_line("eval init_task.comm")),
        "(char [16])\"swapper/0\"\n"
    );
    assert_eq!(out(sh.run_line("p 0 ? 1 : 2")), "(int)2\n");
    assert_eq!(out(sh.run_line("  print task(1)->pid  ")), "(pid_t)1\n");
    assert_eq!(
        out(sh.run_line("eval --depth 0 init_task")),
        format!("*(struct task_struct *){INIT_TASK:#x} = {{...}}\n")
    );
    assert_eq!(
        out(sh.run_line("eval init_task.comm --json")),
        "{\"schema_version\":1,\"type\":\"char [16]\",\"value\":\"swapper/0\"}\n"
    );
    assert_eq!(out(sh.run_line("rd init_task 1")).lines().count(), 1);
    assert!(out(sh.run_line("dis fake_fn 2")).contains("call"));
    assert!(out(sh.run_line("sym fake_fn")).contains("(T) fake_fn"));
    assert!(out(sh.run_line("ptype struct list_head")).starts_with("struct list_head {"));
    assert_eq!(out(sh.run_line("")), "");
    assert_eq!(out(sh.run_line("# a comment")), "");
    // Errors: the column, the near names; the session goes on.
    let e = err(sh.run_line("eval init_task.comn"));
    assert!(
        e.contains("has no member \"comn\" (near: comm") && e.contains('^'),
        "{e}"
    );
    let e = err(sh.run_line("evl 1"));
    assert!(e.starts_with("unknown command \"evl\" (near: eval"), "{e}");
    let e = err(sh.run_line("eval"));
    assert!(e.contains("eval needs an expression"), "{e}");
    let e = err(sh.run_line("eval --depth x 1"));
    assert!(e.contains("--depth takes a number"), "{e}");
    let e = err(sh.run_line("bt 1"));
    assert!(e.starts_with("unknown command \"bt\""), "{e}");
    // The caller's commands, with --json taken out for them.
    assert_eq!(out(sh.run_line("ps --all --json")), "ps output\n");
    let help = out(sh.run_line("help"));
    assert!(
        help.contains("eval [--json] [--depth N] EXPR") && help.contains("ps [--all]"),
        "{help}"
    );
    assert_eq!(
        out(sh.run_line("help p")),
        "eval [--json] [--depth N] EXPR\n"
    );
    // `wedge --json vmcore DUMP shell`: every command as JSON.
    sh.set_json(true);
    assert_eq!(
        out(sh.run_line("p 1")),
        "{\"schema_version\":1,\"type\":\"int\",\"value\":1}\n"
    );
    assert_eq!(sh.run_line("quit"), Step::Quit);
    assert_eq!(sh.run_line("exit"), Step::Quit);
    drop(sh);
    assert_eq!(calls, ["--all|true"]);
}

#[test]
fn piped_sessions_read_line_by_line() {
    let f = fake();
    let mut sh = crate::shell::Shell::new(&f);
    let script =
        "eval init_task.pid\nbogus 1\neval *(int *)0x1234\n\neval task(1)->comm\nquit\neval 99\n";
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let failed = crate::shell::run(
        &mut sh,
        &mut std::io::Cursor::new(script),
        false,
        &mut out,
        &mut err,
    )
    .unwrap();
    assert_eq!(failed, 2);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "(pid_t)0\n(char [16])\"init\"\n"
    );
    let err = String::from_utf8(err).unwrap();
    assert!(err.starts_with("error: unknown command \"bogus\""), "{err}");
    assert!(err.contains("error: fault at 0x1234"), "{err}");
    // A line past the cap is refused, and the session goes on after it.
    let long = format!("eval {}\neval 7\n", "1+".repeat(crate::shell::MAX_LINE));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let failed = crate::shell::run(
        &mut sh,
        &mut std::io::Cursor::new(long),
        false,
        &mut out,
        &mut err,
    )
    .unwrap();
    assert_eq!(failed, 1);
    assert_eq!(String::from_utf8(out).unwrap(), "(int)7\n");
}

#[test]
fn completion_never_panics_on_odd_lines() {
    let f = fake();
    let sh = crate::shell::Shell::new(&f);
    let c = sh.completer();
    let lines = [
        "",
        " ",
        "eval ",
        "eval é->",
        "eval (((",
        "eval )))->",
        "eval ]].",
        "eval a.b.c.d->",
        "eval per_cpu(per_cpu(per_cpu(",
        "eval struct ",
        "ptype struct",
        "eval init_task.comm[init_task.pid].",
        "eval ((struct task_struct *)init_task.parent)->parent->",
        "eval list_for_each_entry(&init_task.tasks, struct task_struct, tasks)[",
        "eval 1 ? init_task. : 0",
        "help help help ",
        "eval 'a'.",
        "eval 0x10.",
        "eval \u{301}.",
    ];
    for line in lines {
        // Every byte position, char boundary or not.
        for pos in 0..=line.len() + 2 {
            let (start, cands) = c.complete(line, pos);
            assert!(start <= pos.min(line.len()), "{line:?} at {pos}");
            assert!(cands.len() <= crate::shell::MAX_CANDIDATES);
        }
    }
}

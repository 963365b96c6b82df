// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * wedge's system-call rings (loaded by crates/wedge-bpf/src/syscalls.rs;
 * compiled by its build.rs next to wedge.bpf.c): the last WEDGE_SC_SLOTS
 * system calls of every thread, kept in the kernel so that `wedge record`
 * can show what a stuck task did just before it stuck, without ptrace.
 *
 * wedge_sc_enter / wedge_sc_exit  on raw_syscalls:sys_enter / sys_exit,
 *     as tp_btf (BTF-typed: the pt_regs loads are plain loads the verifier
 *     checks against the kernel's BTF, no helper) or, on a kernel without
 *     BTF attach points, as raw_tp (one bpf_probe_read_kernel of the
 *     argument registers). Userspace loads one pair.
 *
 * The ring of a thread is written only by that thread (the tracepoints run
 * in its context, preemption disabled by the tracepoint's RCU section), so
 * no lock: the reader (bpf(BPF_MAP_LOOKUP_ELEM) from userspace) may see a
 * slot half-written by a thread that is busy making calls, never by one
 * that is stuck in one, which is the one that matters.
 *
 * Per call: one map lookup and one clock read at entry, the same at exit.
 * A thread's first call also inserts its ring (once per thread).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* A power of two, so that the slot index is a mask the verifier bounds.
 * The Rust side has the same constant (SLOTS) and checks the value size. */
#define WEDGE_SC_SLOTS 16
#define WEDGE_SC_THREADS 32768

#if !defined(__TARGET_ARCH_x86)
#error "the system-call rings read x86-64 registers"
#endif

/*
 * The x86-64 struct pt_regs (arch/x86/include/asm/ptrace.h): the layout
 * of the registers saved at kernel entry, which ptrace(PTRACE_GETREGS)
 * also exposes as struct user_regs_struct; it has not changed since
 * x86-64 was merged, so it is not CO-RE-relocated (the loader then needs
 * no pass over the kernel's BTF for it). The system-call arguments are
 * di, si, dx, r10, r8, r9; orig_ax is the call number (ax becomes the
 * return value).
 */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx;
	unsigned long r11, r10, r9, r8, ax, cx, dx, si, di;
	unsigned long orig_ax;
	unsigned long ip, cs, flags, sp, ss;
};

/* 80 bytes, 8-byte members only: the Rust reader mirrors it. */
struct wedge_sc_slot {
	__u64 args[6];
	__u64 start_ns; /* bpf_ktime_get_boot_ns() at sys_enter */
	__u64 end_ns; /* at sys_exit; 0 while in the call (or no exit seen) */
	__s64 ret;
	__s64 nr;
};

struct wedge_sc_ring {
	/* The slot of the current or next call: entry writes
	 * slots[head % SLOTS], the matching exit completes it and advances. */
	__u64 head;
	struct wedge_sc_slot slots[WEDGE_SC_SLOTS];
};

/* LRU: a thread that exits stops touching its ring, which ages out when
 * the map is full; no exit hook (and no delete helper per exit) needed. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEDGE_SC_THREADS);
	__type(key, __u32); /* the thread id in the initial pid namespace */
	__type(value, struct wedge_sc_ring);
} wedge_sc SEC(".maps");

/* wedge's own process (set at load): its calls are not recorded, so that
 * reading the rings does not fill them. */
const volatile __u32 wedge_tgid = 0;

/* The source of a new thread's ring (read-only, all zero). */
static const struct wedge_sc_ring zero_ring;

static __always_inline void sc_enter(long nr, const __u64 *a)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt;

	if ((__u32)(pt >> 32) == wedge_tgid)
		return;
	struct wedge_sc_ring *r = bpf_map_lookup_elem(&wedge_sc, &tid);
	if (!r) {
		bpf_map_update_elem(&wedge_sc, &tid, &zero_ring, BPF_NOEXIST);
		r = bpf_map_lookup_elem(&wedge_sc, &tid);
		if (!r)
			return;
	}
	__u64 h = r->head;
	struct wedge_sc_slot *s = &r->slots[h & (WEDGE_SC_SLOTS - 1)];
	/* The previous call's exit never matched (its number changed under
	 * it, e.g. by ptrace): keep it, without an end, and move on. */
	if (s->start_ns && !s->end_ns) {
		h++;
		r->head = h;
		s = &r->slots[h & (WEDGE_SC_SLOTS - 1)];
	}
	s->nr = nr;
	s->args[0] = a[0];
	s->args[1] = a[1];
	s->args[2] = a[2];
	s->args[3] = a[3];
	s->args[4] = a[4];
	s->args[5] = a[5];
	s->end_ns = 0;
	s->ret = 0;
	s->start_ns = bpf_ktime_get_boot_ns();
}

static __always_inline void sc_exit(long nr, long ret)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt;

	if ((__u32)(pt >> 32) == wedge_tgid)
		return;
	struct wedge_sc_ring *r = bpf_map_lookup_elem(&wedge_sc, &tid);
	if (!r)
		return;
	__u64 h = r->head;
	struct wedge_sc_slot *s = &r->slots[h & (WEDGE_SC_SLOTS - 1)];
	/* An exit without our entry (the thread was in the call when the
	 * programs were attached) has nothing to complete. rt_sigreturn sets
	 * orig_ax to -1 (restore_sigcontext, so the call is not restarted):
	 * it still completes its own entry. */
	if (!s->start_ns || s->end_ns || (nr != s->nr && nr != -1))
		return;
	s->ret = ret;
	s->end_ns = bpf_ktime_get_boot_ns();
	r->head = h + 1;
}

/* tp_btf: ctx[0] is the struct pt_regs * (a trusted BTF pointer), ctx[1]
 * the call number (sys_enter) or the return value (sys_exit). */
SEC("tp_btf/sys_enter")
int wedge_sc_enter(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	__u64 a[6] = { regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9 };

	sc_enter((long)ctx[1], a);
	return 0;
}

SEC("tp_btf/sys_exit")
int wedge_sc_exit(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];

	sc_exit((long)regs->orig_ax, (long)ctx[1]);
	return 0;
}

/* raw_tp: the same arguments, but regs is an untyped kernel pointer, read
 * with bpf_probe_read_kernel: r10..di are contiguous in pt_regs (r10, r9,
 * r8, ax, cx, dx, si, di), one read for the six arguments. */
SEC("raw_tp/sys_enter")
int wedge_sc_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	const struct pt_regs *regs = (const struct pt_regs *)ctx->args[0];
	__u64 w[8];

	if (bpf_probe_read_kernel(w, sizeof(w), &regs->r10))
		return 0;
	/* w: r10 r9 r8 ax cx dx si di */
	__u64 a[6] = { w[7], w[6], w[5], w[0], w[2], w[1] };
	sc_enter((long)ctx->args[1], a);
	return 0;
}

SEC("raw_tp/sys_exit")
int wedge_sc_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	const struct pt_regs *regs = (const struct pt_regs *)ctx->args[0];
	long nr;

	if (bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_ax))
		return 0;
	sc_exit(nr, (long)ctx->args[1]);
	return 0;
}

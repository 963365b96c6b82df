// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * wedge's BPF programs (loaded by crates/wedge-bpf with aya; compiled by
 * its build.rs with clang -target bpf, CO-RE).
 *
 * wedge_tasks  iter/task: one fixed-size record per task (struct
 *              wedge_task below; the Rust parser mirrors its layout).
 * wedge_read   raw_tp, run only with BPF_PROG_TEST_RUN (never attached):
 *              copies a batch of kernel ranges with bpf_probe_read_kernel
 *              into an mmap-able output map.
 *
 * Both only read. The iterator runs under rcu_read_lock for each task, so
 * the per-task work is a fixed handful of loads; every pointer followed
 * away from the iterated task goes through bpf_probe_read_kernel
 * (BPF_CORE_READ), which faults softly on a freed or bad pointer. No
 * bpf_copy_from_user_task: it takes the target's mmap_lock and can sleep
 * forever on exactly the stuck tasks wedge looks at.
 */
#include "wedge.h"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define WEDGE_NS_LEVELS 8
#define WEDGE_STACK_DEPTH 48
#define WEDGE_MAX_CPUS 1024

/* Which optional facts the running kernel had (wedge_task.have). */
#define HAVE_STATE_PRE514 (1u << 0) /* state read from `state`, not `__state` */
#define HAVE_CPU (1u << 1)
#define HAVE_BLOCKER_FIELD (1u << 2) /* task->blocker exists */
#define HAVE_SEM_HOLDER (1u << 3) /* semaphore.last_holder exists */
#define HAVE_RQ_CLOCK (1u << 4) /* rq_clock_task was read */
#define HAVE_OWNER_PID (1u << 5)
#define HAVE_IN_IOWAIT (1u << 6) /* task->in_iowait was read */

/* wedge_task.bits */
#define BIT_IN_IOWAIT (1u << 0)
/* The stack was not walked: the task has not run since the walk
 * wedge_seen remembers, so user space reuses that walk's frames. */
#define BIT_STACK_REUSED (1u << 1)

/* wedge_cfg[0].stacks */
#define STACKS_WALK_ALL 0 /* one-shot: every stack walked, nothing kept */
#define STACKS_REMEMBER 1 /* every stack walked, its switch count kept */
#define STACKS_REUSE 2 /* unchanged tasks' stacks not walked again */

/* include/linux/hung_task.h: the low 2 bits of task->blocker. */
#define BLOCKER_TYPE_MUTEX 0x0UL
#define BLOCKER_TYPE_SEM 0x1UL
#define BLOCKER_TYPE_RWSEM_READER 0x2UL
#define BLOCKER_TYPE_RWSEM_WRITER 0x3UL
#define BLOCKER_TYPE_MASK 0x3UL
/* kernel/locking/mutex.h MUTEX_FLAGS (waiters, handoff, pickup). */
#define MUTEX_FLAGS 0x07UL
/* kernel/locking/rwsem.c RWSEM_READER_OWNED | RWSEM_NONSPINNABLE. */
#define RWSEM_OWNER_FLAGS_MASK 0x03UL

struct ns_nr {
	__u32 inum;
	__s32 nr;
};

/* 8-byte members first: no padding, the same layout on every compiler. */
struct wedge_task {
	__u64 task;
	__u64 now;
	__u64 blocker;
	__u64 owner_raw;
	__u64 owner_task;
	__u64 saved_sp;
	__u64 stack_base;
	__u64 exec_start;
	__u64 last_arrival;
	__u64 rq_clock_task;
	__u64 rq_clock;
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 start_time;
	__s32 pid;
	__s32 tgid;
	__s32 ppid;
	__u32 state;
	__u32 exit_state;
	__u32 flags;
	__u32 cpu;
	__u32 have;
	__s32 owner_pid;
	__u32 tid_levels;
	__u32 tgid_levels;
	__s32 stack_bytes; /* bpf_get_task_stack's return: bytes, or -errno */
	__u32 bits; /* BIT_* facts of one bit */
	__u32 reserved; /* keeps stack[] 8-byte aligned */
	char comm[16];
	struct ns_nr tids[WEDGE_NS_LEVELS];
	struct ns_nr tgids[WEDGE_NS_LEVELS];
	__u64 stack[WEDGE_STACK_DEPTH];
};

/* The record is too big for the 512-byte BPF stack: per-CPU scratch (an
 * iterator program runs with migration disabled). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wedge_task);
} wedge_scratch SEC(".maps");

/* Each CPU's `struct rq` address (kallsyms `runqueues` +
 * __per_cpu_offset[cpu]), filled by user space after load: BPF cannot
 * name a per-CPU kernel variable without ksym support in the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEDGE_MAX_CPUS);
	__type(key, __u32);
	__type(value, __u64);
} wedge_rq SEC(".maps");

/* Set by user space (wedge record's kept pass); zero (walk every stack)
 * for a one-shot pass. */
struct wedge_cfg {
	__u32 stacks;
	/* The pass, counted by user space: the program runs again for a
	 * task whose record did not fit the seq_file buffer (the next read()
	 * retries it), and that second run must not take the first's fresh
	 * entry for the previous pass's. */
	__u32 pass;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wedge_cfg);
} wedge_cfg SEC(".maps");

/* Per task (its task_struct address) the switch count and start time at
 * the last walk of its stack made while it was off every CPU. Every
 * switch-out increments nvcsw or nivcsw (__schedule, prev != next), and a
 * task switched in stays on_cpu until it is switched out again: a task
 * off CPU now and at that walk, with the same count, has not run since,
 * and its stack is the same. start_time tells a reused task_struct from
 * the exited one. User space deletes the entries of tasks gone; when the
 * map is full a task is walked every time (correct, only dearer). */
struct wedge_seen {
	__u64 switches;
	__u64 start_time;
	__u64 pass;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct wedge_seen);
} wedge_seen SEC(".maps");

static __always_inline void ns_numbers(struct pid *p, struct ns_nr *out, __u32 *levels)
{
	unsigned int level;
	struct upid *nums;
	__u32 n = 0;

	*levels = 0;
	if (!p)
		return;
	level = BPF_CORE_READ(p, level);
	/* numbers[] is a flexible array: relocate its start, then index. */
	nums = __builtin_preserve_access_index(&p->numbers[0]);
	for (int i = 0; i < WEDGE_NS_LEVELS; i++) {
		struct upid up = {};

		if (i > level)
			break;
		if (bpf_probe_read_kernel(&up, sizeof(up), nums + i))
			break;
		out[i].nr = up.nr;
		out[i].inum = BPF_CORE_READ(up.ns, ns.inum);
		n = i + 1;
	}
	*levels = n;
}

SEC("iter/task")
int wedge_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct wedge_task *r;
	__u32 zero = 0;

	if (!task)
		return 0;
	r = bpf_map_lookup_elem(&wedge_scratch, &zero);
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r) - sizeof(r->stack));

	r->task = (__u64)task;
	r->now = bpf_ktime_get_ns();
	/* The iterated task is a trusted pointer (the iterator holds a
	 * reference): its own scalar members are plain loads, CO-RE relocated.
	 * Pointer members and what they point to are read with
	 * bpf_probe_read_kernel: a plain load of a pointer member makes the
	 * verifier look up trust annotations by name in the kernel's BTF, once
	 * per instruction, which costs more at load than the helper calls at
	 * run time. */
	r->pid = task->pid;
	r->tgid = task->tgid;
	r->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_INTO(&r->comm, task, comm);
	if (bpf_core_field_exists(task->__state)) {
		r->state = task->__state;
	} else {
		struct task_struct___pre514 *old = (void *)task;

		r->state = (__u32)old->state;
		r->have |= HAVE_STATE_PRE514;
	}
	r->exit_state = task->exit_state;
	r->flags = task->flags;
	if (bpf_core_field_exists(task->cpu)) {
		r->cpu = task->cpu;
		r->have |= HAVE_CPU;
	} else if (bpf_core_field_exists(task->thread_info.cpu)) {
		r->cpu = task->thread_info.cpu;
		r->have |= HAVE_CPU;
	}
	r->saved_sp = task->thread.sp;
	r->stack_base = (__u64)task->stack;
	r->exec_start = task->se.exec_start;
	r->last_arrival = task->sched_info.last_arrival;
	r->nvcsw = task->nvcsw;
	r->nivcsw = task->nivcsw;
	r->start_time = task->start_time;

	ns_numbers(BPF_CORE_READ(task, thread_pid), r->tids, &r->tid_levels);
	ns_numbers(BPF_CORE_READ(task, group_leader, thread_pid), r->tgids, &r->tgid_levels);

	/* The task's run queue clock. With CONFIG_FAIR_GROUP_SCHED the task's
	 * se.cfs_rq is tg->cfs_rq[task_cpu] (set_task_rq, for every class),
	 * whose ->rq is that CPU's rq: no symbol needed, which matters since
	 * /proc/kallsyms has no data symbols without CONFIG_KALLSYMS_ALL.
	 * Otherwise the rq address user space put in wedge_rq. */
	{
		struct cfs_rq *cfs = BPF_CORE_READ(task, se.cfs_rq);
		struct rq *rq = 0;

		if (bpf_core_field_exists(cfs->rq)) {
			rq = BPF_CORE_READ(cfs, rq);
		} else if (r->have & HAVE_CPU) {
			__u32 cpu = r->cpu;
			__u64 *rqa = bpf_map_lookup_elem(&wedge_rq, &cpu);

			if (rqa)
				rq = (void *)*rqa;
		}
		if (rq && !bpf_core_read(&r->rq_clock_task, sizeof(r->rq_clock_task), &rq->clock_task)) {
			r->have |= HAVE_RQ_CLOCK;
			bpf_core_read(&r->rq_clock, sizeof(r->rq_clock), &rq->clock);
		}
	}

	if (bpf_core_field_exists(task->blocker)) {
		unsigned long b = task->blocker;
		unsigned long type = b & BLOCKER_TYPE_MASK;
		unsigned long lock = b & ~BLOCKER_TYPE_MASK;
		__u64 raw = 0, owner = 0;

		r->have |= HAVE_BLOCKER_FIELD;
		if (bpf_core_field_exists(((struct semaphore *)0)->last_holder))
			r->have |= HAVE_SEM_HOLDER;
		r->blocker = b;
		if (lock && type == BLOCKER_TYPE_MUTEX) {
			bpf_core_read(&raw, sizeof(raw), &((struct mutex *)lock)->owner);
			owner = raw & ~MUTEX_FLAGS;
		} else if (lock && type == BLOCKER_TYPE_SEM) {
			struct semaphore *sem = (void *)lock;

			if (bpf_core_field_exists(sem->last_holder)) {
				bpf_core_read(&raw, sizeof(raw), &sem->last_holder);
				owner = raw;
			}
		} else if (lock) {
			bpf_core_read(&raw, sizeof(raw), &((struct rw_semaphore *)lock)->owner);
			owner = raw & ~RWSEM_OWNER_FLAGS_MASK;
		}
		r->owner_raw = raw;
		r->owner_task = owner;
		if (owner) {
			struct task_struct *o = (void *)owner;

			if (!bpf_core_read(&r->owner_pid, sizeof(r->owner_pid), &o->pid))
				r->have |= HAVE_OWNER_PID;
		}
	}

	/* Whether the task sleeps in io_schedule() (the kernel's own "this
	 * wait is I/O", what /proc/PID/stat does not show). */
	if (bpf_core_field_exists(task->in_iowait)) {
		if (BPF_CORE_READ_BITFIELD_PROBED(task, in_iowait))
			r->bits |= BIT_IN_IOWAIT;
		r->have |= HAVE_IN_IOWAIT;
	}

	{
		struct wedge_cfg *cfg = bpf_map_lookup_elem(&wedge_cfg, &zero);
		__u32 mode = cfg ? cfg->stacks : STACKS_WALK_ALL;
		/* Read before the walk: a task that runs during it switches out
		 * (a new count) before it is off CPU again. */
		struct wedge_seen now = {
			.switches = r->nvcsw + r->nivcsw,
			.start_time = r->start_time,
			.pass = cfg ? cfg->pass : 0,
		};
		int off_cpu = bpf_core_field_exists(task->on_cpu) && !task->on_cpu &&
			      !r->exit_state;

		if (mode == STACKS_REUSE && off_cpu) {
			__u64 key = r->task;
			struct wedge_seen *was = bpf_map_lookup_elem(&wedge_seen, &key);

			if (was && was->switches == now.switches &&
			    was->start_time == now.start_time && was->pass != now.pass) {
				r->bits |= BIT_STACK_REUSED;
				r->stack_bytes = 0;
				bpf_seq_write(seq, r, sizeof(*r));
				return 0;
			}
		}
		r->stack_bytes = bpf_get_task_stack(task, r->stack, sizeof(r->stack), 0);
		if (mode != STACKS_WALK_ALL) {
			__u64 key = r->task;

			if (off_cpu && r->stack_bytes >= 0)
				bpf_map_update_elem(&wedge_seen, &key, &now, BPF_ANY);
			else
				bpf_map_delete_elem(&wedge_seen, &key);
		}
	}
	bpf_seq_write(seq, r, sizeof(*r));
	return 0;
}

/* ---- the kernel-memory reader ---- */

#define WEDGE_READ_SLOTS 128
#define WEDGE_SLOT_SIZE 4096

struct wedge_req {
	__u64 addr;
	__u32 len; /* <= WEDGE_SLOT_SIZE */
	__s32 status; /* out: 0, or bpf_probe_read_kernel's -errno */
};

struct wedge_reqs {
	__u32 n;
	__u32 pad;
	struct wedge_req r[WEDGE_READ_SLOTS];
};

/* Both maps are mmap-ed by user space: requests are written and results
 * read in place, and one BPF_PROG_TEST_RUN moves up to 512 KB. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wedge_reqs);
} wedge_reqs SEC(".maps");

struct wedge_slot {
	char b[WEDGE_SLOT_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, WEDGE_READ_SLOTS);
	__type(key, __u32);
	__type(value, struct wedge_slot);
} wedge_out SEC(".maps");

/* raw_tp because BPF_PROG_TEST_RUN runs a raw tracepoint program
 * synchronously on the calling CPU with no context to fake, and tracing
 * programs get bpf_probe_read_kernel. It is never attached. */
SEC("raw_tp")
int wedge_read(void *ctx)
{
	__u32 zero = 0;
	struct wedge_reqs *q = bpf_map_lookup_elem(&wedge_reqs, &zero);
	__u32 n, done = 0;

	if (!q)
		return 0;
	n = q->n;
	for (__u32 i = 0; i < WEDGE_READ_SLOTS; i++) {
		struct wedge_slot *s;
		__u32 len;
		__u32 k = i;

		if (i >= n)
			break;
		s = bpf_map_lookup_elem(&wedge_out, &k);
		if (!s)
			break;
		len = q->r[i].len;
		if (len > WEDGE_SLOT_SIZE) {
			q->r[i].status = -7; /* -E2BIG */
			continue;
		}
		if (len == 0) {
			q->r[i].status = 0;
			continue;
		}
		q->r[i].status = bpf_probe_read_kernel(s->b, len, (void *)q->r[i].addr);
		done++;
	}
	return done;
}

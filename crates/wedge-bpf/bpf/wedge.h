/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The few kernel types wedge.bpf.c reads, declared by hand with only the
 * members it uses. preserve_access_index makes clang record every member
 * access as a CO-RE relocation, so the loader (aya) rewrites the offsets
 * against the running kernel's BTF (/sys/kernel/btf/vmlinux): the build
 * does not depend on the build machine's kernel, and a member the running
 * kernel lacks is detected with bpf_core_field_exists instead of reading
 * garbage.
 */
#ifndef WEDGE_H
#define WEDGE_H

#include <linux/types.h>

#define __pai __attribute__((preserve_access_index))

struct seq_file;

/* The iterator's context (include/linux/bpf.h, an ABI since 5.8: not
 * relocated, which also saves the loader two scans of the kernel's BTF). */
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct task_struct;

struct bpf_iter__task {
	union {
		struct bpf_iter_meta *meta;
	};
	union {
		struct task_struct *task;
	};
};

struct ns_common {
	unsigned int inum;
} __pai;

struct pid_namespace {
	struct ns_common ns;
} __pai;

struct upid {
	int nr;
	struct pid_namespace *ns;
} __pai;

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __pai;

/* x86 keeps thread_info inside task_struct; its `cpu` moved to
 * task_struct->cpu in 5.16. */
struct thread_info {
	__u32 cpu;
} __pai;

struct thread_struct {
	unsigned long sp;
} __pai;

struct rq;

/* kernel/sched/sched.h; `rq` exists with CONFIG_FAIR_GROUP_SCHED. */
struct cfs_rq {
	struct rq *rq;
} __pai;

struct sched_entity {
	__u64 exec_start;
	struct cfs_rq *cfs_rq;
} __pai;

struct sched_info {
	unsigned long long last_arrival;
} __pai;

struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	void *stack;
	unsigned int flags;
	/* CONFIG_SMP: 1 from the moment the scheduler picks the task until
	 * finish_task() after it is switched out. */
	int on_cpu;
	unsigned int cpu;
	struct sched_entity se;
	struct sched_info sched_info;
	int exit_state;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct pid *thread_pid;
	unsigned long nvcsw;
	unsigned long nivcsw;
	__u64 start_time;
	char comm[16];
	/* 6.16+, CONFIG_DETECT_HUNG_TASK_BLOCKER: lock address | type. */
	unsigned long blocker;
	struct thread_struct thread;
	/* Set by io_schedule_prepare() around a sleep on I/O (bio or folio
	 * waits, blk-mq tags; not FUSE's request waits): a bit-field, read
	 * with BPF_CORE_READ_BITFIELD_PROBED. */
	unsigned int in_iowait : 1;
} __pai;

/* Before 5.14 the run state was `long state` (renamed __state so that
 * every reader goes through READ_ONCE). */
struct task_struct___pre514 {
	long state;
} __pai;

/* The lock words are atomic_long_t (a struct of one long): declared as a
 * struct too, since CO-RE refuses a member whose kind differs (a scalar
 * against the kernel's struct); the 8 bytes are read whole. */
typedef struct {
	long counter;
} atomic_long_t;

struct mutex {
	atomic_long_t owner;
} __pai;

struct rw_semaphore {
	atomic_long_t owner;
} __pai;

/* A semaphore has no owner; with CONFIG_DETECT_HUNG_TASK_BLOCKER (6.16+)
 * it keeps the task that last took it. */
struct semaphore {
	unsigned long last_holder;
} __pai;

/* kernel/sched/sched.h: the run queue's clocks. se.exec_start is stamped
 * with clock_task (which leaves out IRQ and steal time), sched_info's
 * last_arrival with clock. */
struct rq {
	__u64 clock;
	__u64 clock_task;
} __pai;

#endif

/*
 * wk: scenario helper for wedge-vmcore's QEMU fixtures. Built static
 * (`cc -static -O2 -o wk wk.c`) and run by the guest's /init (init.sh).
 *
 * Every scenario names its tasks `wk-*` (PR_SET_NAME) so the tests can find
 * them in both the guest's own /proc view and the dump, and each one leaves
 * the kernel in a state that holds still until the dump is written.
 *
 *   wk pipe      wk-pipe      read(2) on an empty pipe: S in pipe_read
 *   wk vfork     wk-vfork     vfork parent: D (TASK_KILLABLE) in
 *                             wait_for_vfork_done; child wk-vfork-child pauses
 *   wk zombie    wk-zombie-par sleeping parent of an unreaped wk-zombie (Z)
 *   wk stop      wk-stopped   SIGSTOP: T
 *   wk sigpend   wk-sigpend   SIGUSR1 pending for the group (shared_pending),
 *                             SIGUSR2 for the thread (pending), both blocked
 *   wk pidns     wk-nsinit    init (pid 1) of a new pid namespace, paused
 *   wk locks     wk-uffd-holder  write(2) from a userfaultfd page nobody
 *                             serves: sleeps in handle_userfault holding the
 *                             pipe's mutex (pipe_write) ...
 *                wk-mutex-wait   ... so a second writer waits in mutex_lock (D)
 *                wk-rwsem-holder / wk-rwsem-wait: the same with a file on
 *                             tmpfs: the holder keeps the inode's i_rwsem
 *                             (writer), the waiter sleeps in down_write (D)
 *   wk fuse      wk-fused     a FUSE "daemon" that mounts /tmp/wk-fuse and
 *                             never reads /dev/fuse, so the INIT handshake
 *                             never completes ...
 *                wk-fuse-reader  ... and a stat(2) below the mount waits in
 *                             the fuse module (fuse_get_req: D, killable)
 *   wk sleep     wk-sleeper   nanosleep: S in hrtimer_nanosleep
 *   wk crash     wk-crasher   writes 'c' to /proc/sysrq-trigger: panic
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void name(const char *n) { prctl(PR_SET_NAME, n, 0, 0, 0); }

static void forever(void) {
	for (;;)
		pause();
}

static void die(const char *what) {
	fprintf(stderr, "wk: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Returns a page registered with a userfaultfd that nobody will ever serve. */
static char *uffd_page(void) {
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		die("UFFDIO_API");
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	struct uffdio_register reg = {
	    .range = {.start = (unsigned long)p, .len = 4096},
	    .mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		die("UFFDIO_REGISTER");
	return p;
}

/* A child that writes `len` bytes from an unserved userfaultfd page to fd,
 * holding whatever lock the write path takes around its copy from user. */
static pid_t holder(const char *comm, int fd) {
	pid_t pid = fork();
	if (pid == 0) {
		name(comm);
		char *p = uffd_page();
		(void)!write(fd, p, 100);
		die("write returned");
	}
	return pid;
}

/* A child that writes to fd, or to its own open of `path` when given (a
 * separate struct file, so it does not queue on the shared f_pos_lock). */
static pid_t waiter(const char *comm, int fd, const char *path) {
	pid_t pid = fork();
	if (pid == 0) {
		name(comm);
		if (path && (fd = open(path, O_WRONLY)) < 0)
			die("open for waiter");
		char buf[100] = {0};
		(void)!write(fd, buf, sizeof buf);
		die("waiter write returned");
	}
	return pid;
}

int main(int argc, char **argv) {
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "pipe")) {
		name("wk-pipe");
		int p[2];
		if (pipe(p) < 0)
			die("pipe");
		char c;
		(void)!read(p[0], &c, 1);
	} else if (!strcmp(what, "vfork")) {
		name("wk-vfork");
		pid_t pid = vfork();
		if (pid == 0) {
			/* Only raw syscalls in a vfork child: it borrows the parent's stack. */
			syscall(SYS_prctl, PR_SET_NAME, "wk-vfork-child", 0, 0, 0);
			for (;;)
				syscall(SYS_pause);
		}
	} else if (!strcmp(what, "zombie")) {
		name("wk-zombie-par");
		pid_t pid = fork();
		if (pid == 0) {
			name("wk-zombie");
			_exit(7);
		}
		forever();
	} else if (!strcmp(what, "stop")) {
		name("wk-stopped");
		raise(SIGSTOP);
		forever();
	} else if (!strcmp(what, "sigpend")) {
		name("wk-sigpend");
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigaddset(&set, SIGUSR2);
		sigprocmask(SIG_BLOCK, &set, NULL);
		kill(getpid(), SIGUSR1);
		syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
		forever();
	} else if (!strcmp(what, "pidns")) {
		name("wk-nsparent");
		if (unshare(CLONE_NEWPID) < 0)
			die("unshare");
		pid_t pid = fork();
		if (pid == 0) {
			name("wk-nsinit");
			forever();
		}
		forever();
	} else if (!strcmp(what, "locks")) {
		name("wk-locks");
		int p[2];
		if (pipe(p) < 0)
			die("pipe");
		holder("wk-mutex-holder", p[1]);
		usleep(300000);
		waiter("wk-mutex-wait", p[1], NULL);
		int fd = open("/tmp/wk-rwsem", O_CREAT | O_WRONLY | O_TRUNC, 0600);
		if (fd < 0)
			die("open");
		holder("wk-rwsem-holder", fd);
		usleep(300000);
		waiter("wk-rwsem-wait", fd, "/tmp/wk-rwsem");
		forever();
	} else if (!strcmp(what, "fuse")) {
		name("wk-fused");
		int fd = open("/dev/fuse", O_RDWR);
		if (fd < 0)
			die("open /dev/fuse");
		mkdir("/tmp/wk-fuse", 0755);
		char opts[128];
		snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
		if (mount("wk", "/tmp/wk-fuse", "fuse.wk", 0, opts) < 0)
			die("mount fuse");
		if (fork() == 0) {
			name("wk-fuse-reader");
			struct stat st;
			stat("/tmp/wk-fuse/x", &st);
			die("stat under an unanswered FUSE mount returned");
		}
		forever();
	} else if (!strcmp(what, "sleep")) {
		name("wk-sleeper");
		struct timespec ts = {.tv_sec = 1000000};
		nanosleep(&ts, NULL);
	} else if (!strcmp(what, "crash")) {
		name("wk-crasher");
		int fd = open("/proc/sysrq-trigger", O_WRONLY);
		if (fd < 0)
			die("open /proc/sysrq-trigger");
		(void)!write(fd, "c", 1);
		die("still alive after sysrq-c");
	} else {
		fprintf(stderr, "usage: wk pipe|vfork|zombie|stop|sigpend|pidns|locks|fuse|sleep|crash\n");
		return 2;
	}
	return 0;
}

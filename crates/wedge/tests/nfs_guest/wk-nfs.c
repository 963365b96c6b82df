/*
 * wk-nfs: the NFS client side of crates/wedge/tests/nfs_guest.rs, run in
 * the fixture guest (Debian's 6.1 kernel, busybox) by nfs-run.sh. Built
 * static (`cc -static -O2`): the guest has no libraries.
 *
 *   wk-nfs mount SRC DIR OPTS   mount(2) of type nfs4 with text options
 *                               (busybox's mount speaks only NFSv2/3's
 *                               binary nfs_mount_data and mountd)
 *   wk-nfs writer FILE STOP     wk-nfs-writer: appends 4 KiB and fsync(2)s
 *                               it every 100 ms until the file STOP exists;
 *                               with the server's threads stopped the fsync
 *                               waits for the WRITE/COMMIT replies (D, in
 *                               rpc_wait_bit_killable)
 *   wk-nfs stat FILE STOP       wk-nfs-stat: stat(2)s FILE every 100 ms
 *                               (GETATTR once the attribute cache expires)
 * Each prints how many rounds it made when it stops.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void nap(void) {
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static int fail(const char *what, const char *path) {
	fprintf(stderr, "wk-nfs: %s %s: %s\n", what, path, strerror(errno));
	return 1;
}

int main(int argc, char **argv) {
	if (argc == 5 && strcmp(argv[1], "mount") == 0) {
		if (mount(argv[2], argv[3], "nfs4", 0, argv[4]) != 0)
			return fail("mount", argv[3]);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "writer") == 0) {
		prctl(PR_SET_NAME, "wk-nfs-writer", 0, 0, 0);
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0)
			return fail("open", argv[2]);
		char buf[4096];
		memset(buf, 'w', sizeof buf);
		long n = 0;
		while (access(argv[3], F_OK) != 0) {
			if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
				return fail("write", argv[2]);
			if (fsync(fd) != 0)
				return fail("fsync", argv[2]);
			n++;
			nap();
		}
		if (close(fd) != 0)
			return fail("close", argv[2]);
		printf("NFS-WRITER-DONE %ld writes\n", n);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "stat") == 0) {
		prctl(PR_SET_NAME, "wk-nfs-stat", 0, 0, 0);
		long n = 0;
		struct stat st;
		while (access(argv[3], F_OK) != 0) {
			if (stat(argv[2], &st) != 0)
				return fail("stat", argv[2]);
			n++;
			nap();
		}
		printf("NFS-STAT-DONE %ld stats\n", n);
		return 0;
	}
	fprintf(stderr, "usage: wk-nfs mount SRC DIR OPTS | writer FILE STOP | stat FILE STOP\n");
	return 2;
}

#!/bin/sh
# The NFS wedge of crates/wedge/tests/nfs_guest.rs, run as root in the
# fixture guest (run-init.sh runs it as /bin/wk-nfs-run once init.sh's
# scenarios are up). No nfs-utils: what rpc.nfsd, exportfs and rpc.mountd
# would do is written to the kernel directly (nfsd's own filesystem and the
# sunrpc caches' channel files), since NFSv4 needs neither rpcbind nor
# statd. Every step prints an NFS-* line the test reads; a step that fails
# prints NFS-FAIL and the script stops.
set -u
say() { echo "NFS-$*"; }
die() {
	say "FAIL $*"
	dmesg | tail -n 30 | sed 's/^/NFS-DMESG /'
	for c in auth.unix.ip nfsd.export nfsd.fh; do
		sed "s/^/NFS-CACHE $c /" /proc/net/rpc/$c/content
	done
	# Leave no task waiting on the mount: the guest must power off.
	umount -f /mnt/nfs 2>/dev/null
	exit 1
}
# Seconds since boot, from /proc/uptime (busybox's date has no %N).
now() { read -r up _ </proc/uptime; echo "${up%.*}"; }

# The modules, in the order their depends= needs (the test resolved it from
# the .ko files' modinfo: the package ships no modules.dep).
for m in $(cat /nfs/modules.order); do
	insmod "/nfs/$m.ko" || die "insmod $m"
done
ip link set lo up || die "lo up"
[ -e /dev/kmsg ] || mknod /dev/kmsg c 1 11

# The server: nfsd's control filesystem (what rpc.nfsd opens), NFSv4 only
# (v2/v3 would need rpcbind and lockd), the lease and the grace period at
# their minimum of 10 s (OPEN waits out the grace period: 90 s by default).
# The legacy recovery directory lets the restarted server accept the
# client's reclaims during its new grace period.
mkdir -p /proc/fs/nfsd /var/lib/nfs/v4recovery /export /mnt/nfs
mount -t nfsd nfsd /proc/fs/nfsd || die "mount nfsd"
echo "-2 -3 +4 +4.1 +4.2" >/proc/fs/nfsd/versions || die "versions"
echo 10 >/proc/fs/nfsd/nfsv4leasetime || die "leasetime"
echo 10 >/proc/fs/nfsd/nfsv4gracetime || die "gracetime"
mount -t tmpfs export /export || die "tmpfs /export"
# The export, as rpc.mountd answers the kernel's upcalls (one line each, in
# the order the kernel parses them, fs/nfsd/export.c and
# net/sunrpc/svcauth_unix.c):
# - auth.unix.ip: CLASS ADDRESS EXPIRY DOMAIN — 127.0.0.1 is client "wk";
# - nfsd.export: DOMAIN PATH EXPIRY FLAGS ANONUID ANONGID FSID — /export
#   with NFSEXP_FSID|NFSEXP_NOSUBTREECHECK|NFSEXP_INSECURE_PORT (0x2402:
#   tmpfs has no device number, so fsid=0 names it; it is also the NFSv4
#   pseudo-root), read-write, no root squash;
# - nfsd.fh: DOMAIN FSIDTYPE FSID EXPIRY PATH — fsid type 1 (FSID_NUM),
#   fsid 0 as four bytes in hex, the root the client's PUTROOTFH finds.
# EXPIRY is wall-clock seconds: INT_MAX never expires.
# When its last thread exits nfsd flushes the export caches
# (nfsd_last_thread → nfsd_export_flush): mountd answers the upcalls of a
# restarted server, here the same lines are written again.
export_caches() {
	exp=2147483647
	echo "nfsd 127.0.0.1 $exp wk" >/proc/net/rpc/auth.unix.ip/channel || die "auth.unix.ip"
	echo "wk /export $exp 9218 65534 65534 0" >/proc/net/rpc/nfsd.export/channel || die "nfsd.export"
	echo "wk 1 \\x00000000 $exp /export" >/proc/net/rpc/nfsd.fh/channel || die "nfsd.fh"
}
export_caches
echo 8 >/proc/fs/nfsd/threads || die "threads 8"
# A fresh server has no clients to reclaim their state: end its grace
# period now, as nfsdcld does when it knows of none.
echo Y >/proc/fs/nfsd/v4_end_grace || die "v4_end_grace"
say "SERVER up: threads $(cat /proc/fs/nfsd/threads)"

# The client: hard (retries forever), 1 s timeouts so that the kernel says
# "not responding" within seconds.
opts="vers=4.2,addr=127.0.0.1,clientaddr=127.0.0.1,proto=tcp,port=2049,hard,timeo=10,retrans=1"
wk-nfs mount 127.0.0.1:/ /mnt/nfs "$opts" || die "mount nfs4"
grep ' /mnt/nfs ' /proc/self/mountinfo | sed 's/^/NFS-MOUNTINFO /'
t0=$(now)
echo hello >/mnt/nfs/hello || die "first write"
say "FIRST-WRITE after $(($(now) - t0)) s"

wk-nfs writer /mnt/nfs/data /nfs-stop >/nfs-writer.out 2>&1 &
writer=$!
wk-nfs stat /mnt/nfs/hello /nfs-stop >/nfs-stat.out 2>&1 &
stater=$!
sleep 2
say "WRITER $writer"
say "STATER $stater"
ls -l /mnt/nfs | sed 's/^/NFS-LS /'

# rpc.nfsd 0: the server's threads stop (and its sockets close).
echo 0 >/proc/fs/nfsd/threads || die "threads 0"
say "SERVER stopped"
state() { s=$(cat /proc/$1/stat 2>/dev/null) && s=${s##*) } && echo "${s%% *}"; }
# Running or asleep: gone, or a zombie this shell has not reaped yet, is not.
alive() { s=$(state $1) && [ -n "$s" ] && [ "$s" != Z ]; }
i=0
until [ "$(state $writer)" = D ] && dmesg | grep -q 'not responding'; do
	i=$((i + 1))
	[ $i -gt 60 ] && die "after 60 s: writer state $(state $writer), no 'not responding'"
	sleep 1
done
say "WEDGED after $i s: writer $(state $writer), stat $(state $stater)"
sed 's/^/NFS-STACK /' /proc/$writer/stack

run() {
	name=$1
	shift
	echo "NFS-BEGIN $name"
	"$@" 2>/nfs-err
	echo "NFS-EXIT $?"
	sed 's/^/NFS-ERR /' /nfs-err
	echo "NFS-END $name"
}
run text wedge
run why wedge why "$writer"
run json wedge --json
run log wedge log

# rpc.nfsd 8: the server is back; the hard mount's calls are retried and
# complete. The writer stops once its fsync returned and it sees /nfs-stop.
t0=$(now)
export_caches
echo 8 >/proc/fs/nfsd/threads || die "threads 8 again"
say "SERVER restarted"
touch /nfs-stop
i=0
while alive $writer || alive $stater; do
	i=$((i + 1))
	[ $i -gt 60 ] && die "after 60 s the writer ($(state $writer)) or stat ($(state $stater)) still runs"
	sleep 1
done
wait $writer
say "WRITER-EXIT $? after $(($(now) - t0)) s"
wait $stater
say "STAT-EXIT $?"
sed 's/^/NFS-OUT /' /nfs-writer.out /nfs-stat.out
run log-after wedge log
dmesg | grep -i -e nfs -e rpc | sed 's/^/NFS-KLOG /'
umount /mnt/nfs || say "umount failed"
say "DONE"

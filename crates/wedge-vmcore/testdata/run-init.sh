#!/bin/busybox sh
# /init of a boot that runs programs of a test's in the fixture guest
# (fixture::run_in_guest): init.sh, unchanged, sets up the wk scenarios as
# for the dumps (its own report goes to /wk.log, not the console); once it
# says WK-READY each program of /wk-run.list runs as root, in turn. Its
# stdout goes to the console between WK-RUN-BEGIN NAME and WK-RUN-END, each
# stderr line as WK-RUN-ERR, its status as WK-RUN-EXIT, and the guest's own
# /proc view follows each program (WK-BEGIN … WK-END). Then /proc/version
# as WK-VERSION, WK-RUN-DONE, and the guest powers off.
/bin/busybox mkdir -p /proc /sys
# Without job control an asynchronous command's stdin is /dev/null, which
# the shared initramfs does not have.
/bin/busybox mknod /dev/null c 1 3
/bin/busybox sh /wk-init.sh >/wk.log 2>&1 &
# init.sh's scenarios take a few seconds under TCG; the host bounds the
# whole boot, this loop bounds the wait for them.
n=0
until /bin/busybox grep -q WK-READY /wk.log 2>/dev/null; do
	n=$((n + 1))
	if [ $n -gt 120 ]; then
		echo "WK-RUN-NOT-READY init.sh did not reach WK-READY in 120 s"
		break
	fi
	/bin/busybox sleep 1
done
/bin/busybox grep WK-NOTE /wk.log

# The guest's own /proc view of every task, printed with shell builtins
# only as init.sh prints it (so no transient task appears).
view() {
	echo WK-BEGIN
	for d in /proc/[0-9]*/task/[0-9]*; do
		t=${d##*/}
		read -r s <$d/stat && echo "WK-STAT $s"
		while read -r k v; do
			case $k in State:|NSpid:) echo "WK-STATUS $t $k $v" ;; esac
		done <$d/status
	done
	echo WK-END
}

# One program a line: NAME ARGS (split on spaces); the view right after each.
while read -r name args; do
	echo "WK-RUN-BEGIN $name"
	# shellcheck disable=SC2086
	/bin/$name $args </dev/null 2>/wk-run.err
	echo "WK-RUN-EXIT $?"
	while read -r l; do echo "WK-RUN-ERR $l"; done </wk-run.err
	echo WK-RUN-END
	view
done </wk-run.list
read -r v </proc/version && echo "WK-VERSION $v"
echo WK-RUN-DONE
/bin/busybox poweroff -f

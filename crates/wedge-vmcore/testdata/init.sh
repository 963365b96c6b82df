#!/bin/busybox sh
# /init of wedge-vmcore's QEMU fixture guest (see tests/common/fixture.rs).
# Sets up the scenarios of wk.c, prints the guest's own view of every task on
# the serial console between WK-BEGIN and WK-END (only shell builtins run
# while it reads, so no transient task appears), then WK-READY; the host then
# writes the dumps. With `wedge.crash` on the command line it then panics the
# kernel with sysrq-c from the task wk-crasher.
/bin/busybox mkdir -p /proc /sys /tmp /bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
# qemu_fw_cfg hands the kernel's VMCOREINFO to QEMU (-device vmcoreinfo), so
# QEMU's dumps carry it like a kdump vmcore does.
insmod /qemu_fw_cfg.ko 2>/dev/null || echo "WK-NOTE qemu_fw_cfg not loaded"
echo 1 > /proc/sys/kernel/sysrq
# fuse is a module in Debian's kernels: its frames test module symbols and
# module ORC tables in the dumps.
insmod /fuse.ko 2>/dev/null || echo "WK-NOTE fuse not loaded"

wk pipe &
wk vfork &
wk zombie &
wk stop &
wk sigpend &
wk pidns &
wk locks &
wk fuse &
wk sleep &
sleep 2

echo WK-BEGIN
for d in /proc/[0-9]*/task/[0-9]*; do
	t=${d##*/}
	read -r s < $d/stat && echo "WK-STAT $s"
	while read -r l; do echo "WK-STACK $t $l"; done < $d/stack
	while read -r k v; do
		case $k in SigPnd:|ShdPnd:|NSpid:) echo "WK-STATUS $t $k $v" ;; esac
	done < $d/status
done
echo WK-END
echo WK-READY

case "$(cat /proc/cmdline)" in
*wedge.crash*) sleep 1; wk crash ;;
esac
while true; do sleep 1000; done

#!/bin/busybox sh
# /init of the `kdump` boot's first kernel (see tests/common/fixture.rs): the
# production path to a crash dump. The kernel was booted with crashkernel=,
# which reserves memory for a capture kernel; kexec_file_load (`kexec -s -p`)
# puts Debian's kernel and its own initramfs (kdump-capture.sh as /init)
# there, and the panic that init.sh's `wk crash` causes jumps into it instead
# of stopping. Then the ordinary init.sh runs (the same scenarios and the
# same guest view as the `crash` boot).
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
# kexec is Debian's (dynamic): its libraries are in /lib of this initramfs.

if LD_LIBRARY_PATH=/lib /kdump/kexec -s -p /kdump/vmlinuz --initrd=/kdump/capture.cpio \
	--append="$(/bin/busybox cat /kdump/cmdline)"; then
	echo "WK-KEXEC-LOADED $(/bin/busybox cat /sys/kernel/kexec_crash_loaded)"
else
	echo "WK-KEXEC-FAILED $?"
fi
# A task running in the kernel on the other CPU when the panic comes: the
# NMI that stops that CPU (crash_nmi_callback) saves the registers it
# interrupted, and the task's stack must unwind from them. dd from
# /dev/urandom spends nearly all its time in the kernel (ChaCha20). init,
# and so every scenario task and the crasher, stays on CPU 0; dd on CPU 1.
/bin/busybox mknod /dev/urandom c 1 9
/bin/busybox mknod /dev/null c 1 3
/bin/busybox taskset -p 1 $$ >/dev/null
/bin/busybox taskset 2 /bin/busybox dd if=/dev/urandom of=/dev/null bs=1M 2>/dev/null &
echo "WK-SPINNER $!"
/bin/busybox umount /sys
/bin/busybox umount /proc
exec /bin/busybox sh /wk-init.sh

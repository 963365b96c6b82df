#!/bin/busybox sh
# /init of the `kdump` boot's capture kernel (see tests/common/fixture.rs).
# The panicking kernel jumped here through __crash_kexec; its memory is
# /proc/vmcore, an ELF file whose header this kernel built from the
# panicked kernel's elfcorehdr (one NT_PRSTATUS note per CPU). makedumpfile
# writes the kdump-compressed file the way distributions' kdump services do
# (-c zlib, -d 31 leaves out zero, cache, user and free pages), and
# /proc/vmcore itself is copied too (the ELF dump). Both go onto the virtio
# disk, raw, behind a one-block text header the host reads back:
#   WK-DISK / NAME OFFSET SIZE ... / WK-DISK-END
# (a raw disk needs no file system module, and the kdump file is first
# written to tmpfs so that its size is known).
/bin/busybox mkdir -p /proc /sys /tmp /bin /dev
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
export LD_LIBRARY_PATH=/lib
echo "WK-CAPTURE $(cat /proc/cmdline)"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
	insmod /kdump/$m.ko || echo "WK-NOTE $m not loaded"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda ] || { echo "WK-CAPTURE-FAILED no /dev/vda"; poweroff -f; }
s=$(date +%s)
makedumpfile -c -d 31 /proc/vmcore /tmp/kdump.dump >/dev/null 2>/tmp/mdf.err
rc=$?
echo "WK-MAKEDUMPFILE rc=$rc $(($(date +%s) - s)) s"
# Its progress meter rewrites one line with \r: the last 300 bytes say why.
[ $rc -eq 0 ] || { echo "WK-CAPTURE-FAILED makedumpfile: $(tail -c 300 /tmp/mdf.err | tr '\r' '\n')"; poweroff -f; }
ksize=$(stat -c %s /tmp/kdump.dump)
esize=$(stat -c %s /proc/vmcore)
# In MiB: the kdump file at 1 MiB, the ELF copy after it.
eoff=$((1 + (ksize + 1048575) / 1048576))
dd if=/tmp/kdump.dump of=/dev/vda bs=1M seek=1 2>/dev/null
rm /tmp/kdump.dump
s=$(date +%s)
dd if=/proc/vmcore of=/dev/vda bs=1M seek=$eoff 2>/dev/null
echo "WK-ELF-COPY $esize bytes $(($(date +%s) - s)) s"
printf 'WK-DISK\nkdump-zlib %d %d\nelf %d %d\nWK-DISK-END\n' 1048576 "$ksize" $((eoff * 1048576)) "$esize" >/tmp/hdr
dd if=/tmp/hdr of=/dev/vda bs=4096 count=1 conv=sync 2>/dev/null
sync
echo WK-CAPTURE-DONE
poweroff -f

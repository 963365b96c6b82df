#!/usr/bin/env bash
# The guest that wedge-vmcore's tests boot in QEMU to make real crash dumps
# (crates/wedge-vmcore/tests/common/fixture.rs): Debian's 6.1 kernel and a
# static busybox, fetched with `apt-get download` and unpacked with
# `dpkg-deb -x` under the build directory. Nothing is installed on the
# host: installing linux-image-amd64 would run update-initramfs and write
# /boot, and busybox-static would replace the host's busybox, only to feed
# a virtual machine.
#
#   target/vmcore-fixtures/kernel/   boot/vmlinuz-R, boot/System.map-R,
#                                    lib/modules/R/... (+ the .deb)
#   target/vmcore-fixtures/busybox/  bin/busybox (+ the .deb)
#   target/vmcore-fixtures/kdump-tools/PKG/
#                                    kexec-tools (sbin/kexec), makedumpfile
#                                    (usr/bin/makedumpfile) and the Xen
#                                    libraries Debian's kexec links, one
#                                    package a directory: the `kdump` boot
#                                    copies them, with the host's own copies
#                                    of glibc, zlib and friends, into the
#                                    guest's initramfs (a real kexec/kdump)
#
# A second run finds the .deb and the unpacked tree and fetches nothing.
# WEDGE_VMCORE_FIXTURES moves the whole cache, as it does for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
target=${target:-target}
cache=${WEDGE_VMCORE_FIXTURES:-$target/vmcore-fixtures}

# The fixtures and tests are written against Debian bookworm's 6.1 kernel
# (6.1's kthread full_name, its struct layouts as BTF describes them):
# the image package is whatever linux-image-amd64 depends on, and must be
# a 6.1 one. Debian's security archive moves the ABI number (6.1.0-N) and
# drops old ones, so the name is resolved here, not written down.
kernel_package() {
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*-amd64\).*/\1/p' | head -n1
}

# fetch DIR PACKAGE: the package's .deb into DIR (once), unpacked into DIR.
fetch() {
    local dir=$1 pkg=$2 deb
    mkdir -p "$dir"
    deb=$(ls "$dir"/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        # A new package (Debian moved the kernel ABI): drop the old tree, so
        # that one kernel and its own modules are all the directory holds.
        rm -rf "$dir"
        mkdir -p "$dir"
        echo "vmcore-guest: downloading $pkg into $dir"
        # apt drops root to _apt for downloads; the cache dir is root's.
        (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") || {
            apt-get update -qq
            (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
        }
        deb=$(ls "$dir"/"${pkg}"_*.deb | head -n1)
    fi
    if [ ! -e "$dir/.unpacked" ] || [ "$(cat "$dir/.unpacked")" != "$(basename "$deb")" ]; then
        dpkg-deb -x "$deb" "$dir"
        basename "$deb" >"$dir/.unpacked"
    fi
}

pkg=$(kernel_package)
if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(kernel_package)
fi
case "$pkg" in
linux-image-6.1.*-amd64) ;;
*)
    echo "vmcore-guest: linux-image-amd64 depends on '${pkg:-nothing}', not a Debian 6.1 kernel;" >&2
    echo "  the crash-dump tests expect bookworm's 6.1 (or set WEDGE_VMCORE_KERNEL=PATH/boot/vmlinuz-R)" >&2
    exit 1
    ;;
esac
fetch "$cache/kernel" "$pkg"
fetch "$cache/busybox" busybox-static
release=${pkg#linux-image-}
test -f "$cache/kernel/boot/vmlinuz-$release"
test -f "$cache/busybox/bin/busybox"

# The kdump boot loads a capture kernel with kexec and dumps with
# makedumpfile inside the guest. Debian links kexec against libxenctrl
# (for kexec under Xen), which the host does not have: the libxen*
# packages kexec-tools depends on, followed from its Depends (their
# names carry the Xen version), are fetched too. Everything else they
# link (glibc, zlib, libelf…) the fixture copies from the host.
xen_packages() {
    local todo=(kexec-tools) seen=" " p d
    while ((${#todo[@]})); do
        p=${todo[0]}
        todo=("${todo[@]:1}")
        for d in $(apt-cache depends "$p" 2>/dev/null | sed -n 's/^ *Depends: \(libxen[^ ]*\)$/\1/p'); do
            case "$seen" in *" $d "*) continue ;; esac
            seen="$seen$d "
            todo+=("$d")
            echo "$d"
        done
    done
}
for p in kexec-tools makedumpfile $(xen_packages); do
    fetch "$cache/kdump-tools/$p" "$p"
done
test -f "$cache/kdump-tools/kexec-tools/sbin/kexec"
test -f "$cache/kdump-tools/makedumpfile/usr/bin/makedumpfile"
echo "vmcore-guest: $cache/kernel/boot/vmlinuz-$release, $cache/busybox/bin/busybox, $cache/kdump-tools"

#!/usr/bin/env bash
# What the crash-dump tests compare wedge with: the DWARF of the kernel the
# fixtures boot (Debian's linux-image-R-dbg) and drgn from PyPI, both under
# the fixture cache. Nothing is installed on the host: installing the -dbg
# package would put 600 MB under /usr/lib/debug for a kernel the host does
# not run, and drgn comes from PyPI into a venv of its own.
#
#   target/vmcore-fixtures/debuginfo/  usr/lib/debug/boot/vmlinux-R,
#                                      usr/lib/debug/lib/modules/R/kernel/
#                                        {fs/fuse/fuse.ko,
#                                         drivers/firmware/qemu_fw_cfg.ko}
#   target/vmcore-fixtures/drgn/       a venv with drgn (bin/drgn)
#
# The -dbg package is the one of the kernel scripts/vmcore-guest.sh
# unpacked (same package, same version: the build-ids match). Only the
# vmlinux and the modules the guest loads (testdata/init.sh: qemu_fw_cfg
# for VMCOREINFO, fuse for the FUSE scenarios) are extracted. The 858 MB
# .deb is not kept: the extracted files are all the tests read, and a
# fresh download takes seconds where keeping it would double the cache's
# size; `.unpacked` records which .deb the tree came from.
#
# A second run finds both and fetches nothing. WEDGE_VMCORE_FIXTURES moves
# the whole cache, as it does for the tests. The tests find these through
# the cache, or WEDGE_DEBUGINFO=VMLINUX and WEDGE_DRGN=DRGN when set;
# `--env` prints those two as shell exports (progress goes to stderr), for
# scripts/test.sh to hand to every test. Already set, they are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--env" ]; then
    exec 3>&1 1>&2
fi

target=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
target=${target:-target}
cache=${WEDGE_VMCORE_FIXTURES:-$target/vmcore-fixtures}

# drgn 0.3.0: the version the comparison tests and benches/ were checked
# against (its stack traces, inline frames and variable reads).
DRGN_VERSION=0.3.0

# The guest kernel's .deb, as vmcore-guest.sh recorded it:
# linux-image-R_VERSION_amd64.deb.
stamp="$cache/kernel/.unpacked"
if [ ! -s "$stamp" ]; then
    echo "vmcore-debuginfo: no $stamp: run scripts/vmcore-guest.sh first (it fetches the guest kernel)" >&2
    exit 1
fi
IFS=_ read -r kpkg kver _ <"$stamp"
case "$kpkg" in
linux-image-6.1.*-amd64) ;;
*)
    echo "vmcore-debuginfo: $stamp names '$kpkg', not a Debian 6.1 kernel package" >&2
    exit 1
    ;;
esac
release=${kpkg#linux-image-}
dbg="$kpkg-dbg"

dir="$cache/debuginfo"
vmlinux="$dir/usr/lib/debug/boot/vmlinux-$release"
want="${dbg}_${kver}_amd64.deb"
if [ ! -f "$vmlinux" ] || [ "$(cat "$dir/.unpacked" 2>/dev/null)" != "$want" ]; then
    # Another kernel (Debian moved the ABI) or an extraction cut short:
    # start again, so the tree holds one kernel's files, all of them.
    rm -rf "$dir"
    mkdir -p "$dir/.partial"
    echo "vmcore-debuginfo: downloading $dbg=$kver into $dir (~860 MB, not kept)"
    # apt drops root to _apt for downloads; the cache dir is root's. The
    # timeout bounds a stalled mirror (the download takes ~10 s here).
    get() { (cd "$dir/.partial" && timeout 1800 apt-get download -qq -o APT::Sandbox::User=root "$dbg=$kver"); }
    get || {
        apt-get update -qq
        get
    }
    deb="$dir/.partial/$want"
    test -f "$deb"
    echo "vmcore-debuginfo: extracting vmlinux-$release and the guest's modules"
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$dir/.partial" --wildcards \
            "./usr/lib/debug/boot/vmlinux-$release" \
            "./usr/lib/debug/lib/modules/$release/kernel/fs/fuse/fuse.ko" \
            "./usr/lib/debug/lib/modules/$release/kernel/drivers/firmware/qemu_fw_cfg.ko"
    rm -f "$deb"
    mv "$dir/.partial/usr" "$dir/usr"
    rmdir "$dir/.partial"
    echo "$want" >"$dir/.unpacked"
fi
test -f "$vmlinux"

venv="$cache/drgn"
drgn_version() { "$venv/bin/drgn" --version 2>/dev/null | awk 'NR == 1 { print $2 }'; }
if [ "$(drgn_version)" != "$DRGN_VERSION" ]; then
    rm -rf "$venv"
    echo "vmcore-debuginfo: drgn==$DRGN_VERSION from PyPI into $venv"
    python3 -m venv "$venv"
    timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check "drgn==$DRGN_VERSION"
fi
test "$(drgn_version)" = "$DRGN_VERSION"
echo "vmcore-debuginfo: $vmlinux, $venv/bin/drgn $DRGN_VERSION"
if [ "${1:-}" = "--env" ]; then
    printf 'export WEDGE_DEBUGINFO=%q WEDGE_DRGN=%q\n' \
        "${WEDGE_DEBUGINFO:-$(realpath "$vmlinux")}" "${WEDGE_DRGN:-$(realpath -s "$venv/bin/drgn")}" >&3
fi

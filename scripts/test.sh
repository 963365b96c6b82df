#!/usr/bin/env bash
# wedge's whole test suite, on a fresh machine of this kind (Debian, Rust
# toolchain, root): installs what the tests need, then checks formatting,
# lints and runs every test. Tests that need root, FUSE, io_uring or pid
# namespaces run for real; where a capability is missing they print
# "SKIPPED: reason", and under CI (CI=true) such a skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use.
need=()
command -v gdb >/dev/null 2>&1 || need+=(gdb)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v timeout >/dev/null 2>&1 || need+=(coreutils)
# gcc also builds the libzstd and liblzma that zstd-sys and liblzma-sys bundle.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v lz4 >/dev/null 2>&1 || need+=(lz4)
# glibc's own debug symbols: backtraces of core files are compared with gdb's.
[ -d /usr/lib/debug/.build-id ] && dpkg -s libc6-dbg >/dev/null 2>&1 || need+=(libc6-dbg)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The storage scenes (crates/wedge-testkit/src/storage.rs) put ext4, XFS and
# btrfs on loop devices and freeze them: losetup (mount), fsfreeze and
# addpart (util-linux), and each filesystem's mkfs.
command -v losetup >/dev/null 2>&1 || need+=(mount)
command -v fsfreeze >/dev/null 2>&1 || need+=(util-linux)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
command -v mkfs.xfs >/dev/null 2>&1 || need+=(xfsprogs)
command -v mkfs.btrfs >/dev/null 2>&1 || need+=(btrfs-progs)
# wedge-bpf's build.rs compiles its BPF program (crates/wedge-bpf/bpf/) with
# clang -target bpf against libbpf's headers (bpf_helpers.h, bpf_core_read.h);
# without them wedge still builds but its BPF tests have nothing to load.
# bpftool is for looking at loaded programs when a BPF test fails.
command -v clang >/dev/null 2>&1 || need+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
# Kernel crash dumps are made in the tests: QEMU (TCG) boots Debian's kernel
# with a busybox initramfs and writes ELF and kdump-compressed dumps. The
# guest's kernel and busybox are not installed (that would write /boot and
# replace the host's busybox): scripts/vmcore-guest.sh, below, unpacks them
# into the target directory.
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v makedumpfile >/dev/null 2>&1 || need+=(makedumpfile)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# drgn, which the crash-dump tests compare wedge with, comes from PyPI into
# a venv under the fixture cache (scripts/vmcore-debuginfo.sh, below).
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash scripts/vmcore-guest.sh
# Prometheus and promtool, unpacked under target/ (the metrics tests).
bash scripts/prometheus.sh
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

if [ "${CI:-}" = "true" ]; then
    # A missing capability must fail CI, not pass it silently.
    export WEDGE_REQUIRE_ALL=1
fi

# The fixture kernel's DWARF (its -dbg package, the vmlinux and the guest's
# modules extracted, nothing installed) and drgn from PyPI, for the tests
# that compare wedge's frames, variables and expressions with drgn's
# (crates/wedge/tests/vmcore_drgn.rs, vmcore_bt.rs): exported to them as
# WEDGE_DEBUGINFO and WEDGE_DRGN. Without a network locally those tests
# print SKIPPED; in CI a failed fetch fails the run.
if debuginfo_env=$(bash scripts/vmcore-debuginfo.sh --env); then
    eval "$debuginfo_env"
else
    if [ -n "${WEDGE_REQUIRE_ALL:-}" ]; then
        echo "scripts/vmcore-debuginfo.sh failed" >&2
        exit 1
    fi
    echo "scripts/vmcore-debuginfo.sh failed: the drgn comparisons will be SKIPPED" >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# What the tests leave in /tmp: scratch dirs, sockets and locks must all be
# gone when they end (their own live under the target dir).
wedge_tmp() { find /tmp -maxdepth 1 -name 'wedge-*' -printf '%f\n' 2>/dev/null | sort; }
tmp_before=$(wedge_tmp)
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The fuzz targets, built and run a few seconds each on seeds made from
# the fixtures the tests above left in target/ (scripts/fuzz.sh).
bash scripts/fuzz.sh || status=1
left=$(comm -13 <(echo "$tmp_before") <(wedge_tmp))
if [ -n "$left" ]; then
    echo "the tests left in /tmp:" $left
    # On a machine shared with other runs these may be theirs: a warning
    # there, a failure in CI.
    [ -z "${WEDGE_REQUIRE_ALL:-}" ] || status=1
fi
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ (cargo-fuzz, libFuzzer + ASan, overflow
# checks on) and runs each briefly on seed corpora made here from the test
# fixtures; fails on any crash, printing the input and how to reproduce it.
#
#   scripts/fuzz.sh              all targets, FUZZ_SECONDS (default 12) each
#   scripts/fuzz.sh klog         one target
#   FUZZ_SECONDS=600 scripts/fuzz.sh core_notes
#
# Everything it makes stays under target/fuzz/: the build (build/), the
# seeds (seeds/TARGET, remade on every run), the corpus libFuzzer grows
# (corpus/TARGET, kept between runs) and crash inputs (artifacts/TARGET).
# Only tiny hand-checked regression inputs are committed, in
# fuzz/regressions/TARGET; they are run as seeds every time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/fuzz
seconds=${FUZZ_SECONDS:-12}
targets=(klog core_notes vmcore_notes vmcore_header vmcore_btf input kexpr bpf_records)
if (($#)); then
    targets=("$@")
fi

# cargo-fuzz is a cargo subcommand from crates.io, installed once into
# ~/.cargo/bin. It needs nightly only for -Zsanitizer and friends, which
# RUSTC_BOOTSTRAP=1 unlocks on the stable toolchain (no nightly can be
# fetched here). libfuzzer-sys compiles libFuzzer itself with a C++ compiler.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --target-dir "$out/cargo-fuzz-install"
    rm -rf "$out/cargo-fuzz-install"
fi
if ! command -v c++ >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
export RUSTC_BOOTSTRAP=1

echo "fuzz: building ${targets[*]}"
# Not --locked: fuzz/Cargo.lock follows the workspace crates' own
# dependencies, which change without the fuzz crate being touched.
if (($#)); then
    for t in "${targets[@]}"; do
        cargo fuzz build --target-dir "$out/build" "$t"
    done
else
    cargo fuzz build --target-dir "$out/build"
fi

# A seed source that is missing: said, and under CI (WEDGE_REQUIRE_ALL, as
# scripts/test.sh sets it) a failure, as for the tests' own skips.
status=0
skip() {
    echo "SKIPPED: fuzz: $*"
    if [ "${WEDGE_REQUIRE_ALL:-}" = 1 ]; then
        status=1
    fi
}

# ------------------------------------------------------------------ seeds
seeds=$out/seeds
rm -rf "$seeds"
mkdir -p "$seeds"

# Fields of an ELF64 file's program headers, one line per header:
# type offset filesz (hex, as readelf prints them).
phdrs() { readelf -lW "$1" 2>/dev/null | awk '$1 ~ /^(NOTE|LOAD)$/ { print $1, $2, $5 }'; }
# LEN bytes at OFF of FILE, on stdout.
carve() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }
le32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
# The PT_NOTE segment of an ELF file, and its beginning up to the end of
# the notes and the first page of the first PT_LOAD (headers, notes and, in
# a process core, the ELF header page of the executable with its build-id).
elf_pieces() { # FILE DIR NAME
    local type off size notes_end=0 first_load=
    while read -r type off size; do
        if [ "$type" = NOTE ]; then
            carve "$1" $((off)) $((size)) >"$2/$3.notes"
            notes_end=$((off + size))
        elif [ -z "$first_load" ]; then
            first_load=$((off + (size < 4096 ? size : 4096)))
        fi
    done < <(phdrs "$1")
    local end=$((first_load > notes_end ? first_load : notes_end))
    if ((end > 0 && end <= 1 << 20)); then
        head -c "$end" "$1" >"$2/$3.head"
    fi
}

# klog: the kernel-log corpus, whole (each file is a few KB).
mkdir -p "$seeds/klog"
cp corpus/kernel-logs/*.log "$seeds/klog/"

# input: two corpus logs, each compressed in every format wedge reads
# (small: the fuzzer mutates whole files), and one plain.
mkdir -p "$seeds/input"
for log in $(ls corpus/kernel-logs/*.log | head -n 2); do
    n=$(basename "$log" .log)
    cp "$log" "$seeds/input/$n.log"
    gzip -9c "$log" >"$seeds/input/$n.gz"
    xz -9c "$log" >"$seeds/input/$n.xz"
    if command -v zstd >/dev/null 2>&1; then zstd -q -19 -c "$log" >"$seeds/input/$n.zst"; fi
    if command -v lz4 >/dev/null 2>&1; then lz4 -q -9 -c "$log" >"$seeds/input/$n.lz4"; fi
done

# core_notes: a core the kernel writes for a tiny static abort() program.
# core_pattern is system-wide and belongs to the host: it is only read,
# never set. A plain file name (the kernel's default "core") puts the core
# in the crashing process's cwd, here; a pipe (systemd-coredump, apport) or
# a path elsewhere does not, and gdb's gcore makes the core instead.
mkdir -p "$seeds/core_notes"
work=$out/work
rm -rf "$work"
mkdir -p "$work"
core=
if command -v gcc >/dev/null 2>&1; then
    printf '#include <stdlib.h>\nint main(void) { abort(); }\n' >"$work/abort.c"
    if gcc -O0 -static -o "$work/abort" "$work/abort.c" 2>/dev/null ||
        gcc -O0 -o "$work/abort" "$work/abort.c"; then
        pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || true)
        if [[ $pattern != \|* && $pattern != */* ]]; then
            # (Braces: the shell's own "Aborted" report goes to /dev/null too.)
            { (cd "$work" && ulimit -c unlimited && exec timeout 30 ./abort) || true; } 2>/dev/null
            core=$(find "$work" -maxdepth 1 -type f ! -name 'abort*' -print -quit)
        fi
        if [ -z "$core" ] && command -v gdb >/dev/null 2>&1; then
            timeout 60 gdb -nx -q -batch -ex run -ex "gcore $work/gcore" "$work/abort" \
                >/dev/null 2>&1 || true
            [ -s "$work/gcore" ] && core=$work/gcore
        fi
    fi
fi
if [ -n "$core" ]; then
    elf_pieces "$core" "$seeds/core_notes" abort-core
else
    skip "no core could be made (gcc, core_pattern or gdb): core_notes runs on its regression seeds only"
fi
rm -rf "$work"

# vmcore_*: pieces of the QEMU dumps the wedge-vmcore tests cache, when
# they are there (a full suite run makes them first).
mkdir -p "$seeds/vmcore_notes" "$seeds/vmcore_header" "$seeds/vmcore_btf"
fixtures=${WEDGE_VMCORE_FIXTURES:-$root/target/vmcore-fixtures}
btf_done=
shopt -s nullglob
for dump in "$fixtures"/*/*/*.dump; do
    name=$(basename "$(dirname "$dump")")-$(basename "$dump" .dump)
    # The headers: ELF header, program headers and notes; or the kdump
    # disk_dump_header, kdump_sub_header, VMCOREINFO, notes, both bitmaps
    # and the first page descriptors (or the flattened format's first
    # records). Past 64 KiB it is page contents.
    head -c 65536 "$dump" >"$seeds/vmcore_header/$name"
    if [ "$(head -c 4 "$dump" | od -An -c | tr -d ' ')" = 177ELF ]; then
        elf_pieces "$dump" "$seeds/vmcore_notes" "$name"
        rm -f "$seeds/vmcore_notes/$name.head"
        # The kernel keeps vmlinux's .BTF in memory (__start_BTF), and
        # each module's own split BTF beside it: the largest header found
        # (magic 0xeB9F, version 1, flags 0, hdr_len 24) whose sections
        # fit and whose first type is well-formed is vmlinux's (in the 6.1
        # dumps one of two such copies starts with words that are no
        # type). The whole blob is megabytes, too big to mutate well: the
        # seed keeps the header, the first 48 KiB of types (a cut-off last
        # type is ignored by the reader) and the first 16 KiB of strings,
        # with type_len and str_off/str_len rewritten to match.
        if [ -z "$btf_done" ]; then
            best= best_len=0
            size=$(stat -c %s "$dump")
            while IFS=: read -r at _; do
                read -r type_off type_len str_off str_len < <(od -An -tu4 -j $((at + 8)) -N16 "$dump")
                end=$((at + 24 + (type_off + type_len > str_off + str_len ? type_off + type_len : str_off + str_len)))
                # The first type's info word: vlen in bits 0-15, kind
                # (1-19 today) in 24-28, the rest unused and zero.
                info=$(od -An -tu4 -j $((at + 28 + type_off)) -N4 "$dump" | tr -d ' ')
                kind=$((${info:-0} >> 24 & 31))
                if ((end <= size && (${info:-0} & 0x60ff0000) == 0 && kind >= 1 && kind <= 19 &&
                    type_len + str_len > best_len && type_len + str_len < 64 << 20)); then
                    best="$at $type_off $type_len $str_off $str_len"
                    best_len=$((type_len + str_len))
                fi
            done < <(LC_ALL=C grep -obUaP '\x9f\xeb\x01\x00\x18\x00\x00\x00' "$dump" | head -n 64)
            if [ -n "$best" ]; then
                read -r at type_off type_len str_off str_len <<<"$best"
                tl=$((type_len < 49152 ? type_len : 49152))
                sl=$((str_len < 16384 ? str_len : 16384))
                {
                    carve "$dump" "$at" 8
                    le32 0
                    le32 "$tl"
                    le32 "$tl"
                    le32 "$sl"
                    carve "$dump" $((at + 24 + type_off)) "$tl"
                    carve "$dump" $((at + 24 + str_off)) "$sl"
                } >"$seeds/vmcore_btf/$name-btf"
                btf_done=1
            fi
        fi
    fi
done
shopt -u nullglob
if ! compgen -G "$seeds/vmcore_notes/*.notes" >/dev/null; then
    skip "no QEMU dumps in $fixtures (the wedge-vmcore tests make them): vmcore targets run on hand-made seeds"
elif [ -z "$btf_done" ]; then
    skip "no BTF found in the dumps of $fixtures: vmcore_btf runs on hand-made seeds"
fi
# Hand-made minimal inputs, whether or not the dumps are there: a
# VMCOREINFO note, and BTF for `struct s { int a; }`.
{
    le32 11
    le32 32
    le32 0
    printf 'VMCOREINFO\0\0'
    printf 'OSRELEASE=6.1.0\nPAGESIZE=4096\n\0\0'
} >"$seeds/vmcore_notes/vmcoreinfo"
{
    printf '\x9f\xeb\x01\x00'
    le32 24
    le32 0
    le32 40
    le32 40
    le32 9
    # 1: int, 4 bytes, 32 bits
    le32 1
    le32 $((1 << 24))
    le32 4
    le32 32
    # 2: struct s { int a; } at name offset 5 ("s"), member "a" (7)
    le32 5
    le32 $((4 << 24 | 1))
    le32 4
    le32 7
    le32 1
    le32 0
    printf '\0int\0s\0a\0'
} >"$seeds/vmcore_btf/struct-s"

# bpf_records: the task iterator's output. Seeds are whole records of the
# size wedge-bpf expects (one zeroed, one of 0xff bytes, two random ones
# with a kernel-address word between them), which the fuzzer then cuts and
# mutates; the record layout is wedge-bpf's own (src/record.rs).
mkdir -p "$seeds/bpf_records"
# (wedge-bpf's test record_size_is_the_fuzz_seeds_size keeps this equal.)
rec=696
head -c "$rec" /dev/zero >"$seeds/bpf_records/zero"
head -c "$rec" /dev/zero | tr '\0' '\377' >"$seeds/bpf_records/ones"
{ head -c $((rec - 8)) /dev/urandom; printf '\x03\x10\x00\x00\x88\xff\xff\xff'; head -c "$rec" /dev/urandom; } >"$seeds/bpf_records/two"

# kexpr: expressions as people type them into gdb, crash and drgn, one a
# file (the words of the language, for libFuzzer to recombine).
mkdir -p "$seeds/kexpr"
i=0
while IFS= read -r e; do
    printf '%s' "$e" >"$seeds/kexpr/expr-$i"
    i=$((i + 1))
done <<'EXPRS'
init_task.comm
((struct task_struct *)&init_task)->pid
task(1)->comm
per_cpu(runqueues, 0).curr->pid
per_cpu_ptr(&runqueues, crashed_cpu)->nr_running
container_of(&init_task.tasks, struct task_struct, tasks) == &init_task
container_of(init_task.tasks.next, struct task_struct, tasks)->comm[0]
&init_task.pid_links[3] - &init_task.pid_links[1]
(char *)&init_task.tasks - (char *)&init_task
sizeof(struct list_head) * 2 + offsetof(struct task_struct, thread.sp)
sizeof init_task.comm
!(pid_t)-1 || ~0x10UL << 2 && 'a' != '\0'
*(unsigned long long *)0xffffffff81000000
(const volatile u64 *)NULL
-(-(-(1)))%3/4>=5<=6>7<8
EXPRS

# ------------------------------------------------------------------- runs
for t in "${targets[@]}"; do
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$seeds/$t"
    dirs=("$out/corpus/$t" "$seeds/$t")
    [ -d "fuzz/regressions/$t" ] && dirs+=("$root/fuzz/regressions/$t")
    log=$out/artifacts/$t/run.log
    echo "fuzz: $t for ${seconds}s on $(find "${dirs[@]}" -type f | wc -l) inputs"
    set +e
    # -timeout: one input taking this long is a hang, and a failure.
    # -rss_limit_mb: an input that makes the parser allocate this much is
    # a failure too (wedge must hold a small multiple of its input).
    # -seed: the same mutations on every run of a commit, so a CI result is
    # reproducible (FUZZ_SEED=0 for a random one when fuzzing by hand).
    cargo fuzz run --target-dir "$out/build" "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -seed="${FUZZ_SEED:-1}" \
        -artifact_prefix="$out/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | sed "s/^/fuzz: $t: /" || true
    if ((rc != 0)); then
        status=1
        echo "fuzz: $t FAILED (exit $rc); the end of $log:"
        tail -n 40 "$log"
        for a in $(grep -oE "Test unit written to [^ ]+" "$log" | awk '{ print $NF }'); do
            echo "fuzz: $t: crash input $a"
            echo "fuzz:   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir $out/build $t $a"
        done
    fi
done
# cargo fuzz makes fuzz/artifacts/TARGET whatever -artifact_prefix says:
# drop the empty ones (a crash input kept there by hand stays).
rmdir fuzz/artifacts/* fuzz/artifacts 2>/dev/null || true
exit "$status"

//! The iterator's records (`struct wedge_task` in bpf/wedge.bpf.c), parsed
//! with every length checked: a short or odd output is an error naming the
//! mismatch, never a panic.

use crate::{Blocker, BlockerKind, TaskRecord, Tasks};

/// sizeof(struct wedge_task): 14 u64, 14 32-bit fields, comm[16], two
/// 8-level (inum, nr) tables, 48 stack slots.
pub(crate) const REC_SIZE: usize = 14 * 8 + N32 * 4 + 16 + 2 * NS_LEVELS * 8 + STACK_DEPTH * 8;
/// The 32-bit fields, `pid` … `reserved`.
const N32: usize = 14;
const NS_LEVELS: usize = 8;
const STACK_DEPTH: usize = 48;

const OFF_I32: usize = 14 * 8;
const OFF_COMM: usize = OFF_I32 + N32 * 4;
const OFF_TIDS: usize = OFF_COMM + 16;
const OFF_TGIDS: usize = OFF_TIDS + NS_LEVELS * 8;
const OFF_STACK: usize = OFF_TGIDS + NS_LEVELS * 8;

// `have` bits (HAVE_* in the C).
const HAVE_STATE_PRE514: u32 = 1 << 0;
const HAVE_CPU: u32 = 1 << 1;
const HAVE_BLOCKER_FIELD: u32 = 1 << 2;
const HAVE_SEM_HOLDER: u32 = 1 << 3;
const HAVE_RQ_CLOCK: u32 = 1 << 4;
const HAVE_OWNER_PID: u32 = 1 << 5;
const HAVE_IN_IOWAIT: u32 = 1 << 6;
/// `bits` (BIT_* in the C).
const BIT_IN_IOWAIT: u32 = 1 << 0;
const BIT_STACK_REUSED: u32 = 1 << 1;

/// rwsem `owner` bit 0 (RWSEM_READER_OWNED, kernel/locking/rwsem.c).
const RWSEM_READER_OWNED: u64 = 1;

struct Rec<'a>(&'a [u8]);

impl Rec<'_> {
    fn u64(&self, i: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(b)
    }
    fn w32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
    fn f32(&self, i: usize) -> u32 {
        self.w32(OFF_I32 + i * 4)
    }
    fn levels(&self, off: usize, n: u32) -> Vec<(u32, i32)> {
        (0..(n as usize).min(NS_LEVELS))
            .map(|i| (self.w32(off + i * 8), self.w32(off + i * 8 + 4) as i32))
            .collect()
    }
}

/// Decodes `task->blocker` (include/linux/hung_task.h: the lock address
/// with the type in its low 2 bits).
fn blocker(
    blocker: u64,
    owner_raw: u64,
    owner_task: u64,
    owner_pid: Option<i32>,
) -> Option<Blocker> {
    if blocker == 0 {
        return None;
    }
    let kind = match blocker & 3 {
        0 => BlockerKind::Mutex,
        1 => BlockerKind::Semaphore,
        2 => BlockerKind::RwsemReader,
        _ => BlockerKind::RwsemWriter,
    };
    let rwsem = matches!(kind, BlockerKind::RwsemReader | BlockerKind::RwsemWriter);
    Some(Blocker {
        kind,
        lock: blocker & !3,
        owner_task,
        owner_pid: owner_pid.filter(|_| owner_task != 0),
        reader_owned: rwsem && owner_raw & RWSEM_READER_OWNED != 0,
        owner_raw,
    })
}

/// The records, and whether any task's rq clock was read (so the caller
/// knows if its own fallback reason matters).
pub(crate) fn parse(buf: &[u8]) -> Result<(Tasks, bool), String> {
    if !buf.len().is_multiple_of(REC_SIZE) {
        return Err(format!(
            "the task iterator wrote {} bytes, not a whole number of {REC_SIZE}-byte records \
             (the BPF program and wedge disagree on the record)",
            buf.len()
        ));
    }
    let mut records = Vec::with_capacity(buf.len() / REC_SIZE);
    let mut have_all = u32::MAX;
    let mut have_any = 0u32;
    let mut now_ns = u64::MAX;
    for chunk in buf.chunks_exact(REC_SIZE) {
        let r = Rec(chunk);
        let have = r.f32(7);
        have_all &= have;
        have_any |= have;
        now_ns = now_ns.min(r.u64(1));
        let owner_pid = (have & HAVE_OWNER_PID != 0).then(|| r.f32(8) as i32);
        let stack_bytes = r.f32(11) as i32;
        let frames = if stack_bytes > 0 {
            (stack_bytes as usize / 8).min(STACK_DEPTH)
        } else {
            0
        };
        let stack = (0..frames)
            .map(|i| r.u64(OFF_STACK / 8 + i))
            .filter(|&a| a != 0)
            .collect();
        let comm_raw = &chunk[OFF_COMM..OFF_COMM + 16];
        let comm_len = comm_raw.iter().position(|&c| c == 0).unwrap_or(16);
        records.push(TaskRecord {
            task: r.u64(0),
            pid: r.f32(0) as i32,
            tgid: r.f32(1) as i32,
            ns_tids: r.levels(OFF_TIDS, r.f32(9)),
            ns_tgids: r.levels(OFF_TGIDS, r.f32(10)),
            ppid: r.f32(2) as i32,
            comm: String::from_utf8_lossy(&comm_raw[..comm_len]).into_owned(),
            state: r.f32(3),
            exit_state: r.f32(4),
            flags: r.f32(5),
            cpu: r.f32(6),
            blocker: blocker(r.u64(2), r.u64(3), r.u64(4), owner_pid),
            stack,
            saved_sp: r.u64(5),
            stack_base: r.u64(6),
            exec_start_ns: r.u64(7),
            last_arrival_ns: r.u64(8),
            rq_clock_task_ns: if have & HAVE_RQ_CLOCK != 0 {
                r.u64(9)
            } else {
                0
            },
            rq_clock_ns: if have & HAVE_RQ_CLOCK != 0 {
                r.u64(10)
            } else {
                0
            },
            nvcsw: r.u64(11),
            nivcsw: r.u64(12),
            start_time_ns: r.u64(13),
            in_iowait: (have & HAVE_IN_IOWAIT != 0).then(|| r.f32(12) & BIT_IN_IOWAIT != 0),
            stack_reused: r.f32(12) & BIT_STACK_REUSED != 0,
        });
    }
    let mut missing = Vec::new();
    if !records.is_empty() {
        // CO-RE facts are the same in every record; rq clock and owner pid
        // vary per task, so only "never" is reported.
        if have_all & HAVE_BLOCKER_FIELD == 0 {
            missing
                .push("task->blocker: needs 6.16 with CONFIG_DETECT_HUNG_TASK_BLOCKER".to_string());
        } else if have_all & HAVE_SEM_HOLDER == 0 {
            missing.push(
                "semaphore.last_holder (the semaphore's last taker): needs CONFIG_DETECT_HUNG_TASK_BLOCKER"
                    .to_string(),
            );
        }
        if have_all & HAVE_CPU == 0 {
            missing.push("the task's CPU (neither task->cpu nor thread_info.cpu)".to_string());
        }
        let _ = HAVE_STATE_PRE514;
    }
    let rq_clock = have_any & HAVE_RQ_CLOCK != 0;
    Ok((
        Tasks {
            now_ns: if now_ns == u64::MAX { 0 } else { now_ns },
            records,
            missing,
            pass_ms: 0.0,
        },
        rq_clock,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_size_matches_the_c_struct() {
        assert_eq!(REC_SIZE, 696);
    }

    #[test]
    fn odd_output_is_an_error() {
        let e = parse(&[0u8; REC_SIZE + 3]).unwrap_err();
        assert!(e.contains("696-byte"), "{e}");
        assert!(parse(&[]).unwrap().0.records.is_empty());
    }

    #[test]
    fn blocker_decoding() {
        let b = blocker(
            0xffff_8880_1234_5003,
            0xffff_8880_aaaa_0001,
            0xffff_8880_aaaa_0000,
            Some(7),
        )
        .unwrap();
        assert_eq!(b.kind, BlockerKind::RwsemWriter);
        assert_eq!(b.lock, 0xffff_8880_1234_5000);
        assert!(b.reader_owned);
        let m = blocker(
            0xffff_8880_1234_5000,
            0xffff_8880_bbbb_0001,
            0xffff_8880_bbbb_0000,
            Some(9),
        )
        .unwrap();
        assert_eq!(m.kind, BlockerKind::Mutex);
        assert!(!m.reader_owned);
        assert_eq!(m.owner_pid, Some(9));
        assert!(blocker(0, 0, 0, None).is_none());
        assert_eq!(blocker(0x1001, 0, 0, Some(3)).unwrap().owner_pid, None);
    }
}

//! Signal numbers and `si_code` values (include/uapi/asm-generic/siginfo.h),
//! with the words a person needs.

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGCHLD: i32 = 17;
pub const SIGSYS: i32 = 31;

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_MESGQ: i32 = -3;
pub const SI_ASYNCIO: i32 = -4;
pub const SI_SIGIO: i32 = -5;
pub const SI_TKILL: i32 = -6;
pub const SYS_SECCOMP: i32 = 1;

/// `SIGSEGV` for signal 11 and so on (the table wedge-kernel keeps for
/// all of wedge); `SIG42` for numbers outside 1..=64.
pub fn name(sig: i32) -> String {
    match u8::try_from(sig) {
        Ok(n @ 1..=64) => wedge_kernel::Signal(n).name(),
        _ => format!("SIG{sig}"),
    }
}

/// The symbolic name of an `si_code` for a given signal, and what it means.
pub fn code(sig: i32, code: i32) -> (&'static str, &'static str) {
    // Codes <= 0 and SI_KERNEL are the same for every signal: who sent it.
    match code {
        SI_USER => return ("SI_USER", "sent by kill(2) or raise"),
        SI_KERNEL => return ("SI_KERNEL", "raised by the kernel"),
        SI_QUEUE => return ("SI_QUEUE", "sent by sigqueue(3)"),
        SI_TIMER => return ("SI_TIMER", "a POSIX timer expired"),
        SI_MESGQ => return ("SI_MESGQ", "a message queue state changed"),
        SI_ASYNCIO => return ("SI_ASYNCIO", "an async I/O completed"),
        SI_SIGIO => return ("SI_SIGIO", "queued SIGIO"),
        SI_TKILL => {
            return (
                "SI_TKILL",
                "sent by tkill(2)/tgkill(2), e.g. raise(3) or abort(3)",
            )
        }
        _ => {}
    }
    match (sig, code) {
        (SIGSEGV, 1) => ("SEGV_MAPERR", "address not mapped"),
        (SIGSEGV, 2) => ("SEGV_ACCERR", "invalid permissions for the mapping"),
        (SIGSEGV, 3) => ("SEGV_BNDERR", "failed address bound checks"),
        (SIGSEGV, 4) => ("SEGV_PKUERR", "denied by a memory protection key"),
        (SIGSEGV, 8) => ("SEGV_MTEAERR", "asynchronous MTE tag check fault"),
        (SIGSEGV, 9) => ("SEGV_MTESERR", "synchronous MTE tag check fault"),
        (SIGSEGV, 10) => ("SEGV_CPERR", "control protection fault (shadow stack)"),
        (SIGBUS, 1) => ("BUS_ADRALN", "invalid address alignment"),
        (SIGBUS, 2) => (
            "BUS_ADRERR",
            "nonexistent physical address (e.g. a mapped file was truncated)",
        ),
        (SIGBUS, 3) => ("BUS_OBJERR", "object-specific hardware error"),
        (SIGBUS, 4) => ("BUS_MCEERR_AR", "hardware memory error consumed"),
        (SIGBUS, 5) => ("BUS_MCEERR_AO", "hardware memory error detected"),
        (SIGILL, 1) => ("ILL_ILLOPC", "illegal opcode"),
        (SIGILL, 2) => ("ILL_ILLOPN", "illegal operand"),
        (SIGILL, 3) => ("ILL_ILLADR", "illegal addressing mode"),
        (SIGILL, 4) => ("ILL_ILLTRP", "illegal trap"),
        (SIGILL, 5) => ("ILL_PRVOPC", "privileged opcode"),
        (SIGILL, 6) => ("ILL_PRVREG", "privileged register"),
        (SIGILL, 7) => ("ILL_COPROC", "coprocessor error"),
        (SIGILL, 8) => ("ILL_BADSTK", "internal stack error"),
        (SIGFPE, 1) => ("FPE_INTDIV", "integer divide by zero"),
        (SIGFPE, 2) => ("FPE_INTOVF", "integer overflow"),
        (SIGFPE, 3) => ("FPE_FLTDIV", "floating-point divide by zero"),
        (SIGFPE, 4) => ("FPE_FLTOVF", "floating-point overflow"),
        (SIGFPE, 5) => ("FPE_FLTUND", "floating-point underflow"),
        (SIGFPE, 6) => ("FPE_FLTRES", "floating-point inexact result"),
        (SIGFPE, 7) => ("FPE_FLTINV", "floating-point invalid operation"),
        (SIGFPE, 8) => ("FPE_FLTSUB", "subscript out of range"),
        (SIGTRAP, 1) => ("TRAP_BRKPT", "breakpoint"),
        (SIGTRAP, 2) => ("TRAP_TRACE", "trace trap"),
        (SIGTRAP, 4) => ("TRAP_HWBKPT", "hardware breakpoint or watchpoint"),
        (SIGSYS, 1) => ("SYS_SECCOMP", "system call denied by seccomp"),
        (SIGCHLD, 1) => ("CLD_EXITED", "child exited"),
        (SIGCHLD, 2) => ("CLD_KILLED", "child was killed"),
        (SIGCHLD, 3) => ("CLD_DUMPED", "child dumped core"),
        _ => ("?", "unknown si_code"),
    }
}

/// Bit `sig - 1` of a 64-bit signal mask, as `SigPnd`/`SigBlk` carry them.
pub fn mask_names(mask: u64) -> Vec<String> {
    (1..=64)
        .filter(|s| mask & (1u64 << (s - 1)) != 0)
        .map(name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(11), "SIGSEGV");
        assert_eq!(name(34), "SIGRTMIN+2"); // counted from the kernel's SIGRTMIN (32)
        assert_eq!(name(0), "SIG0");
        assert_eq!(name(-3), "SIG-3");
        assert_eq!(code(SIGSEGV, SI_KERNEL).0, "SI_KERNEL");
        assert_eq!(code(SIGSEGV, 1).0, "SEGV_MAPERR");
        assert_eq!(mask_names(1 << 5), vec!["SIGABRT"]);
    }
}

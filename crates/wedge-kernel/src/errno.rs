//! Error numbers by name: what a system call returned (`-EINTR`), as the
//! system-call rings (wedge-bpf) record it at raw_syscalls:sys_exit.

/// The generic table (include/uapi/asm-generic/errno-base.h and errno.h,
/// which x86, arm64 and riscv use; 41 and 58 are unassigned), index =
/// number.
const GENERIC: [&str; 134] = [
    "",
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
    "ERFKILL",
    "EHWPOISON",
];

/// The kernel's own restart codes (include/linux/errno.h): never seen by
/// a process, but sys_exit fires before the signal code turns them into
/// EINTR or a restart, so a call interrupted by a signal shows one.
const INTERNAL: [(i64, &str); 5] = [
    (512, "ERESTARTSYS"),
    (513, "ERESTARTNOINTR"),
    (514, "ERESTARTNOHAND"),
    (515, "ENOIOCTLCMD"),
    (516, "ERESTART_RESTARTBLOCK"),
];

/// The name of error number `n` (positive: `4` is `EINTR`).
pub fn errno_name(n: i64) -> Option<&'static str> {
    if let Some(name) = usize::try_from(n)
        .ok()
        .and_then(|i| GENERIC.get(i))
        .filter(|s| !s.is_empty())
    {
        return Some(name);
    }
    INTERNAL.iter().find(|(v, _)| *v == n).map(|(_, s)| *s)
}

/// A system call's return value in words: `-4` is `-4 EINTR`, anything
/// else the number. Only -4095..-1 are errors (the kernel's
/// IS_ERR_VALUE range); an mmap address is large, never negative here.
pub fn syscall_ret_text(ret: i64) -> String {
    match (-4095..0)
        .contains(&ret)
        .then(|| errno_name(-ret))
        .flatten()
    {
        Some(name) => format!("{ret} {name}"),
        None => ret.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_uapi_numbers() {
        for (n, name) in [
            (uapi::EPERM, "EPERM"),
            (uapi::EINTR, "EINTR"),
            (uapi::EAGAIN, "EAGAIN"),
            (uapi::ENOTCONN, "ENOTCONN"),
            (uapi::ECONNABORTED, "ECONNABORTED"),
            (uapi::EHWPOISON, "EHWPOISON"),
        ] {
            assert_eq!(errno_name(n), Some(name), "{n}");
        }
        assert_eq!(errno_name(41), None);
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(-4), None);
        assert_eq!(errno_name(512), Some("ERESTARTSYS"));
        assert_eq!(syscall_ret_text(-4), "-4 EINTR");
        assert_eq!(syscall_ret_text(-512), "-512 ERESTARTSYS");
        assert_eq!(syscall_ret_text(6), "6");
        assert_eq!(syscall_ret_text(-5000), "-5000");
    }

    /// Values from include/uapi/asm-generic/errno*.h, written out (this
    /// crate has no libc dependency).
    mod uapi {
        pub const EPERM: i64 = 1;
        pub const EINTR: i64 = 4;
        pub const EAGAIN: i64 = 11;
        pub const ENOTCONN: i64 = 107;
        pub const ECONNABORTED: i64 = 103;
        pub const EHWPOISON: i64 = 133;
    }
}

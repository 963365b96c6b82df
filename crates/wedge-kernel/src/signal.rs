//! Signals and the 64-bit signal masks of `/proc/PID/status`
//! (`SigPnd`, `ShdPnd`, `SigBlk`, `SigIgn`, `SigCgt`).
//!
//! Numbering is the generic/x86 one (`include/uapi/asm-generic/signal.h`).
//! MIPS, Alpha and SPARC number several signals differently; their masks
//! decode by number correctly, but names from this table would be wrong.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A signal number, 1..=64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Signal(pub u8);

const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

impl Signal {
    pub const SIGHUP: Signal = Signal(1);
    pub const SIGINT: Signal = Signal(2);
    pub const SIGQUIT: Signal = Signal(3);
    pub const SIGABRT: Signal = Signal(6);
    pub const SIGKILL: Signal = Signal(9);
    pub const SIGSEGV: Signal = Signal(11);
    pub const SIGTERM: Signal = Signal(15);
    pub const SIGCHLD: Signal = Signal(17);
    pub const SIGCONT: Signal = Signal(18);
    pub const SIGSTOP: Signal = Signal(19);

    /// The conventional name (`SIGKILL`), `SIGRTMIN` and `SIGRTMIN+N` for
    /// real-time signals, counted from the kernel's SIGRTMIN (32; glibc
    /// keeps 32 and 33 for itself, so programs see their SIGRTMIN as 34).
    pub fn name(self) -> String {
        match self.0 {
            n @ 1..=31 => NAMES[n as usize].to_string(),
            32 => "SIGRTMIN".to_string(),
            33..=64 => format!("SIGRTMIN+{}", self.0 - 32),
            n => format!("signal {n}"),
        }
    }

    /// The static name for classic signals, `None` for real-time ones.
    pub fn static_name(self) -> Option<&'static str> {
        match self.0 {
            n @ 1..=31 => Some(NAMES[n as usize]),
            _ => None,
        }
    }

    /// Looks a name up, with or without the `SIG` prefix, case-insensitively.
    pub fn from_name(name: &str) -> Option<Signal> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|n| n.len() > 3 && &n[3..] == bare)
            .map(|i| Signal(i as u8))
    }

    /// Signals whose default action ends the process (term or core). Stop
    /// signals, SIGCHLD, SIGCONT, SIGURG and SIGWINCH do not.
    pub fn default_is_fatal(self) -> bool {
        !matches!(self.0, 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28)
    }

    /// What the default action does when this signal is delivered.
    pub fn default_action(self) -> &'static str {
        match self.0 {
            3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31 => "core",
            17 | 23 | 28 => "ignore",
            18 => "continue",
            19..=22 => "stop",
            _ => "terminate",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A 64-bit signal mask: bit N-1 set means signal N is in the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignalSet(pub u64);

impl SignalSet {
    pub const EMPTY: SignalSet = SignalSet(0);

    /// Parses the hex mask as printed in /proc (`0000000000000100`). Masks
    /// wider than 64 bits (MIPS prints 128) keep their low 64 bits.
    pub fn from_hex(s: &str) -> Option<SignalSet> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let low = if s.len() > 16 { &s[s.len() - 16..] } else { s };
        u64::from_str_radix(low, 16).ok().map(SignalSet)
    }

    pub fn contains(self, sig: Signal) -> bool {
        (1..=64).contains(&sig.0) && self.0 & (1u64 << (sig.0 - 1)) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: SignalSet) -> SignalSet {
        SignalSet(self.0 | other.0)
    }

    /// The signals in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        (1u8..=64)
            .filter(move |&n| self.0 & (1u64 << (n - 1)) != 0)
            .map(Signal)
    }

    /// Names, e.g. `["SIGINT", "SIGKILL"]`.
    pub fn names(self) -> Vec<String> {
        self.iter().map(Signal::name).collect()
    }

    /// Whether a signal that ends the process is in the set (SIGKILL, or any
    /// default-fatal signal). Whether it *is* fatal also depends on the
    /// process's handlers; see [`SignalSet::fatal_given`].
    pub fn has_sigkill(self) -> bool {
        self.contains(Signal::SIGKILL)
    }

    /// Pending signals that will end the process when delivered: SIGKILL
    /// always; any other default-fatal signal that is neither caught nor
    /// ignored.
    pub fn fatal_given(self, ignored: SignalSet, caught: SignalSet) -> SignalSet {
        let mut out = 0u64;
        for sig in self.iter() {
            let bit = 1u64 << (sig.0 - 1);
            let fatal = sig == Signal::SIGKILL
                || (sig.default_is_fatal() && ignored.0 & bit == 0 && caught.0 & bit == 0);
            if fatal {
                out |= bit;
            }
        }
        SignalSet(out)
    }
}

impl fmt::Display for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let names = self.names();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigkill_mask() {
        let s = SignalSet::from_hex("0000000000000100").unwrap();
        assert!(s.has_sigkill());
        assert_eq!(s.names(), vec!["SIGKILL"]);
    }

    #[test]
    fn realtime_and_wide_masks() {
        let s = SignalSet::from_hex("00000000000000000000000180000000").unwrap();
        assert_eq!(s.names(), vec!["SIGRTMIN", "SIGRTMIN+1"]);
        assert_eq!(SignalSet::from_hex("zz"), None);
        assert_eq!(SignalSet::from_hex(""), None);
    }

    #[test]
    fn fatal_respects_handlers() {
        let pending = SignalSet(1 << 14 | 1 << 8); // SIGTERM, SIGKILL
        let caught = SignalSet(1 << 14);
        assert_eq!(
            pending.fatal_given(SignalSet::EMPTY, caught).names(),
            ["SIGKILL"]
        );
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=31u8 {
            assert_eq!(Signal::from_name(&Signal(n).name()), Some(Signal(n)));
        }
        assert_eq!(Signal::from_name("kill"), Some(Signal::SIGKILL));
    }
}

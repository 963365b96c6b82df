//! Kernel release strings, reduced to what format decisions depend on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `major.minor.patch` of a kernel release such as `6.18.44-fc-v657`.
///
/// Formats in /proc and the log changed at known releases (task flag bits,
/// the hung-task report layout); decoders take this to pick the right table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses the leading `X.Y[.Z]` of a release string; the rest (`-rc5`,
    /// `-generic`, `+`) is ignored. Returns `None` when there is no `X.Y`.
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.trim().splitn(3, '.');
        let major = leading_number(parts.next()?)?;
        let minor = leading_number(parts.next()?)?;
        let patch = parts.next().and_then(leading_number).unwrap_or(0);
        Some(KernelVersion::new(major, minor, patch))
    }

    /// Whether this release is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

fn leading_number(s: &str) -> Option<u32> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.get(..end)?.parse().ok()
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_releases() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v657"),
            Some(KernelVersion::new(6, 18, 44))
        );
        assert_eq!(
            KernelVersion::parse("5.12.0-rc5-io-uring-5.13"),
            Some(KernelVersion::new(5, 12, 0))
        );
        assert_eq!(
            KernelVersion::parse("4.14-v7+"),
            Some(KernelVersion::new(4, 14, 0))
        );
        assert_eq!(KernelVersion::parse("garbage"), None);
        assert_eq!(KernelVersion::parse(""), None);
    }
}

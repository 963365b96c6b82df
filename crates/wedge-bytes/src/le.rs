//! Little-endian fields at an offset, checked: an offset past the end, or
//! one whose end overflows `usize` (offsets come from the file), is `None`.

/// Little-endian field readers over a byte slice that never panic.
pub trait Le {
    /// `N` bytes at `off`, if they are all there.
    fn bytes_at<const N: usize>(&self, off: usize) -> Option<[u8; N]>;

    fn u16_at(&self, off: usize) -> Option<u16> {
        self.bytes_at(off).map(u16::from_le_bytes)
    }
    fn u32_at(&self, off: usize) -> Option<u32> {
        self.bytes_at(off).map(u32::from_le_bytes)
    }
    fn u64_at(&self, off: usize) -> Option<u64> {
        self.bytes_at(off).map(u64::from_le_bytes)
    }
    fn i32_at(&self, off: usize) -> Option<i32> {
        self.bytes_at(off).map(i32::from_le_bytes)
    }
    fn i64_at(&self, off: usize) -> Option<i64> {
        self.bytes_at(off).map(i64::from_le_bytes)
    }
}

impl Le for [u8] {
    fn bytes_at<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.get(off..off.checked_add(N)?)?.try_into().ok()
    }
}

/// A NUL-terminated string in a fixed-size field (`pr_fname`, a note
/// name), lossily decoded; no NUL means the whole field.
pub fn cstr(d: &[u8]) -> String {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    String::from_utf8_lossy(d.get(..end).unwrap_or(d)).into_owned()
}

/// `n` rounded up to 4 (note names and descriptors are 4-byte aligned in
/// both ELF classes as Linux writes them), `None` on overflow.
pub fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_refuses_the_rest() {
        let d = [1u8, 0, 0, 0, 0, 0, 0, 0, 0xff];
        assert_eq!(d.u16_at(0), Some(1));
        assert_eq!(d.u32_at(0), Some(1));
        assert_eq!(d.u64_at(0), Some(1));
        assert_eq!(d.u64_at(1), Some(0xff00_0000_0000_0000));
        assert_eq!(d.u64_at(2), None);
        assert_eq!(d.u32_at(usize::MAX - 1), None);
        assert_eq!(d.i32_at(5), Some(-16_777_216));
        assert_eq!(cstr(b"CORE\0\0\0"), "CORE");
        assert_eq!(cstr(b"abc"), "abc");
        assert_eq!(align4(5), Some(8));
        assert_eq!(align4(usize::MAX), None);
    }
}

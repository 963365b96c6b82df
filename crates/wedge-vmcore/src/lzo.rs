//! LZO1X decompression, for makedumpfile's `-l` pages. Written from the
//! format's description (the instruction stream of lzo1x_decompress_safe);
//! every read and write is bounds-checked.

/// Decompresses an LZO1X block into at most `out_cap` bytes.
pub fn decompress(src: &[u8], out_cap: usize) -> Result<Vec<u8>, &'static str> {
    let mut out: Vec<u8> = Vec::with_capacity(out_cap);
    let mut ip = 0usize;
    let byte = |ip: &mut usize| -> Result<usize, &'static str> {
        let b = *src.get(*ip).ok_or("input overrun")?;
        *ip += 1;
        Ok(b as usize)
    };
    // Length with zero-byte extension: each 0 adds 255.
    let ext = |ip: &mut usize, base: usize| -> Result<usize, &'static str> {
        let mut n = 0usize;
        loop {
            let b = *src.get(*ip).ok_or("input overrun")?;
            *ip += 1;
            if b != 0 {
                return Ok(n + base + b as usize);
            }
            n = n.checked_add(255).ok_or("length overflow")?;
            if n > out_cap {
                return Err("length overflow");
            }
        }
    };
    let literal = |out: &mut Vec<u8>, ip: &mut usize, n: usize| -> Result<(), &'static str> {
        let s = src.get(*ip..*ip + n).ok_or("input overrun")?;
        if out.len() + n > out_cap {
            return Err("output overrun");
        }
        out.extend_from_slice(s);
        *ip += n;
        Ok(())
    };
    let copy = |out: &mut Vec<u8>, dist: usize, n: usize| -> Result<(), &'static str> {
        if dist == 0 || dist > out.len() {
            return Err("lookbehind overrun");
        }
        if out.len() + n > out_cap {
            return Err("output overrun");
        }
        let start = out.len() - dist;
        for i in 0..n {
            let b = out[start + i];
            out.push(b);
        }
        Ok(())
    };

    // `state` is the number of literals copied by the previous instruction
    // (0, 1-3, or 4 meaning "4 or more"), which changes how a small
    // instruction (< 16) is read.
    let mut state: usize;
    let first = *src.first().ok_or("empty input")? as usize;
    if first > 17 {
        ip = 1;
        let n = first - 17;
        literal(&mut out, &mut ip, n)?;
        state = if n < 4 { n } else { 4 };
    } else {
        state = 0;
    }
    loop {
        let t = byte(&mut ip)?;
        if t < 16 {
            if state == 0 {
                // A literal run.
                let n = if t == 0 { ext(&mut ip, 15)? + 3 } else { t + 3 };
                literal(&mut out, &mut ip, n)?;
                state = 4;
                continue;
            }
            let b = byte(&mut ip)?;
            if state < 4 {
                // M1 after a short literal: 2-byte match, distance ≤ 1 KiB.
                let dist = (t >> 2) + (b << 2) + 1;
                copy(&mut out, dist, 2)?;
            } else {
                // M1 after a long literal: 3-byte match, distance 2049..3072.
                let dist = (t >> 2) + (b << 2) + 2049;
                copy(&mut out, dist, 3)?;
            }
            let n = t & 3;
            literal(&mut out, &mut ip, n)?;
            state = n;
            continue;
        }
        let (len, dist, lits);
        if t >= 64 {
            // M2: length 3-8, distance ≤ 2 KiB.
            let b = byte(&mut ip)?;
            len = (t >> 5) - 1 + 2;
            dist = ((t >> 2) & 7) + (b << 3) + 1;
            lits = t & 3;
        } else if t >= 32 {
            // M3: distance ≤ 16 KiB.
            let l = t & 31;
            len = if l == 0 { ext(&mut ip, 31)? } else { l } + 2;
            let lo = byte(&mut ip)?;
            let hi = byte(&mut ip)?;
            let d = lo | (hi << 8);
            dist = (d >> 2) + 1;
            lits = d & 3;
        } else {
            // M4 (16..31): distance 16 KiB..48 KiB, or the end marker.
            let l = t & 7;
            len = if l == 0 { ext(&mut ip, 7)? } else { l } + 2;
            let lo = byte(&mut ip)?;
            let hi = byte(&mut ip)?;
            let d = lo | (hi << 8);
            let far = ((t & 8) << 11) + (d >> 2);
            if far == 0 {
                // End of stream (distance 16384 exactly).
                return Ok(out);
            }
            dist = far + 16384;
            lits = d & 3;
        }
        copy(&mut out, dist, len)?;
        literal(&mut out, &mut ip, lits)?;
        state = lits;
    }
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literal_only_stream() {
        // 17+5 → five literals, then the end marker (0x11 0x00 0x00).
        let src = [22u8, b'h', b'e', b'l', b'l', b'o', 0x11, 0, 0];
        assert_eq!(decompress(&src, 100).unwrap(), b"hello");
    }

    #[test]
    fn hostile_input_errors() {
        assert!(decompress(&[], 10).is_err());
        assert!(decompress(&[0x20, 0xff, 0xff], 10).is_err());
        assert!(decompress(&[30, 1, 2], 10).is_err());
    }
}

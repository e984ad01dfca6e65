//! Word-at-a-time scans for the byte runs the recorder copies as they are: eight bytes per
//! step instead of one (a flooding agent's every byte goes through these twice).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A high bit in each byte of `x` that is below `n` (n <= 0x80), and maybe in bytes at or
/// above 0x80 (callers treat those as stops too).
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS
}

/// A high bit in each byte of `x` equal to `b`, maybe also in bytes after one that is.
fn equal(x: u64, b: u8) -> u64 {
    below(x ^ (ONES * u64::from(b)), 1)
}

/// How many bytes from the start `pred` keeps, with `stops` saying (by high bits, as
/// [`below`]) which bytes of a word might not be kept: a word without any is taken whole.
fn run(bytes: &[u8], stops: impl Fn(u64) -> u64, keep: impl Fn(u8) -> bool) -> usize {
    let mut i = 0;
    for word in bytes.chunks_exact(8) {
        let x = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        if stops(x) != 0 {
            break;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| !keep(b))
        .unwrap_or(bytes.len() - i)
}

/// The length of the leading run of printable ASCII (0x20..0x7f).
pub fn printable(bytes: &[u8]) -> usize {
    run(
        bytes,
        |x| below(x, 0x20) | (x & HIGHS) | equal(x, 0x7f),
        |b| (0x20..0x7f).contains(&b),
    )
}

/// The length of the leading run that goes into a JSON string as it is: no control, `"`
/// or `\`.
pub fn json_plain(bytes: &[u8]) -> usize {
    run(
        bytes,
        |x| below(x, 0x20) | equal(x, b'"') | equal(x, b'\\'),
        |b| b >= 0x20 && b != b'"' && b != b'\\',
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stop_exactly_where_a_byte_by_byte_scan_does() {
        let mut s: u32 = 7;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    // Mostly printable, now and then anything.
                    if s >> 28 == 0 {
                        (s >> 8) as u8
                    } else {
                        0x20 + (s >> 9) as u8 % 0x5f
                    }
                })
                .collect();
            let slow_p = bytes.iter().position(|&b| !(0x20..0x7f).contains(&b));
            assert_eq!(printable(&bytes), slow_p.unwrap_or(len), "{bytes:?}");
            let slow_j = bytes
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(json_plain(&bytes), slow_j.unwrap_or(len), "{bytes:?}");
        }
        for b in 0..=255u8 {
            let word = [b'a', b'b', b'c', b'd', b'e', b'f', b'g', b];
            assert_eq!(
                printable(&word),
                if (0x20..0x7f).contains(&b) { 8 } else { 7 }
            );
            let plain = b >= 0x20 && b != b'"' && b != b'\\';
            assert_eq!(json_plain(&word), if plain { 8 } else { 7 }, "{b}");
        }
    }
}

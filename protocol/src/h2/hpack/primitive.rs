//! The two primitive types of HPACK (RFC 7541 §5): prefixed integers and string
//! literals.
//!
//! An integer starts in the low `prefix` bits of an octet whose high bits belong to the
//! representation (its pattern and flags); values too large for the prefix continue in
//! 7-bit groups, least significant first. A string is an integer length with a 7-bit
//! prefix, whose high bit says "Huffman-coded", followed by that many octets.
//!
//! Decoding takes the bytes from the current position and answers the value and how
//! many bytes it took; it never reads past the slice, and bounds every value, so that a
//! hostile length can neither overflow nor make us allocate more than the input holds.

use super::huffman;
use super::HpackError;

/// The largest integer the decoder accepts (2^32 - 1): far above any length or index a
/// block can meaningfully hold, and small enough for `usize` on 32-bit targets.
pub const MAX_INT: usize = u32::MAX as usize;

/// Decodes an integer with a `prefix`-bit prefix (1..=8) from the start of `buf`,
/// ignoring the octet's bits above the prefix. Returns the value and the bytes used.
pub fn decode_int(buf: &[u8], prefix: u8) -> Result<(usize, usize), HpackError> {
    debug_assert!((1..=8).contains(&prefix));
    let max_prefix = (1u16 << prefix) - 1;
    let first = match buf.first() {
        Some(&b) => u16::from(b) & max_prefix,
        None => return Err(HpackError::Truncated),
    };
    if first < max_prefix {
        return Ok((usize::from(first), 1));
    }
    let mut value = u64::from(first);
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        // Five continuation octets carry 35 bits, enough for MAX_INT; a sixth is padding
        // with zero groups at best, and an attack on the shift at worst.
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
        value += u64::from(b & 0x7f) << shift;
        if value > MAX_INT as u64 {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok((value as usize, i + 1));
        }
        shift += 7;
    }
    Err(HpackError::Truncated)
}

/// Appends `value` with a `prefix`-bit prefix; `flags` are the bits above the prefix in
/// the first octet (the representation's pattern).
pub fn encode_int(out: &mut Vec<u8>, value: usize, prefix: u8, flags: u8) {
    debug_assert!((1..=8).contains(&prefix));
    let max_prefix = (1usize << prefix) - 1;
    if value < max_prefix {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// Decodes a string literal from the start of `buf`, appending its (Huffman-decoded if
/// need be) octets to `out`. Returns the bytes of `buf` used.
pub fn decode_string(buf: &[u8], out: &mut Vec<u8>) -> Result<usize, HpackError> {
    let huffman = buf.first().is_some_and(|&b| b & 0x80 != 0);
    let (len, used) = decode_int(buf, 7)?;
    let body = buf
        .get(used..)
        .and_then(|rest| rest.get(..len))
        .ok_or(HpackError::Truncated)?;
    if huffman {
        huffman::decode(body, out)?;
    } else {
        out.extend_from_slice(body);
    }
    Ok(used + len)
}

/// Appends `bytes` as a string literal: Huffman-coded if `huffman` is set and the coded
/// form is not longer than the raw one (RFC 7541's examples code a tie), raw otherwise.
pub fn encode_string(out: &mut Vec<u8>, bytes: &[u8], huffman: bool) {
    let coded_len = huffman::encoded_len(bytes);
    if huffman && coded_len <= bytes.len() {
        encode_int(out, coded_len, 7, 0x80);
        huffman::encode(bytes, out);
    } else {
        encode_int(out, bytes.len(), 7, 0);
        out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(value: usize, prefix: u8, flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        encode_int(&mut out, value, prefix, flags);
        out
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rfc7541_c1_integers() {
        // C.1.1: 10 with a 5-bit prefix (the three high bits belong to someone else).
        assert_eq!(int(10, 5, 0), [0x0a]);
        assert_eq!(decode_int(&[0xea], 5), Ok((10, 1)));
        // C.1.2: 1337 with a 5-bit prefix.
        assert_eq!(int(1337, 5, 0), [0x1f, 0x9a, 0x0a]);
        assert_eq!(decode_int(&[0x1f, 0x9a, 0x0a, 0xff], 5), Ok((1337, 3)));
        // C.1.3: 42 starting at an octet boundary (8-bit prefix).
        assert_eq!(int(42, 8, 0), [0x2a]);
        assert_eq!(decode_int(&[0x2a], 8), Ok((42, 1)));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn integers_round_trip_at_every_prefix() {
        let values = [
            0,
            1,
            30,
            31,
            32,
            126,
            127,
            128,
            254,
            255,
            256,
            16_383,
            1 << 20,
        ];
        for prefix in 1..=8u8 {
            // All the bits above the prefix set, to see that they are left alone.
            let flags = (0xffu16 << prefix) as u8;
            for &v in values.iter().chain([MAX_INT].iter()) {
                let bytes = int(v, prefix, flags);
                assert_eq!(bytes[0] & flags, flags);
                assert_eq!(
                    decode_int(&bytes, prefix),
                    Ok((v, bytes.len())),
                    "{v}/{prefix}"
                );
            }
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn integer_errors() {
        assert_eq!(decode_int(&[], 5), Err(HpackError::Truncated));
        assert_eq!(decode_int(&[0x1f], 5), Err(HpackError::Truncated));
        assert_eq!(
            decode_int(&[0x1f, 0x80, 0x80], 5),
            Err(HpackError::Truncated)
        );
        // 2^32 - 1 is the largest; one more overflows.
        let max = int(MAX_INT, 5, 0);
        assert_eq!(decode_int(&max, 5), Ok((MAX_INT, max.len())));
        let mut over = max.clone();
        over[1] += 1;
        assert_eq!(decode_int(&over, 5), Err(HpackError::IntegerOverflow));
        // Endless zero continuation groups are refused, not looped over.
        let mut zeros = vec![0x1f];
        zeros.extend([0x80; 64]);
        zeros.push(0);
        assert_eq!(decode_int(&zeros, 5), Err(HpackError::IntegerOverflow));
        // Five continuation octets are still fine.
        assert_eq!(
            decode_int(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Ok((31, 6))
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn strings() {
        let mut out = Vec::new();
        encode_string(&mut out, b"custom-key", false);
        assert_eq!(out, b"\x0acustom-key");
        let mut back = Vec::new();
        assert_eq!(decode_string(&out, &mut back), Ok(11));
        assert_eq!(back, b"custom-key");

        out.clear();
        encode_string(&mut out, b"custom-key", true);
        assert_eq!(out, [0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f]);
        back.clear();
        assert_eq!(decode_string(&out, &mut back), Ok(9));
        assert_eq!(back, b"custom-key");

        // Huffman would be longer for these bytes: sent raw even when allowed.
        out.clear();
        encode_string(&mut out, &[0, 1, 2], true);
        assert_eq!(out, [3, 0, 1, 2]);

        // A length past the end is an error, whatever it claims.
        back.clear();
        assert_eq!(
            decode_string(b"\x05abc", &mut back),
            Err(HpackError::Truncated)
        );
        let huge = [0x7f, 0xff, 0xff, 0xff, 0xff, 0x0e];
        assert_eq!(decode_string(&huge, &mut back), Err(HpackError::Truncated));
        assert_eq!(decode_string(&[], &mut back), Err(HpackError::Truncated));
        assert!(back.is_empty());
    }
}

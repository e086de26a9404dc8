//! The HPACK Huffman code (RFC 7541 §5.2 and Appendix B): string literals may be sent
//! Huffman-coded, which saves about a fifth of the bytes of typical header values.
//!
//! Encoding appends each byte's code to a bit accumulator and flushes whole octets into
//! the output; the last octet is padded with the most significant bits of EOS (all ones).
//! [`encoded_len`] tells the encoder beforehand whether the coded form is the shorter.
//!
//! Decoding walks the input bit by bit, growing a code until it names a symbol. Because
//! the code is canonical (see `huffman_table.rs`), "does this code of `n` bits name a
//! symbol" is one subtraction against the first code of length `n`, and the tables for it
//! are computed at compile time from the RFC's table. At the end the bits left over must
//! be padding: at most 7 bits, all ones; and EOS itself must never appear.

use super::huffman_table::CODES;
use super::HpackError;

/// The longest code (EOS) has 30 bits.
const MAX_LEN: usize = 30;
/// The symbol number of EOS.
const EOS: u16 = 256;

/// The canonical decoding tables: for each code length, the first code of that length,
/// how many codes have it, and where its symbols start in `symbols` (sorted by length,
/// then by symbol).
struct Canonical {
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    symbols: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut t = Canonical {
        first: [0; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [0; 257],
    };
    let mut next = 0usize;
    let mut code = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        t.first[len] = code;
        t.offset[len] = next as u16;
        let mut sym = 0;
        while sym < CODES.len() {
            if CODES[sym].1 as usize == len {
                t.symbols[next] = sym as u16;
                next += 1;
                t.count[len] += 1;
                code += 1;
            }
            sym += 1;
        }
        code <<= 1;
        len += 1;
    }
    t
}

static CANONICAL: Canonical = canonical();

/// How many bytes `bytes` takes Huffman-coded (with its padding).
pub fn encoded_len(bytes: &[u8]) -> usize {
    let bits: usize = bytes.iter().map(|&b| CODES[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `bytes` to `out`, padded with ones to an octet.
pub fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(bytes));
    // At most 7 bits wait in the accumulator between symbols, plus one code of <= 30.
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &b in bytes {
        let (code, len) = CODES[b as usize];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        while pending >= 8 {
            pending -= 8;
            out.push((acc >> pending) as u8);
        }
        acc &= (1u64 << pending) - 1;
    }
    if pending > 0 {
        let pad = 8 - pending;
        out.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

/// Decodes the Huffman-coded `bytes`, appending the result to `out`.
///
/// Fails with [`HpackError::HuffmanEos`] if the EOS symbol appears,
/// [`HpackError::HuffmanPaddingTooLong`] if more than 7 bits are left over at the end, and
/// [`HpackError::HuffmanPaddingNotOnes`] if those bits are not all ones.
pub fn decode(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let t = &CANONICAL;
    out.reserve(bytes.len() + bytes.len() / 2);
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in bytes {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            // A prefix of a longer code is numerically past the codes of its length,
            // so `index < count` holds exactly when `code` is a whole code.
            let index = code.wrapping_sub(t.first[len]);
            if index < t.count[len] {
                let sym = t.symbols[t.offset[len] as usize + index as usize];
                if sym == EOS {
                    return Err(HpackError::HuffmanEos);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Unreachable for a complete code (every 30-bit string is a code or has
                // one as prefix), kept so that `len` can never index past the tables.
                return Err(HpackError::HuffmanEos);
            }
        }
    }
    if len > 7 {
        return Err(HpackError::HuffmanPaddingTooLong);
    }
    if code != (1u32 << len) - 1 {
        return Err(HpackError::HuffmanPaddingNotOnes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(bytes, &mut out);
        assert_eq!(out.len(), encoded_len(bytes));
        out
    }

    fn dec(bytes: &[u8]) -> Result<Vec<u8>, HpackError> {
        let mut out = Vec::new();
        decode(bytes, &mut out).map(|()| out)
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn table_is_a_complete_canonical_code() {
        // Kraft's sum is exactly one (no code is missing, none is a prefix of another) ...
        let kraft: u64 = CODES
            .iter()
            .map(|&(_, n)| 1u64 << (MAX_LEN - n as usize))
            .sum();
        assert_eq!(kraft, 1u64 << MAX_LEN);
        // ... and re-deriving each code from the lengths alone gives the RFC's codes.
        let t = &CANONICAL;
        for len in 1..=MAX_LEN {
            for i in 0..t.count[len] {
                let sym = t.symbols[t.offset[len] as usize + i as usize] as usize;
                assert_eq!(CODES[sym], (t.first[len] + i, len as u8), "symbol {sym}");
            }
        }
        assert_eq!(CODES[EOS as usize], (0x3fff_ffff, 30));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rfc7541_strings() {
        // The Huffman-coded literals of RFC 7541 C.4 and C.6.
        let cases: &[(&str, &str)] = &[
            ("www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
            ("no-cache", "a8eb10649cbf"),
            ("custom-key", "25a849e95ba97d7f"),
            ("custom-value", "25a849e95bb8e8b4bf"),
            ("302", "6402"),
            ("307", "640eff"),
            ("private", "aec3771a4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07abe941054d444a8200595040b8166e082a62d1bff",
            ),
            (
                "https://www.example.com",
                "9d29ad171863c78f0b97c8e9ae82ae43d3",
            ),
            ("gzip", "9bd9ab"),
        ];
        for &(text, hex) in cases {
            let coded = super::super::tests::unhex(hex);
            assert_eq!(enc(text.as_bytes()), coded, "{text}");
            assert_eq!(dec(&coded).as_deref(), Ok(text.as_bytes()), "{text}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(dec(&enc(&all)), Ok(all.clone()));
        for b in 0..=255u8 {
            assert_eq!(dec(&enc(&[b, b, b])), Ok(vec![b, b, b]));
        }
        assert_eq!(dec(&[]), Ok(vec![]));
        assert_eq!(enc(&[]), Vec::<u8>::new());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn eos_in_the_string_is_an_error() {
        // EOS: thirty ones (then two ones of padding).
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(HpackError::HuffmanEos));
        // 'a' (00011), then EOS, then padding.
        let mut bits: u64 = 0b00011;
        bits = (bits << 30) | 0x3fff_ffff;
        bits = (bits << 5) | 0b11111;
        let bytes = bits.to_be_bytes()[3..].to_vec();
        assert_eq!(bytes.len(), 5);
        assert_eq!(dec(&bytes), Err(HpackError::HuffmanEos));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn padding_longer_than_seven_bits_is_an_error() {
        // A whole octet of ones after a complete symbol.
        let mut coded = enc(b"0"); // 00000 + 111 padding
        assert_eq!(coded, [0x07]);
        coded.push(0xff);
        assert_eq!(dec(&coded), Err(HpackError::HuffmanPaddingTooLong));
        assert_eq!(dec(&[0xff]), Err(HpackError::HuffmanPaddingTooLong));
        assert_eq!(dec(&[0xff, 0xff]), Err(HpackError::HuffmanPaddingTooLong));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn padding_not_all_ones_is_an_error() {
        // '0' (00000) then 110 instead of 111.
        assert_eq!(dec(&[0x06]), Err(HpackError::HuffmanPaddingNotOnes));
        // '0' (00000), then three zero bits.
        assert_eq!(dec(&[0x00]), Err(HpackError::HuffmanPaddingNotOnes));
        // "302" is exactly two octets; a third of zeros is not padding.
        assert_eq!(
            dec(&[0x64, 0x02, 0x00]),
            Err(HpackError::HuffmanPaddingNotOnes)
        );
    }
}

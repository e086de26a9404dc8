//! HPACK, the header compression of HTTP/2 (RFC 7541).
//!
//! A header list travels as a *header block*: a sequence of representations, each either
//! an index into the tables, or a literal name and/or value (raw or Huffman-coded)
//! that may also be added to the dynamic table. Both ends keep the same dynamic table,
//! so the bytes must be decoded in order, each block exactly once.
//!
//! ```text
//!   block bytes ──▶ Decoder::decode ──▶ [(name, value)]      (request headers)
//!                     │  primitive: integers, strings ── huffman (+ huffman_table)
//!                     └─ table: static table + DynamicTable (bounded, evicts oldest)
//!   [Field] ─────▶ Encoder::encode ──▶ block bytes           (response headers)
//! ```
//!
//! The decoder is the part that faces the peer, so it is the part with the limits:
//! - the dynamic table never grows past the size we advertised in
//!   SETTINGS_HEADER_TABLE_SIZE, and a size update must come at the start of a block
//!   and stay within it (a smaller bound must be acknowledged by such an update);
//! - a decoded header list is capped (a parameter; RFC 9113's measure: name + value +
//!   32 per field), so a block of one-byte references to a large entry (an "HPACK
//!   bomb") costs at most the cap. Past the cap the decoder stops keeping fields but
//!   still processes the rest of the block, so its table stays in step with the peer's
//!   and the connection may answer 431 on that stream instead of closing.
//!
//! Every other [`HpackError`] is a connection error of type COMPRESSION_ERROR: after it
//! the tables can no longer be trusted to agree.

mod decoder;
mod encoder;
mod huffman;
mod huffman_table;
mod primitive;
mod table;

pub use decoder::{Decoder, HeaderList};
pub use encoder::{Encoder, Field, Indexing};
pub use huffman::{decode as huffman_decode, encode as huffman_encode, encoded_len};
pub use primitive::{decode_int, decode_string, encode_int, encode_string, MAX_INT};
pub use table::{entry_size, DynamicTable, ENTRY_OVERHEAD, STATIC_TABLE};

/// The dynamic table size both ends start with (RFC 9113 SETTINGS_HEADER_TABLE_SIZE).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a header block could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// A representation runs past the end of the block.
    Truncated,
    /// An integer above [`MAX_INT`], or with more continuation octets than that needs.
    IntegerOverflow,
    /// Index 0, or an index past the end of the static and dynamic tables.
    InvalidIndex(usize),
    /// The EOS symbol inside a Huffman-coded string.
    HuffmanEos,
    /// More than 7 bits of padding at the end of a Huffman-coded string.
    HuffmanPaddingTooLong,
    /// Padding at the end of a Huffman-coded string that is not all ones.
    HuffmanPaddingNotOnes,
    /// A dynamic table size update after the first field representation of a block.
    SizeUpdateNotAtStart,
    /// A dynamic table size update above the bound of SETTINGS_HEADER_TABLE_SIZE.
    SizeUpdateTooLarge { requested: usize, bound: usize },
    /// The bound was lowered, and the next block did not open with a size update.
    SizeUpdateMissing,
    /// The decoded header list is over the cap. The block was processed to its end, so
    /// the dynamic table is still in step: this one error can be a stream error (431).
    HeaderListTooLarge { limit: usize },
}

impl HpackError {
    /// Whether the dynamic table is still in step with the peer's after this error (so
    /// the connection can go on); every other error is a COMPRESSION_ERROR.
    pub fn table_in_step(&self) -> bool {
        matches!(self, HpackError::HeaderListTooLarge { .. })
    }
}

#[cfg(test)]
mod rfc7541_examples;

#[cfg(test)]
pub(crate) mod tests {
    /// Bytes from hex digits, ignoring spaces (as the RFC prints its examples).
    pub(crate) fn unhex(hex: &str) -> Vec<u8> {
        let digits: Vec<u8> = hex
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => panic!("not a hex digit: {}", b as char),
            })
            .collect();
        assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    /// A deterministic pseudo-random byte source (an LCG with a fixed seed), for the
    /// "never panics" loops.
    pub(crate) struct Lcg(pub u64);

    impl Lcg {
        pub(crate) fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }
        pub(crate) fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let len = self.next_u32() as usize % (max_len + 1);
            (0..len).map(|_| self.next_u32() as u8).collect()
        }
    }
}

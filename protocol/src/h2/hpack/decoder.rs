//! The HPACK decoder: one per connection, fed every header block in the order the
//! blocks arrive (HEADERS plus its CONTINUATIONs, joined), and answering the header
//! list of each.
//!
//! A block is a loop over representations, told apart by their first bits (RFC 7541
//! §6): `1` indexed field; `01` literal with incremental indexing (then added to the
//! dynamic table); `001` dynamic table size update (only before the first field);
//! `0000` literal without indexing; `0001` literal never indexed. Each field is counted
//! against the header list cap as it comes out; see the module above for what happens
//! past the cap.

use super::primitive::{decode_int, decode_string};
use super::table::{entry_size, lookup, DynamicTable};
use super::{HpackError, DEFAULT_TABLE_SIZE};

/// A decoded header list: (name, value) pairs in the order they were sent.
pub type HeaderList = Vec<(Vec<u8>, Vec<u8>)>;

/// Decodes header blocks; holds the dynamic table the peer's encoder mirrors.
#[derive(Clone, Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE in force: no size update may go above it.
    bound: usize,
    /// The bound was lowered below the table's size: the next block must open with a
    /// size update.
    update_required: bool,
    /// The cap on a decoded header list (name + value + 32 per field).
    max_list_size: usize,
}

impl Default for Decoder {
    /// The defaults of HTTP/2: a 4096-byte table, and a 16 KiB header list cap.
    fn default() -> Self {
        Decoder::new(DEFAULT_TABLE_SIZE, 16 * 1024)
    }
}

impl Decoder {
    /// A decoder whose table starts with (and is bounded by) `table_size`, and which
    /// refuses header lists over `max_header_list_size`.
    pub fn new(table_size: usize, max_header_list_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(table_size),
            bound: table_size,
            update_required: false,
            max_list_size: max_header_list_size,
        }
    }

    /// Changes the bound, when the peer has acknowledged the SETTINGS frame that carried
    /// a new SETTINGS_HEADER_TABLE_SIZE. If it is below the table's current maximum, the
    /// peer must open its next block with a size update within the new bound.
    pub fn set_table_bound(&mut self, bound: usize) {
        self.bound = bound;
        if bound < self.table.max_size() {
            self.update_required = true;
        }
    }

    /// Changes the cap on the size of a decoded header list.
    pub fn set_max_header_list_size(&mut self, max: usize) {
        self.max_list_size = max;
    }

    /// The dynamic table, as the last block left it.
    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes one complete header block.
    ///
    /// On [`HpackError::HeaderListTooLarge`] the whole block has been processed and the
    /// table is in step; on any other error the connection must end (COMPRESSION_ERROR).
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderList, HpackError> {
        let mut fields = HeaderList::new();
        let mut list_size = 0usize;
        let mut over = false;
        let mut at_start = true;
        let mut pos = 0;
        while let Some(&first) = block.get(pos) {
            let rest = &block[pos..];
            if first & 0xe0 == 0x20 {
                // Dynamic table size update.
                if !at_start {
                    return Err(HpackError::SizeUpdateNotAtStart);
                }
                let (size, used) = decode_int(rest, 5)?;
                if size > self.bound {
                    return Err(HpackError::SizeUpdateTooLarge {
                        requested: size,
                        bound: self.bound,
                    });
                }
                self.table.set_max_size(size);
                self.update_required = false;
                pos += used;
                continue;
            }
            if self.update_required {
                return Err(HpackError::SizeUpdateMissing);
            }
            at_start = false;
            let (name, value, used) = if first & 0x80 != 0 {
                let (index, used) = decode_int(rest, 7)?;
                let (n, v) = lookup(&self.table, index).ok_or(HpackError::InvalidIndex(index))?;
                (n.to_vec(), v.to_vec(), used)
            } else {
                // 01: 6-bit name index; 0000 and 0001: 4-bit.
                let indexing = first & 0x40 != 0;
                let prefix = if indexing { 6 } else { 4 };
                let (index, mut used) = decode_int(rest, prefix)?;
                let mut name = Vec::new();
                if index == 0 {
                    used += decode_string(&rest[used..], &mut name)?;
                } else {
                    let (n, _) =
                        lookup(&self.table, index).ok_or(HpackError::InvalidIndex(index))?;
                    name.extend_from_slice(n);
                }
                let mut value = Vec::new();
                used += decode_string(&rest[used..], &mut value)?;
                if indexing {
                    self.table.insert(name.clone(), value.clone());
                }
                (name, value, used)
            };
            pos += used;
            list_size = list_size.saturating_add(entry_size(&name, &value));
            if list_size > self.max_list_size {
                // Keep going for the table's sake, keep nothing.
                over = true;
                fields = HeaderList::new();
            }
            if !over {
                fields.push((name, value));
            }
        }
        if self.update_required {
            return Err(HpackError::SizeUpdateMissing);
        }
        if over {
            return Err(HpackError::HeaderListTooLarge {
                limit: self.max_list_size,
            });
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{unhex, Lcg};
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn size_update_rules() {
        let mut d = Decoder::new(256, 1 << 16);
        // At the start, within the bound: fine, even two of them, and alone.
        assert_eq!(d.decode(&[0x3f, 0xe1, 0x01, 0x20]), Ok(vec![])); // 256 then 0
        assert_eq!(d.table().max_size(), 0);
        assert_eq!(
            d.decode(&[0x3f, 0x61, 0x82]),
            Ok(vec![(b":method".to_vec(), b"GET".to_vec())])
        );
        assert_eq!(d.table().max_size(), 128);
        // Above the bound.
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x01]),
            Err(HpackError::SizeUpdateTooLarge {
                requested: 257,
                bound: 256
            })
        );
        // After a field.
        assert_eq!(
            d.decode(&[0x82, 0x20]),
            Err(HpackError::SizeUpdateNotAtStart)
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn lowered_bound_must_be_acknowledged() {
        let mut d = Decoder::new(4096, 1 << 16);
        // custom-key: custom-header, with indexing (55 bytes).
        let c21 = unhex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert!(d.decode(&c21).is_ok());
        // Raising the bound needs no update.
        d.set_table_bound(8192);
        assert!(d.decode(&[0x82]).is_ok());
        // Lowering it does: a block without one is refused ...
        d.set_table_bound(100);
        assert_eq!(d.decode(&[0x82]), Err(HpackError::SizeUpdateMissing));
        assert_eq!(d.decode(&[]), Err(HpackError::SizeUpdateMissing));
        // ... one above it too ...
        assert_eq!(
            d.decode(&[0x3f, 0x46, 0x82]),
            Err(HpackError::SizeUpdateTooLarge {
                requested: 101,
                bound: 100
            })
        );
        // ... one within it is accepted, and evicts.
        assert_eq!(d.decode(&[0x3f, 0x01, 0x82]).map(|l| l.len()), Ok(1));
        assert_eq!(d.table().max_size(), 32);
        assert!(d.table().is_empty());
        assert!(d.decode(&[0x82]).is_ok());
        // A new bound at or above the table's maximum asks for nothing.
        d.set_table_bound(32);
        assert!(d.decode(&[0x82]).is_ok());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn invalid_indices() {
        let mut d = Decoder::default();
        assert_eq!(d.decode(&[0x80]), Err(HpackError::InvalidIndex(0)));
        assert_eq!(d.decode(&[0xbe]), Err(HpackError::InvalidIndex(62)));
        assert_eq!(
            d.decode(&[0x7f, 0x00, 0x00]),
            Err(HpackError::InvalidIndex(63))
        );
        assert_eq!(
            d.decode(&[0x0f, 0x30, 0x00]),
            Err(HpackError::InvalidIndex(63))
        );
        assert_eq!(d.decode(&[0x41]), Err(HpackError::Truncated));
        assert_eq!(d.decode(&[0x40, 0x01, b'a']), Err(HpackError::Truncated));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn hpack_bomb_is_capped_and_table_stays_in_step() {
        // One 4 KiB entry, then thousands of one-byte references to it: ~16 MiB of
        // headers from ~8 KiB of input, if nothing stopped it.
        let mut block = vec![0x40, 0x01, b'x', 0x7f];
        let mut tail = Vec::new();
        super::super::encode_int(&mut tail, 4000, 7, 0);
        block.extend_from_slice(&tail[1..]);
        block.extend(std::iter::repeat_n(b'v', 4000));
        block.extend(std::iter::repeat_n(0xbe, 4000));
        let mut d = Decoder::new(4096, 64 * 1024);
        assert_eq!(
            d.decode(&block),
            Err(HpackError::HeaderListTooLarge { limit: 64 * 1024 })
        );
        assert!(HpackError::HeaderListTooLarge { limit: 0 }.table_in_step());
        // The entry was added; the next block can use it, and is judged on its own.
        assert_eq!(d.table().len(), 1);
        let list = d.decode(&[0xbe]).unwrap_or_default();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].1.len(), 4000);
        // Exactly at the cap is fine; one byte over is not.
        let mut d = Decoder::new(4096, 42 + 42);
        assert_eq!(d.decode(&[0x82, 0x82]).map(|l| l.len()), Ok(2));
        let mut d = Decoder::new(4096, 42 + 41);
        assert_eq!(
            d.decode(&[0x82, 0x82]),
            Err(HpackError::HeaderListTooLarge { limit: 83 })
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn never_panics_on_random_blocks() {
        let mut rng = Lcg(0x5eed_4a3c_0000_0001);
        let mut d = Decoder::new(512, 4096);
        let mut ok = 0;
        for i in 0..20_000 {
            let mut block = rng.bytes(48);
            // Bias some blocks towards valid openings so that the deeper paths run.
            if i % 3 == 0 && !block.is_empty() {
                block[0] = [0x82, 0x40, 0x3f, 0x10, 0x0f, 0xbe][i % 6];
            }
            match d.decode(&block) {
                Ok(list) => {
                    ok += 1;
                    let size: usize = list.iter().map(|(n, v)| entry_size(n, v)).sum();
                    assert!(size <= 4096);
                }
                Err(_) => d = Decoder::new(512, 4096),
            }
            assert!(d.table().size() <= d.table().max_size());
            assert!(d.table().max_size() <= 512);
        }
        assert!(ok > 100, "only {ok} blocks decoded");
    }
}

//! The HPACK encoder: one per connection, turning each header list we send into a
//! header block, and keeping the dynamic table the peer's decoder mirrors.
//!
//! For each field it looks the field up (table.rs `find`): a full match is sent as an
//! index; otherwise the name is sent as an index when one is known, else as a literal,
//! and the value as a literal, raw or Huffman-coded (whichever is not longer, when
//! Huffman is on). The field's [`Indexing`] says whether it then joins the dynamic
//! table. A change of the table size (the peer's SETTINGS_HEADER_TABLE_SIZE) is
//! signalled at the start of the next block, as RFC 7541 §4.2 asks.

use super::primitive::{encode_int, encode_string};
use super::table::{entry_size, find, DynamicTable, Match};
use super::DEFAULT_TABLE_SIZE;

/// Whether a literal field joins the dynamic table (RFC 7541 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Indexing {
    /// Added to the dynamic table (unless it is larger than the whole table).
    #[default]
    Incremental,
    /// Not added.
    Without,
    /// Not added, and never to be added by an intermediary either; never matched by
    /// value against the dynamic table (for secrets: cookies, credentials).
    Never,
}

/// A field to encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub indexing: Indexing,
}

impl<'a> Field<'a> {
    /// A field with incremental indexing; name and value are anything that is bytes
    /// (`&str`, `&[u8]`, `&[u8; N]`, `&Vec<u8>`, ...).
    pub fn new<N, V>(name: &'a N, value: &'a V) -> Self
    where
        N: AsRef<[u8]> + ?Sized,
        V: AsRef<[u8]> + ?Sized,
    {
        Field {
            name: name.as_ref(),
            value: value.as_ref(),
            indexing: Indexing::Incremental,
        }
    }

    /// The same field with another indexing.
    pub fn with(self, indexing: Indexing) -> Self {
        Field { indexing, ..self }
    }
}

/// Encodes header lists into header blocks.
#[derive(Clone, Debug)]
pub struct Encoder {
    table: DynamicTable,
    huffman: bool,
    /// Size changes not yet signalled: the smallest since the last block, and the last.
    pending: Option<(usize, usize)>,
}

impl Default for Encoder {
    /// A 4096-byte table, with Huffman coding.
    fn default() -> Self {
        Encoder::new(DEFAULT_TABLE_SIZE)
    }
}

impl Encoder {
    /// An encoder whose table starts at `table_size` (the size both ends assume without
    /// a size update: 4096 in HTTP/2), with Huffman coding on.
    pub fn new(table_size: usize) -> Self {
        Encoder {
            table: DynamicTable::new(table_size),
            huffman: true,
            pending: None,
        }
    }

    /// Turns Huffman coding of literals on or off.
    pub fn set_huffman(&mut self, on: bool) {
        self.huffman = on;
    }

    /// Changes the table size, at most the peer's SETTINGS_HEADER_TABLE_SIZE (and as
    /// small as we like below it); the next block opens with the size update(s).
    pub fn set_max_table_size(&mut self, size: usize) {
        self.pending = Some(match self.pending {
            Some((smallest, _)) => (smallest.min(size), size),
            None => (size, size),
        });
    }

    /// The dynamic table, as the last block left it.
    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Appends the header block for `fields` to `out`.
    pub fn encode<'a>(&mut self, fields: impl IntoIterator<Item = Field<'a>>, out: &mut Vec<u8>) {
        if let Some((smallest, last)) = self.pending.take() {
            // If the size went down and back up, the peer must see the low point too,
            // so that it evicts what we evicted.
            if smallest < last {
                encode_int(out, smallest, 5, 0x20);
                self.table.set_max_size(smallest);
            }
            encode_int(out, last, 5, 0x20);
            self.table.set_max_size(last);
        }
        for field in fields {
            self.encode_field(field, out);
        }
    }

    fn encode_field(&mut self, field: Field<'_>, out: &mut Vec<u8>) {
        let Field {
            name,
            value,
            mut indexing,
        } = field;
        let found = find(&self.table, name, value, indexing != Indexing::Never);
        if let Match::Full(index) = found {
            encode_int(out, index, 7, 0x80);
            return;
        }
        // An entry larger than the table would only empty it.
        if indexing == Indexing::Incremental && entry_size(name, value) > self.table.max_size() {
            indexing = Indexing::Without;
        }
        let (prefix, flags) = match indexing {
            Indexing::Incremental => (6, 0x40),
            Indexing::Without => (4, 0x00),
            Indexing::Never => (4, 0x10),
        };
        match found {
            Match::Name(index) => encode_int(out, index, prefix, flags),
            _ => {
                encode_int(out, 0, prefix, flags);
                encode_string(out, name, self.huffman);
            }
        }
        encode_string(out, value, self.huffman);
        if indexing == Indexing::Incremental {
            self.table.insert(name.to_vec(), value.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Decoder;
    use super::*;

    fn block(e: &mut Encoder, fields: &[Field<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        e.encode(fields.iter().copied(), &mut out);
        out
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn size_changes_are_signalled_at_the_next_block() {
        let mut e = Encoder::new(4096);
        let mut d = Decoder::new(4096, 1 << 16);
        let f = [Field::new(b"x-a", b"1")];
        let first = block(&mut e, &f);
        assert_eq!(d.decode(&first).map(|l| l.len()), Ok(1));
        assert_eq!(e.table(), d.table());
        // Down to 0 and back up to 100 between two blocks: both are sent.
        e.set_max_table_size(0);
        e.set_max_table_size(100);
        let second = block(&mut e, &f);
        assert_eq!(second[..3], [0x20, 0x3f, 0x45]);
        assert_eq!(d.decode(&second).map(|l| l.len()), Ok(1));
        assert_eq!(e.table(), d.table());
        assert_eq!(e.table().max_size(), 100);
        // A single change is a single update; an unchanged size still signals it.
        e.set_max_table_size(50);
        assert_eq!(block(&mut e, &[])[..], [0x3f, 0x13]);
        e.set_max_table_size(50);
        assert_eq!(block(&mut e, &[])[..], [0x3f, 0x13]);
        assert_eq!(block(&mut e, &[]), Vec::<u8>::new());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn indexing_choices() {
        let mut e = Encoder::new(4096);
        e.set_huffman(false);
        // Never indexed: not added, and not matched by value even when it could be.
        let secret = Field::new(b"cookie", b"s=1").with(Indexing::Never);
        assert_eq!(block(&mut e, &[secret]), b"\x1f\x11\x03s=1");
        assert!(e.table().is_empty());
        e.encode([Field::new(b"cookie", b"s=1")], &mut Vec::new());
        assert_eq!(e.table().len(), 1);
        assert_eq!(block(&mut e, &[secret]), b"\x1f\x11\x03s=1");
        assert_eq!(block(&mut e, &[Field::new(b"cookie", b"s=1")]), [0xbe]);
        // Without indexing: matched by value, but not added.
        let plain = Field::new(b"x-b", b"2").with(Indexing::Without);
        assert_eq!(block(&mut e, &[plain]), b"\x00\x03x-b\x012");
        assert_eq!(e.table().len(), 1);
        // Too large for the table: sent without indexing instead of emptying it.
        let big = vec![b'v'; 5000];
        let out = block(&mut e, &[Field::new(b"x-big", &big)]);
        assert_eq!(out[0], 0x00);
        assert_eq!(e.table().len(), 1);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn encoder_and_decoder_agree_over_many_blocks() {
        let mut rng = super::super::tests::Lcg(7);
        let mut e = Encoder::new(256);
        let mut d = Decoder::new(256, 1 << 20);
        for round in 0..500 {
            if round % 50 == 49 {
                let size = rng.next_u32() as usize % 300;
                e.set_max_table_size(size.min(256));
            }
            e.set_huffman(round % 3 != 0);
            let names = [&b"x-one"[..], b"x-two", b":path", b"cookie", b"date"];
            let values: Vec<Vec<u8>> = (0..4).map(|_| rng.bytes(40)).collect();
            let fields: Vec<Field<'_>> = (0..4)
                .map(|i| {
                    let name = names[rng.next_u32() as usize % names.len()];
                    let value = &values[rng.next_u32() as usize % values.len()];
                    let modes = [Indexing::Incremental, Indexing::Without, Indexing::Never];
                    // The first field always indexed, so that the tables keep changing.
                    let mode = if i == 0 {
                        0
                    } else {
                        rng.next_u32() as usize % 3
                    };
                    Field::new(name, value).with(modes[mode])
                })
                .collect();
            let bytes = block(&mut e, &fields);
            let want: Vec<(Vec<u8>, Vec<u8>)> = fields
                .iter()
                .map(|f| (f.name.to_vec(), f.value.to_vec()))
                .collect();
            assert_eq!(d.decode(&bytes), Ok(want), "round {round}");
            assert_eq!(e.table(), d.table(), "round {round}");
        }
    }
}

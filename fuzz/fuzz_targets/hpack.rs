//! HPACK (RFC 7541), both ways. Arbitrary blocks into one `Decoder` (its dynamic table
//! carried from block to block): no panic, the table within its bound, a decoded list
//! within the cap (the HPACK-bomb defence). Then the fields the input spells out go
//! through an `Encoder` (Huffman on or off, table resized) and back through a fresh
//! `Decoder` in step with it: the same fields, in order. And Huffman alone round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::h2::hpack::{
    entry_size, huffman_decode, huffman_encode, Decoder, Encoder, Field, HpackError, Indexing,
};

const CAP: usize = 8 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    // 1. Decoding: blocks separated by 0xFF 0x00 (rare inside a block).
    let bound = [0usize, 64, 4096][usize::from(pick % 3)];
    let mut decoder = Decoder::new(bound, CAP);
    for block in split(data, &[0xff, 0x00]) {
        match decoder.decode(block) {
            Ok(list) => {
                let size: usize = list.iter().map(|(n, v)| entry_size(n, v)).sum();
                assert!(size <= CAP, "a list of {size} bytes past the cap");
            }
            Err(HpackError::HeaderListTooLarge { .. }) => {}
            Err(_) => break,
        }
        assert!(decoder.table().size() <= decoder.table().max_size());
        assert!(decoder.table().max_size() <= bound);
    }

    // 2. Encoding then decoding: fields as `name=value` lines.
    let text = String::from_utf8_lossy(data);
    let fields: Vec<(Vec<u8>, Vec<u8>)> = (text.split('\n'))
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .take(64)
        .collect();
    let size = if pick & 0x10 != 0 { 256 } else { 4096 };
    let mut encoder = Encoder::new(4096);
    encoder.set_huffman(pick & 0x20 != 0);
    let mut decoder = Decoder::new(4096, usize::MAX);
    for round in 0..2 {
        if round == 1 {
            // A smaller table between the blocks (SETTINGS_HEADER_TABLE_SIZE acked).
            encoder.set_max_table_size(size);
            decoder.set_table_bound(size);
        }
        let indexing = match (pick >> 6) & 3 {
            0 => Indexing::Never,
            1 => Indexing::Without,
            _ => Indexing::Incremental,
        };
        let mut block = Vec::new();
        encoder.encode(
            fields.iter().map(|(n, v)| Field::new(n, v).with(indexing)),
            &mut block,
        );
        let got = decoder
            .decode(&block)
            .unwrap_or_else(|e| panic!("our own block fails: {e:?}"));
        assert_eq!(got, fields, "round {round}");
        assert_eq!(
            decoder.table().size(),
            encoder.table().size(),
            "tables in step"
        );
    }

    // 3. Huffman alone.
    let mut coded = Vec::new();
    huffman_encode(data, &mut coded);
    let mut back = Vec::new();
    huffman_decode(&coded, &mut back).expect("our own Huffman code decodes");
    assert_eq!(back, data);
});

/// `data` cut at each `sep`.
fn split<'a>(mut data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        match data.windows(sep.len()).position(|w| w == sep) {
            Some(at) => {
                let (block, rest) = data.split_at(at);
                data = &rest[sep.len()..];
                Some(block)
            }
            None => Some(std::mem::take(&mut data)),
        }
    })
}

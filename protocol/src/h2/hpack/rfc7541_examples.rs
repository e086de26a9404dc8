//! Every example of RFC 7541 Appendix C (C.1 is in `primitive.rs`), run both ways: the
//! decoder must turn the RFC's bytes into the RFC's header list, and the encoder must
//! turn the list into the RFC's bytes, byte for byte; after each block both dynamic
//! tables must hold exactly the RFC's entries (newest first) and size.

use super::tests::unhex;
use super::{Decoder, Encoder, Field, Indexing};

/// One header block of an example sequence.
struct Step<'a> {
    headers: &'a [(&'a str, &'a str)],
    hex: &'a str,
    /// The dynamic table after the block, newest first, and its size.
    table: &'a [(&'a str, &'a str)],
    size: usize,
}

fn run(table_size: usize, huffman: bool, indexing: Indexing, steps: &[Step<'_>]) {
    let mut decoder = Decoder::new(table_size, 1 << 16);
    let mut encoder = Encoder::new(table_size);
    encoder.set_huffman(huffman);
    for (i, step) in steps.iter().enumerate() {
        let bytes = unhex(step.hex);
        let want_list: Vec<(Vec<u8>, Vec<u8>)> = step
            .headers
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let want_table: Vec<(&[u8], &[u8])> = step
            .table
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();

        assert_eq!(
            decoder.decode(&bytes),
            Ok(want_list),
            "decoding block {}",
            i + 1
        );
        let got: Vec<_> = decoder.table().iter().collect();
        assert_eq!(got, want_table, "decoder table after block {}", i + 1);
        assert_eq!(
            decoder.table().size(),
            step.size,
            "decoder size after {}",
            i + 1
        );

        let mut out = Vec::new();
        let fields = step
            .headers
            .iter()
            .map(|(n, v)| Field::new(*n, *v).with(indexing));
        encoder.encode(fields, &mut out);
        assert_eq!(out, bytes, "encoding block {}", i + 1);
        let got: Vec<_> = encoder.table().iter().collect();
        assert_eq!(got, want_table, "encoder table after block {}", i + 1);
        assert_eq!(
            encoder.table().size(),
            step.size,
            "encoder size after {}",
            i + 1
        );
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c2_1_literal_with_indexing() {
    let step = Step {
        headers: &[("custom-key", "custom-header")],
        hex: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        table: &[("custom-key", "custom-header")],
        size: 55,
    };
    run(4096, false, Indexing::Incremental, &[step]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c2_2_literal_without_indexing() {
    let step = Step {
        headers: &[(":path", "/sample/path")],
        hex: "040c 2f73 616d 706c 652f 7061 7468",
        table: &[],
        size: 0,
    };
    run(4096, false, Indexing::Without, &[step]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c2_3_literal_never_indexed() {
    let step = Step {
        headers: &[("password", "secret")],
        hex: "1008 7061 7373 776f 7264 0673 6563 7265 74",
        table: &[],
        size: 0,
    };
    run(4096, false, Indexing::Never, &[step]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c2_4_indexed_field() {
    let step = Step {
        headers: &[(":method", "GET")],
        hex: "82",
        table: &[],
        size: 0,
    };
    run(4096, false, Indexing::Incremental, &[step]);
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_TABLE1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_TABLE2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_TABLE3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c3_requests_without_huffman() {
    let steps = [
        Step {
            headers: REQ1,
            hex: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            table: REQ_TABLE1,
            size: 57,
        },
        Step {
            headers: REQ2,
            hex: "8286 84be 5808 6e6f 2d63 6163 6865",
            table: REQ_TABLE2,
            size: 110,
        },
        Step {
            headers: REQ3,
            hex: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            table: REQ_TABLE3,
            size: 164,
        },
    ];
    run(4096, false, Indexing::Incremental, &steps);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c4_requests_with_huffman() {
    let steps = [
        Step {
            headers: REQ1,
            hex: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            table: REQ_TABLE1,
            size: 57,
        },
        Step {
            headers: REQ2,
            hex: "8286 84be 5886 a8eb 1064 9cbf",
            table: REQ_TABLE2,
            size: 110,
        },
        Step {
            headers: REQ3,
            hex: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            table: REQ_TABLE3,
            size: 164,
        },
    ];
    run(4096, true, Indexing::Incremental, &steps);
}

const RESP1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESP2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESP3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RESP_TABLE1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESP_TABLE2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RESP_TABLE3: &[(&str, &str)] = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c5_responses_without_huffman() {
    let steps = [
        Step {
            headers: RESP1,
            hex: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 \
                  3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 \
                  7777 2e65 7861 6d70 6c65 2e63 6f6d",
            table: RESP_TABLE1,
            size: 222,
        },
        Step {
            headers: RESP2,
            hex: "4803 3330 37c1 c0bf",
            table: RESP_TABLE2,
            size: 222,
        },
        Step {
            headers: RESP3,
            hex: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 \
                  3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a \
                  584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 \
                  3630 303b 2076 6572 7369 6f6e 3d31",
            table: RESP_TABLE3,
            size: 215,
        },
    ];
    run(256, false, Indexing::Incremental, &steps);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn c6_responses_with_huffman() {
    let steps = [
        Step {
            headers: RESP1,
            hex: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 \
                  66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            table: RESP_TABLE1,
            size: 222,
        },
        Step {
            headers: RESP2,
            hex: "4883 640e ffc1 c0bf",
            table: RESP_TABLE2,
            size: 222,
        },
        Step {
            headers: RESP3,
            hex: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a \
                  839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 \
                  72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            table: RESP_TABLE3,
            size: 215,
        },
    ];
    run(256, true, Indexing::Incremental, &steps);
}

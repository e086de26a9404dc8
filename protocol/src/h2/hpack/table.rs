//! The two tables of HPACK (RFC 7541 §2.3, §4): the static table of 61 common fields
//! (Appendix A), and the dynamic table both ends build from the fields sent with
//! incremental indexing.
//!
//! They share one index space: 1..=61 is the static table, 62 onwards the dynamic table,
//! newest first. The dynamic table is bounded by size, counted as name + value + 32 per
//! entry; adding an entry first evicts the oldest ones until it fits, and an entry larger
//! than the whole table empties it and is not kept. Lowering the maximum evicts at once.

use std::collections::VecDeque;

/// The per-entry overhead of RFC 7541 §4.1.
pub const ENTRY_OVERHEAD: usize = 32;

/// The size an entry counts for in the dynamic table (and in a header list).
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + ENTRY_OVERHEAD
}

/// RFC 7541 Appendix A; `STATIC_TABLE[i]` has index `i + 1`.
pub static STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The dynamic table: a FIFO of entries bounded by a maximum size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicTable {
    /// Newest first.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    /// An empty table with the given maximum size.
    pub fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The current size (sum of [`entry_size`] over the entries).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The current maximum size.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The `i`-th entry, 0 being the newest (HPACK index `62 + i`).
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries
            .get(i)
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// The entries, newest first.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// Adds an entry, evicting the oldest until it fits; one larger than the maximum
    /// size empties the table and is dropped (RFC 7541 §4.4).
    pub fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front((name, value));
    }

    /// Changes the maximum size, evicting the oldest entries until the table fits.
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= entry_size(&n, &v),
                None => break,
            }
        }
    }
}

/// The entry at an HPACK index (1-based, static then dynamic), if there is one.
pub(super) fn lookup(dynamic: &DynamicTable, index: usize) -> Option<(&[u8], &[u8])> {
    match index {
        0 => None,
        1..=61 => STATIC_TABLE
            .get(index - 1)
            .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        _ => dynamic.get(index - 62),
    }
}

/// What the tables hold for a field, as the encoder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Match {
    /// Name and value at this index.
    Full(usize),
    /// The name (only) at this index.
    Name(usize),
    None,
}

/// Finds a field in the tables: a full match first (static, then dynamic), else a name
/// match (static, then dynamic), the lowest index of each kind. `values` false looks at
/// names only (for fields that must not be matched by value).
pub(super) fn find(dynamic: &DynamicTable, name: &[u8], value: &[u8], values: bool) -> Match {
    let statics = STATIC_TABLE
        .iter()
        .enumerate()
        .map(|(i, (n, v))| (i + 1, n.as_bytes(), v.as_bytes()));
    let dynamics = dynamic.iter().enumerate().map(|(i, (n, v))| (i + 62, n, v));
    let mut by_name = None;
    for (index, n, v) in statics.chain(dynamics) {
        if n == name {
            if values && v == value {
                return Match::Full(index);
            }
            by_name = by_name.or(Some(index));
        }
    }
    by_name.map_or(Match::None, Match::Name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(t: &DynamicTable) -> Vec<(String, String)> {
        t.iter()
            .map(|(n, v)| {
                let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (s(n), s(v))
            })
            .collect()
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn static_table_indices() {
        let empty = DynamicTable::new(0);
        let at = |i| lookup(&empty, i);
        assert_eq!(at(0), None);
        assert_eq!(at(1), Some((&b":authority"[..], &b""[..])));
        assert_eq!(at(2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(
            at(16),
            Some((&b"accept-encoding"[..], &b"gzip, deflate"[..]))
        );
        assert_eq!(at(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(at(62), None);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn eviction_and_resizing() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a".to_vec(), b"1".to_vec()); // 34
        t.insert(b"b".to_vec(), b"2".to_vec()); // 34
        assert_eq!((t.len(), t.size()), (2, 68));
        t.insert(b"c".to_vec(), b"3".to_vec()); // evicts a
        assert_eq!(
            table(&t),
            [("c".into(), "3".into()), ("b".into(), "2".into())]
        );
        assert_eq!(lookup(&t, 62), Some((&b"c"[..], &b"3"[..])));
        assert_eq!(lookup(&t, 63), Some((&b"b"[..], &b"2"[..])));
        assert_eq!(lookup(&t, 64), None);
        // Exactly the maximum fits, alone.
        t.insert(vec![b'x'; 60], vec![b'y'; 8]);
        assert_eq!((t.len(), t.size()), (1, 100));
        // One larger than the table empties it.
        t.insert(vec![b'x'; 60], vec![b'y'; 9]);
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(b"d".to_vec(), b"4".to_vec());
        t.insert(b"e".to_vec(), b"5".to_vec());
        t.set_max_size(40);
        assert_eq!(table(&t), [("e".into(), "5".into())]);
        t.set_max_size(0);
        assert!(t.is_empty());
        assert_eq!(t.size(), 0);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn matching_prefers_full_then_static() {
        let mut t = DynamicTable::new(4096);
        assert_eq!(find(&t, b":method", b"GET", true), Match::Full(2));
        assert_eq!(find(&t, b":method", b"PUT", true), Match::Name(2));
        assert_eq!(find(&t, b":method", b"GET", false), Match::Name(2));
        assert_eq!(find(&t, b"x-new", b"1", true), Match::None);
        t.insert(b"date".to_vec(), b"then".to_vec());
        t.insert(b"x-new".to_vec(), b"1".to_vec());
        assert_eq!(find(&t, b"x-new", b"1", true), Match::Full(62));
        assert_eq!(find(&t, b"x-new", b"2", true), Match::Name(62));
        assert_eq!(find(&t, b"date", b"then", true), Match::Full(63));
        assert_eq!(find(&t, b"date", b"now", true), Match::Name(33));
    }
}

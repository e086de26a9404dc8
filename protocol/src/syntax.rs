//! Byte-level helpers of RFC 9110 §5.6 shared by the head parser and the framing rules:
//! optional whitespace, comma-separated lists, token characters. A leaf: it imports
//! nothing from the crate.

/// Trims optional whitespace (SP / HTAB) at both ends.
pub fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The elements of a comma-separated list, trimmed, empty ones skipped.
pub fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// RFC 9110 §5.6.2 token characters.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

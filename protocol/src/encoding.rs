//! Content-coding negotiation (RFC 9110 §12.5.3, SPEC "Compression and archives"):
//! which of the codings the server can produce for an answer the client prefers.
//!
//! ```text
//! let available = [Coding::Zstd, Coding::Br, Coding::Gzip, Coding::Identity];
//! match negotiate(accept_encoding_value, &available) {
//!     Some(Coding::Identity) => plain body,
//!     Some(c) => compressed, `Content-Encoding: c.token()`, `Vary: Accept-Encoding`,
//!     None => nothing available is acceptable: answer 406, or disregard the header
//!             and send the plain body (RFC 9110 §12.1 allows both; the caller picks),
//! }
//! ```
//!
//! The rules:
//! - No `Accept-Encoding`: any coding is acceptable (RFC 9110), but the answer is
//!   `identity` when it is available: a client that did not ask may not decode.
//! - An empty `Accept-Encoding`: only `identity`.
//! - Each member is `coding[;q=W][;other parameters]`, case-insensitive; `x-gzip` is
//!   `gzip` (§8.4.1.3). `*` stands for every coding not listed by name, `identity`
//!   included. A coding listed twice counts by its first listing.
//! - `identity` is acceptable unless `identity;q=0`, or `*;q=0` with no `identity`
//!   member. When nothing names it (by itself or through `*`), it ranks below every
//!   listed coding with a weight above zero: it is the fallback, not a preference.
//! - The highest weight wins; ties go to the server's preference zstd > br > gzip >
//!   identity (whatever the order of `available`).
//! - Malformed input is survived, never trusted: a member whose `q` is not a valid
//!   weight (`q=abc`, `q=1.5`, `q=0.0001`) is ignored as if absent; a member whose
//!   coding is not a token is ignored; other parameters are skipped.

use crate::syntax::{is_tchar, list, trim_ows};

/// The content codings the server produces, in its order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Coding {
    Zstd,
    Br,
    Gzip,
    Identity,
}

impl Coding {
    /// The token for `Content-Encoding` (identity is never sent as one).
    pub fn token(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Br => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }

    /// The file-name suffix of a precompressed sibling (`.zst`, `.br`, `.gz`).
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Coding::Zstd => Some(".zst"),
            Coding::Br => Some(".br"),
            Coding::Gzip => Some(".gz"),
            Coding::Identity => None,
        }
    }

    fn from_token(t: &[u8]) -> Option<Coding> {
        [
            (&b"zstd"[..], Coding::Zstd),
            (b"br", Coding::Br),
            (b"gzip", Coding::Gzip),
            (b"x-gzip", Coding::Gzip),
            (b"identity", Coding::Identity),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(t))
        .map(|(_, c)| c)
    }
}

/// What one `Accept-Encoding` says about one coding.
#[derive(Clone, Copy, Default)]
struct Weights {
    /// Weight in thousandths, by coding (zstd, br, gzip, identity), when named.
    named: [Option<u16>; 4],
    /// The weight of `*`, when listed.
    star: Option<u16>,
}

/// The coding to answer with, among `available`, for this `Accept-Encoding` value
/// (`None`: the header was absent). `None` back: nothing available is acceptable.
pub fn negotiate(accept_encoding: Option<&[u8]>, available: &[Coding]) -> Option<Coding> {
    let Some(value) = accept_encoding else {
        return available
            .iter()
            .copied()
            .find(|&c| c == Coding::Identity)
            .or_else(|| available.iter().copied().min());
    };
    let w = weights(value);
    // Rank: (weight in thousandths times 2, or 1 for an identity nobody named; then the
    // server's preference). Zero means not acceptable.
    available
        .iter()
        .copied()
        .map(|c| {
            let rank = match (w.named[c as usize], w.star) {
                (Some(q), _) => 2 * u32::from(q),
                (None, Some(q)) => 2 * u32::from(q),
                (None, None) if c == Coding::Identity => 1,
                (None, None) => 0,
            };
            (rank, c)
        })
        .filter(|&(rank, _)| rank > 0)
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, c)| c)
}

fn weights(value: &[u8]) -> Weights {
    let mut w = Weights::default();
    let mut seen_star = false;
    for member in list(value) {
        let mut parts = member.split(|&b| b == b';');
        let coding = trim_ows(parts.next().unwrap_or_default());
        if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            let param = trim_ows(param);
            let Some(eq) = param.iter().position(|&b| b == b'=') else {
                continue;
            };
            if trim_ows(&param[..eq]).eq_ignore_ascii_case(b"q") {
                q = parse_q(trim_ows(&param[eq + 1..]));
                break;
            }
        }
        let Some(q) = q else { continue };
        if coding == b"*" {
            if !seen_star {
                (seen_star, w.star) = (true, Some(q));
            }
        } else if let Some(c) = Coding::from_token(coding) {
            // Listed twice: the first says.
            w.named[c as usize].get_or_insert(q);
        }
    }
    w
}

/// RFC 9110 §12.4.2 `weight`: `0[.ddd]` or `1[.000]`, in thousandths.
fn parse_q(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let thousandths = frac
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(3)
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Coding::{Br, Gzip, Identity, Zstd};
    use super::*;

    const ALL: &[Coding] = &[Zstd, Br, Gzip, Identity];

    fn pick(header: &str) -> Option<Coding> {
        negotiate(Some(header.as_bytes()), ALL)
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn what_clients_send() {
        let table: &[(&str, Option<Coding>)] = &[
            // Chromium, Firefox (both since 2024), Safari, curl --compressed, wget, Go.
            ("gzip, deflate, br, zstd", Some(Zstd)),
            ("gzip, deflate, br", Some(Br)),
            ("deflate, gzip, br, zstd", Some(Zstd)),
            ("gzip", Some(Gzip)),
            ("identity", Some(Identity)),
            // Weights.
            ("gzip;q=1.0, identity; q=0.5, *;q=0", Some(Gzip)),
            ("br;q=1.0, gzip;q=0.8, *;q=0.1", Some(Br)),
            ("gzip;q=0.9, br;q=0.8", Some(Gzip)),
            ("zstd;q=0.1, br;q=0.2, gzip;q=0.3", Some(Gzip)),
            ("gzip;q=0.5, br;q=0.5", Some(Br)),
            ("br;q=0.001", Some(Br)),
            ("gzip;q=0.001, identity;q=0.002", Some(Identity)),
            // `*` and identity.
            ("*", Some(Zstd)),
            ("*;q=0.5, gzip", Some(Gzip)),
            ("gzip;q=0.5, *", Some(Zstd)),
            ("*;q=0", None),
            ("*;q=0, identity", Some(Identity)),
            ("*;q=0, gzip;q=0.1", Some(Gzip)),
            // A coding that is not listed is not acceptable without `*` (§12.5.3).
            ("identity;q=0", None),
            ("gzip, identity;q=0", Some(Gzip)),
            ("identity;q=0, *;q=0", None),
            ("br;q=0, gzip;q=0, zstd;q=0", Some(Identity)),
            ("br;q=0, gzip;q=0, zstd;q=0, identity;q=0", None),
            ("", Some(Identity)),
            ("compress, deflate", Some(Identity)),
            // Case, aliases, spacing, parameters, repeats.
            ("GZIP, BR", Some(Br)),
            ("x-gzip", Some(Gzip)),
            (" gzip ; q = 0.5 ,  br ;Q=0.4", Some(Gzip)),
            ("br;level=5;q=0.5, gzip;q=0.4", Some(Br)),
            ("gzip, gzip;q=0", Some(Gzip)),
            ("gzip;q=0, gzip", Some(Identity)),
            (",,, gzip ,,", Some(Gzip)),
            // Malformed members are ignored.
            ("gzip;q=abc, br;q=0.1", Some(Br)),
            ("zstd;q=1.5, gzip;q=0.2", Some(Gzip)),
            ("zstd;q=0.0001, gzip;q=0.2", Some(Gzip)),
            ("zstd;q=-1, gzip;q=0.2", Some(Gzip)),
            ("zstd;q=, gzip;q=0.2", Some(Gzip)),
            ("zstd;q=1.000, gzip", Some(Zstd)),
            ("zstd;q=1.001, gzip", Some(Gzip)),
            ("g zip, br", Some(Br)),
            ("\"br\", gzip", Some(Gzip)),
            (";q=1, gzip", Some(Gzip)),
        ];
        for &(header, want) in table {
            assert_eq!(pick(header), want, "{header:?}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn what_is_available() {
        // No header: identity when the server has it, else any.
        assert_eq!(negotiate(None, ALL), Some(Identity));
        assert_eq!(negotiate(None, &[Gzip, Br]), Some(Br));
        assert_eq!(negotiate(None, &[]), None);
        // Only a precompressed gzip sibling and the plain file.
        let gz: &[Coding] = &[Identity, Gzip];
        assert_eq!(negotiate(Some(b"gzip, deflate, br, zstd"), gz), Some(Gzip));
        assert_eq!(negotiate(Some(b"br"), gz), Some(Identity));
        assert_eq!(negotiate(Some(b"br, identity;q=0"), gz), None);
        // A Range request: identity only.
        assert_eq!(negotiate(Some(b"gzip, br"), &[Identity]), Some(Identity));
        assert_eq!(negotiate(Some(b"*;q=0"), &[Identity]), None);
        // The order of `available` does not matter; the server's preference does.
        assert_eq!(
            negotiate(Some(b"*"), &[Identity, Gzip, Br, Zstd]),
            Some(Zstd)
        );
        assert_eq!(negotiate(Some(b"gzip, br"), &[Gzip, Br]), Some(Br));
        assert_eq!(negotiate(Some(b""), &[Gzip]), None);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn weights_parse() {
        let table: &[(&str, Option<u16>)] = &[
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.123", Some(123)),
            ("1", Some(1000)),
            ("1.", Some(1000)),
            ("1.000", Some(1000)),
            ("1.0001", None),
            ("1.5", None),
            ("2", None),
            ("0.1234", None),
            ("", None),
            (".5", None),
            ("00.5", None),
            ("0.a", None),
            ("0,5", None),
        ];
        for &(v, want) in table {
            assert_eq!(parse_q(v.as_bytes()), want, "{v:?}");
        }
        assert_eq!(Zstd.token(), "zstd");
        assert_eq!((Br.suffix(), Identity.suffix()), (Some(".br"), None));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn pseudo_random_input_never_panics() {
        let mut seed = 0x0123_4567_89ab_cdefu64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u8
        };
        let alphabet = b"gzipbrstdq=0.15*;, \t\xff";
        for _ in 0..5_000 {
            let len = next() as usize % 48;
            let raw: Vec<u8> = (0..len)
                .map(|_| {
                    if next() % 6 == 0 {
                        next()
                    } else {
                        alphabet[next() as usize % alphabet.len()]
                    }
                })
                .collect();
            let _ = negotiate(Some(&raw), ALL);
        }
    }
}

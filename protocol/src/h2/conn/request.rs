//! The checks of RFC 9113 §8 on a decoded request header list (and on trailers): field
//! names and values (§8.2, §8.2.1), connection-specific fields (§8.2.2), pseudo-header
//! fields (§8.3, §8.3.1). A list that fails is a *malformed* request: the connection
//! resets its stream with PROTOCOL_ERROR (§8.1.1). Cookie crumbs are joined (§8.2.3).
//!
//! What is left to the caller, as for HTTP/1.1: the target itself (`:path` → a safe
//! path), the `:authority` / `Host` rules of SPEC "Security", the method's meaning.

use crate::h2::hpack::HeaderList;

/// A request head that passed the checks.
#[derive(Debug)]
pub(super) struct Head {
    /// Pseudo-header fields first, as received; then the regular fields, with the
    /// `cookie` crumbs joined into one field where the first one was.
    pub headers: HeaderList,
    pub content_length: Option<u64>,
}

/// Fields that only HTTP/1.1 connections have (§8.2.2); `te` is checked on its own.
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"proxy-connection",
    b"keep-alive",
    b"transfer-encoding",
    b"upgrade",
];

/// Whether a response field name must not be sent in HTTP/2 (§8.2.2).
pub(crate) fn is_connection_specific(name: &[u8]) -> bool {
    CONNECTION_SPECIFIC.contains(&name)
}

/// §8.2.1: no NUL, CR or LF; no leading or trailing space or tab.
fn check_value(value: &[u8]) -> Result<(), &'static str> {
    if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err("NUL, CR or LF in a field value");
    }
    let ws = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    if ws(value.first()) || ws(value.last()) {
        return Err("field value with leading or trailing whitespace");
    }
    Ok(())
}

/// §8.2 and §8.2.1: a regular field name is a non-empty run of bytes outside 0x00-0x20,
/// 'A'-'Z' and 0x7f-0xff, without a colon.
fn check_name(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty field name");
    }
    if name.iter().any(|b| b.is_ascii_uppercase()) {
        return Err("uppercase field name");
    }
    if name.iter().any(|&b| b <= 0x20 || b >= 0x7f || b == b':') {
        return Err("invalid byte in a field name");
    }
    Ok(())
}

/// The checks common to a request's regular fields and to trailers.
fn check_regular(name: &[u8], value: &[u8]) -> Result<(), &'static str> {
    check_name(name)?;
    if is_connection_specific(name) {
        return Err("connection-specific field");
    }
    if name == b"te" && !value.eq_ignore_ascii_case(b"trailers") {
        return Err("te other than \"trailers\"");
    }
    Ok(())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a decoded request header list.
pub(super) fn validate_request(list: HeaderList) -> Result<Head, &'static str> {
    let mut method: Option<usize> = None;
    let mut scheme: Option<usize> = None;
    let mut path: Option<usize> = None;
    let mut authority: Option<usize> = None;
    let mut host: Option<usize> = None;
    let mut content_length: Option<u64> = None;
    let mut regular_seen = false;
    for (i, (name, value)) in list.iter().enumerate() {
        check_value(value)?;
        if name.first() == Some(&b':') {
            if regular_seen {
                return Err("pseudo-header field after a regular field");
            }
            let slot = match &name[..] {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":path" => &mut path,
                b":authority" => &mut authority,
                b":status" => return Err(":status in a request"),
                _ => return Err("unknown pseudo-header field"),
            };
            if slot.replace(i).is_some() {
                return Err("duplicate pseudo-header field");
            }
            continue;
        }
        regular_seen = true;
        check_regular(name, value)?;
        match &name[..] {
            b"content-length" => {
                let n = parse_length(value).ok_or("invalid content-length")?;
                if content_length.is_some_and(|c| c != n) {
                    return Err("differing content-length values");
                }
                content_length = Some(n);
            }
            // Several hosts are not malformed HTTP/2: the core answers 400, as it does
            // over HTTP/1.1 (RFC 9110 §7.2), and each is checked against :authority.
            b"host" => {
                if authority.is_some_and(|a| !list[a].1.eq_ignore_ascii_case(value)) {
                    return Err("host differs from :authority");
                }
                host = Some(i);
            }
            _ => {}
        }
    }
    let value = |slot: Option<usize>| slot.map(|i| &list[i].1[..]);
    let method_value = value(method).ok_or("missing :method")?;
    if method_value.is_empty() || !method_value.iter().all(|&b| is_tchar(b)) {
        return Err("invalid :method");
    }
    if method_value == b"CONNECT" {
        // §8.5: only :authority.
        if scheme.is_some() || path.is_some() {
            return Err("CONNECT with :scheme or :path");
        }
        if authority.is_none() {
            return Err("CONNECT without :authority");
        }
    } else {
        let scheme_value = value(scheme).ok_or("missing :scheme")?;
        let path_value = value(path).ok_or("missing :path")?;
        if path_value.is_empty() {
            return Err("empty :path");
        }
        if path_value == b"*" {
            if method_value != b"OPTIONS" {
                return Err(":path \"*\" on a method other than OPTIONS");
            }
        } else if matches!(scheme_value, b"http" | b"https") && path_value[0] != b'/' {
            return Err(":path not an absolute path");
        }
    }
    // §8.3.1: a Host that names another entity than :authority.
    if let (Some(a), Some(h)) = (value(authority), value(host)) {
        if !a.eq_ignore_ascii_case(h) {
            return Err("host differs from :authority");
        }
    }
    Ok(Head {
        headers: join_cookies(list),
        content_length,
    })
}

/// Digits only (a list or a sign is malformed), without overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// §8.2.3: cookie crumbs joined with "; ", in the place of the first one.
fn join_cookies(list: HeaderList) -> HeaderList {
    if list.iter().filter(|(n, _)| n == b"cookie").count() < 2 {
        return list;
    }
    let mut out = HeaderList::with_capacity(list.len());
    let mut at = None;
    for (name, value) in list {
        if name != b"cookie" {
            out.push((name, value));
            continue;
        }
        match at {
            None => {
                at = Some(out.len());
                out.push((name, value));
            }
            Some(i) => {
                let joined: &mut Vec<u8> = &mut out[i].1;
                joined.extend_from_slice(b"; ");
                joined.extend_from_slice(&value);
            }
        }
    }
    out
}

/// Checks trailers (§8.1): no pseudo-header fields, and the rules of regular fields.
pub(super) fn validate_trailers(list: &HeaderList) -> Result<(), &'static str> {
    for (name, value) in list {
        check_value(value)?;
        if name.first() == Some(&b':') {
            return Err("pseudo-header field in trailers");
        }
        check_regular(name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(fields: &[(&str, &str)]) -> HeaderList {
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    const GET: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/"),
        (":authority", "example.com"),
    ];

    fn with(extra: &[(&str, &str)]) -> Result<Head, &'static str> {
        let mut fields = GET.to_vec();
        fields.extend_from_slice(extra);
        validate_request(list(&fields))
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn s8_2_field_names_and_values() {
        assert!(with(&[("accept", "*/*"), ("x-a", "b c")]).is_ok());
        for bad in [
            ("Accept", "x"),
            ("acc ept", "x"),
            ("x:y", "x"),
            ("", "x"),
            ("caf\u{e9}", "x"),
            ("x", "a\0b"),
            ("x", "a\rb"),
            ("x", "a\nb"),
            ("x", " a"),
            ("x", "a\t"),
        ] {
            assert!(with(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn s8_2_3_cookies_are_joined_and_content_length_parsed() {
        let head = with(&[("cookie", "a=1"), ("x", "y"), ("cookie", "b=2")]).unwrap();
        let cookies: Vec<_> = head
            .headers
            .iter()
            .filter(|(n, _)| n == b"cookie")
            .collect();
        assert_eq!(cookies.len(), 1);
        assert_eq!(cookies[0].1, b"a=1; b=2");
        assert_eq!(head.headers[4].0, b"cookie");
        assert_eq!(head.headers.len(), 6);
        let head = with(&[("content-length", "12"), ("content-length", "12")]).unwrap();
        assert_eq!(head.content_length, Some(12));
        for bad in ["", "+1", "1,1", "99999999999999999999999", " 1"] {
            assert!(with(&[("content-length", bad)]).is_err(), "{bad:?}");
        }
        assert!(with(&[("content-length", "1"), ("content-length", "2")]).is_err());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn s8_3_1_request_pseudo_headers() {
        let ok = |f: &[(&str, &str)]| validate_request(list(f)).is_ok();
        assert!(ok(&GET));
        assert!(ok(&GET[..3]), ":authority may be absent");
        assert!(ok(&[
            (":method", "OPTIONS"),
            (":scheme", "http"),
            (":path", "*")
        ]));
        assert!(ok(&[(":method", "CONNECT"), (":authority", "a:443")]));
        assert!(!ok(&[
            (":method", "CONNECT"),
            (":authority", "a"),
            (":path", "/")
        ]));
        assert!(!ok(&[(":method", "CONNECT")]));
        assert!(!ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "*")
        ]));
        assert!(!ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "")
        ]));
        assert!(!ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "x")
        ]));
        assert!(!ok(&[
            (":method", "G T"),
            (":scheme", "http"),
            (":path", "/")
        ]));
        assert!(!ok(&GET[1..]), "no :method");
        assert!(!ok(&[GET[0], GET[2]]), "no :scheme");
        assert!(!ok(&[GET[0], GET[1]]), "no :path");
        for (i, dup) in GET.iter().enumerate() {
            let mut f = GET.to_vec();
            f.push(*dup);
            assert!(!ok(&f), "duplicate {i}");
        }
        assert!(with(&[(":status", "200")]).is_err());
        assert!(with(&[(":protocol", "websocket")]).is_err());
        assert!(with(&[("host", "example.com")]).is_ok());
        assert!(with(&[("host", "other.example")]).is_err());
        // Several hosts pass on to the core (which answers 400, as over HTTP/1.1), but
        // each must name the :authority.
        assert!(with(&[("host", "example.com"), ("host", "example.com")]).is_ok());
        assert!(with(&[("host", "example.com"), ("host", "other.example")]).is_err());
        // A pseudo-header after a regular field.
        let mut late = GET[..3].to_vec();
        late.push(("accept", "*/*"));
        late.push(GET[3]);
        assert!(!ok(&late));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn s8_2_2_connection_specific_fields_and_trailers() {
        for name in CONNECTION_SPECIFIC {
            let name = std::str::from_utf8(name).unwrap();
            assert!(with(&[(name, "x")]).is_err(), "{name}");
        }
        assert!(with(&[("te", "trailers")]).is_ok());
        assert!(with(&[("te", "gzip")]).is_err());
        assert!(with(&[("te", "trailers, gzip")]).is_err());
        assert!(validate_trailers(&list(&[("x-sum", "1")])).is_ok());
        assert!(validate_trailers(&list(&[(":path", "/")])).is_err());
        assert!(validate_trailers(&list(&[("X-Sum", "1")])).is_err());
        assert!(validate_trailers(&list(&[("connection", "close")])).is_err());
    }
}

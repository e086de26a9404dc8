//! The core's answer read back for a HEADERS frame: its status and fields (the
//! connection's own, `Connection`, `Keep-Alive`, `Transfer-Encoding`, are left out by
//! the HTTP/2 connection itself, RFC 9113 §8.2.2), and how much body follows: none (a
//! `HEAD`, `204`, `304`, `Content-Length: 0`), a length, or chunks (de-chunked into
//! DATA).

/// A response head, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub status: u16,
    pub fields: Vec<(String, String)>,
    pub body: Framing,
}

/// What follows the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    None,
    Length(u64),
    /// `Transfer-Encoding: chunked`: until the last chunk (or the session's last piece).
    Chunked,
    /// Neither (never written by the core): until the core's `Close`.
    UntilClose,
}

/// The most fields an answer of the core carries (`--header` adds some).
const MAX_FIELDS: usize = 256;

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete, else the
/// head and its length in bytes.
pub(super) fn parse(buf: &[u8], head_only: bool) -> Result<Option<(Head, usize)>, &'static str> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("the core's answer head does not parse"),
    };
    let status = resp.code.ok_or("no status")?;
    let mut length = None;
    let mut chunked = false;
    let mut fields = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).into_owned();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<u64>().ok();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
        fields.push((h.name.to_string(), value));
    }
    let body = if head_only || status == 204 || status == 304 || status < 200 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some((
        Head {
            status,
            fields,
            body,
        },
        len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn heads_and_their_bodies() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=30\r\n\r\nhello";
        let (h, n) = parse(a, false).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.body, Framing::Length(5));
        assert_eq!(&a[n..], b"hello");
        assert_eq!(parse(a, true).unwrap().unwrap().0.body, Framing::None);
        assert_eq!(parse(&a[..20], false), Ok(None));
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(c, false).unwrap().unwrap().0.body, Framing::Chunked);
        let z = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(parse(z, false).unwrap().unwrap().0.body, Framing::None);
        assert!(parse(b"garbage\r\n\r\n", false).is_err());
    }
}

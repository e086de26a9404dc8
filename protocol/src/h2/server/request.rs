//! A stream's request rebuilt as the HTTP/1.1 head the core reads: the request line
//! from `:method` and `:path` (`:authority` for CONNECT), `Host` from `:authority` (or
//! the `host` field), the regular fields as they came, and the body's framing: the
//! client's `content-length`, else `Transfer-Encoding: chunked` (the DATA frames are
//! then framed as chunks on their way in). `te` is left out (hop-by-hop; the only value
//! HTTP/2 allows, `trailers`, means nothing to the core). The connection already
//! checked the list (RFC 9113 §8: pseudo-header fields, names, values, no
//! connection-specific fields), so what is rebuilt is one well-formed head; whatever
//! the core's stricter rules refuse (a space in the path, a byte a header may not hold)
//! is refused as it would be over HTTP/1.1.

use crate::h2::hpack::HeaderList;

/// A request rebuilt for the core.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Rebuilt {
    /// The HTTP/1.1 head, blank line included.
    pub head: Vec<u8>,
    /// `HEAD`: the answer has no body, whatever its `Content-Length` says.
    pub head_only: bool,
    /// The body is framed as chunks (no `content-length`, and a body follows).
    pub chunked: bool,
}

/// Rebuilds the head of a request whose header list passed the connection's checks.
/// `end_stream`: no body follows.
pub(super) fn rebuild(headers: &HeaderList, end_stream: bool) -> Rebuilt {
    let pseudo = |name: &[u8]| {
        headers
            .iter()
            .take_while(|(n, _)| n.first() == Some(&b':'))
            .find(|(n, _)| n == name)
            .map(|(_, v)| &v[..])
    };
    let method = pseudo(b":method").unwrap_or(b"GET");
    let authority = pseudo(b":authority");
    let target = match pseudo(b":path") {
        Some(path) => path,
        // CONNECT (§8.5) names only the authority.
        None => authority.unwrap_or(b"/"),
    };
    let regular = headers.iter().filter(|(n, _)| n.first() != Some(&b':'));
    let size: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut head = Vec::with_capacity(size + 64);
    head.extend_from_slice(method);
    head.push(b' ');
    head.extend_from_slice(target);
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        field(&mut head, b"host", a);
    }
    let mut length = false;
    // Several `host` fields go on to the core, which answers 400 as over HTTP/1.1.
    let one_host = headers.iter().filter(|(n, _)| n == b"host").count() < 2;
    for (name, value) in regular {
        match &name[..] {
            // The same as :authority (the connection checked), or the only Host.
            b"host" if authority.is_some() && one_host => continue,
            b"te" => continue,
            b"content-length" => length = true,
            _ => {}
        }
        field(&mut head, name, value);
    }
    let chunked = !end_stream && !length;
    if chunked {
        field(&mut head, b"transfer-encoding", b"chunked");
    }
    head.extend_from_slice(b"\r\n");
    Rebuilt {
        head,
        head_only: method == b"HEAD",
        chunked,
    }
}

fn field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// One DATA frame's bytes framed as a chunk (and the last chunk at the end).
pub(super) fn chunk(data: &[u8], end_stream: bool, out: &mut Vec<u8>) {
    if !data.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    if end_stream {
        out.extend_from_slice(b"0\r\n\r\n");
    }
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

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_get_becomes_a_request_line_and_host() {
        let r = rebuild(
            &list(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/a?b=1"),
                (":authority", "localhost:8080"),
                ("accept-encoding", "gzip"),
                ("te", "trailers"),
            ]),
            true,
        );
        assert_eq!(
            String::from_utf8(r.head).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nhost: localhost:8080\r\naccept-encoding: gzip\r\n\r\n"
        );
        assert!(!r.head_only && !r.chunked);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_body_keeps_its_length_or_is_chunked() {
        let post = |extra: &[(&str, &str)]| {
            let mut l = list(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/upload"),
                (":authority", "h"),
            ]);
            l.extend(list(extra));
            rebuild(&l, false)
        };
        let r = post(&[("content-length", "12")]);
        assert!(!r.chunked);
        assert!(r.head.ends_with(b"content-length: 12\r\n\r\n"));
        let r = post(&[]);
        assert!(r.chunked);
        assert!(r.head.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
        let mut out = Vec::new();
        chunk(b"hello", false, &mut out);
        chunk(b"", true, &mut out);
        assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn host_without_authority_and_head() {
        let r = rebuild(
            &list(&[
                (":method", "HEAD"),
                (":scheme", "http"),
                (":path", "/"),
                ("host", "h:1"),
            ]),
            true,
        );
        assert_eq!(r.head, b"HEAD / HTTP/1.1\r\nhost: h:1\r\n\r\n");
        assert!(r.head_only);
        // No Host at all: the core answers 400 as for HTTP/1.1.
        let r = rebuild(
            &list(&[(":method", "GET"), (":scheme", "http"), (":path", "*")]),
            true,
        );
        assert_eq!(r.head, b"GET * HTTP/1.1\r\n\r\n");
        // Several hosts all reach the core (beside :authority's), which answers 400.
        let r = rebuild(
            &list(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "h:1"),
                (":path", "/"),
                ("host", "h:1"),
                ("host", "h:1"),
            ]),
            true,
        );
        assert_eq!(
            r.head,
            b"GET / HTTP/1.1\r\nhost: h:1\r\nhost: h:1\r\nhost: h:1\r\n\r\n"
        );
    }
}

//! Tests of `multipart`: real bodies from Chromium and curl, every split, the limits and
//! the errors.

use super::*;

/// An event with owned data, consecutive `Data` merged, for comparing runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Start(String, Option<String>, Option<String>),
    Data(Vec<u8>),
    PartEnd,
    End,
}

fn push(evs: &mut Vec<Ev>, e: Event<'_>) {
    match e {
        Event::PartStart {
            name,
            filename,
            content_type,
        } => evs.push(Ev::Start(name, filename, content_type)),
        Event::Data(d) => {
            assert!(!d.is_empty(), "no empty Data events");
            match evs.last_mut() {
                Some(Ev::Data(prev)) => prev.extend_from_slice(d),
                _ => evs.push(Ev::Data(d.to_vec())),
            }
        }
        Event::PartEnd => evs.push(Ev::PartEnd),
        Event::End => evs.push(Ev::End),
    }
}

/// Parses `body` fed in `pieces`, then finishes; the events and the first error.
fn run<'a>(
    boundary: &[u8],
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Ev>, Result<(), MultipartError>) {
    let mut p = Parser::new(boundary);
    let mut evs = Vec::new();
    for piece in pieces {
        if let Err(e) = p.feed(piece, &mut |e| push(&mut evs, e)) {
            return (evs, Err(e));
        }
        assert!(p.matched <= p.pattern.len() && p.head.len() <= MAX_PART_HEAD);
    }
    let r = p.finish();
    (evs, r)
}

/// The same result whether `body` comes whole, cut once anywhere, or byte by byte.
fn check_splits(boundary: &[u8], body: &[u8]) -> (Vec<Ev>, Result<(), MultipartError>) {
    let whole = run(boundary, [body]);
    for cut in 0..=body.len() {
        let (a, b) = body.split_at(cut);
        assert_eq!(run(boundary, [a, b]), whole, "cut at {cut}");
    }
    assert_eq!(run(boundary, body.chunks(1)), whole, "byte by byte");
    assert_eq!(run(boundary, body.chunks(7)), whole, "by 7");
    whole
}

fn start(name: &str, filename: Option<&str>, ct: Option<&str>) -> Ev {
    Ev::Start(name.into(), filename.map(Into::into), ct.map(Into::into))
}

const CHROMIUM_CT: &[u8] = b"multipart/form-data; boundary=----WebKitFormBoundaryePkpFF7tjBAqx29L";
const CHROMIUM: &[u8] = b"------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
Content-Disposition: form-data; name=\"files\"; filename=\"report.pdf\"\r\n\
Content-Type: application/pdf\r\n\
\r\n\
%PDF-1.4\r\n\r\n--\r\n------WebKitFormBoundaryePkpFF7\x00\xff\r\n\
------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
Content-Disposition: form-data; name=\"files\"; filename=\"\xc3\xbcn\xc3\xafc\xc3\xb6d\xc3\xa9 %22q%22.txt\"\r\n\
Content-Type: text/plain\r\n\
\r\n\
\r\n\
------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
Content-Disposition: form-data; name=\"note\"\r\n\
\r\n\
hello\r\n\
------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
\r\n\
------WebKitFormBoundaryePkpFF7tjBAqx29L--\r\n";

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn chromium_form() {
    let boundary = boundary_of(CHROMIUM_CT).unwrap();
    assert_eq!(boundary, b"----WebKitFormBoundaryePkpFF7tjBAqx29L");
    let (evs, r) = check_splits(&boundary, CHROMIUM);
    assert_eq!(r, Ok(()));
    assert_eq!(
        evs,
        vec![
            start("files", Some("report.pdf"), Some("application/pdf")),
            Ev::Data(b"%PDF-1.4\r\n\r\n--\r\n------WebKitFormBoundaryePkpFF7\x00\xff".to_vec()),
            Ev::PartEnd,
            start("files", Some("ünïcödé %22q%22.txt"), Some("text/plain")),
            Ev::PartEnd, // an empty file: no Data at all
            start("note", None, None),
            Ev::Data(b"hello".to_vec()),
            Ev::PartEnd,
            start("empty", Some(""), Some("application/octet-stream")),
            Ev::PartEnd,
            Ev::End,
        ]
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn curl_form() {
    // `curl -F file=@a.txt -F 'x=1;type=text/x' -F "p=@C:\\dir\\b.bin;filename*=..."`.
    let ct = b"multipart/form-data; boundary=------------------------d74496d66958873e";
    let body = b"--------------------------d74496d66958873e\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
Content-Type: text/plain\r\n\
\r\n\
hello\n\r\n\
--------------------------d74496d66958873e\r\n\
Content-Disposition: form-data; name=\"x\"\r\n\
Content-Type: text/x\r\n\
\r\n\
1\r\n\
--------------------------d74496d66958873e\r\n\
content-disposition: FORM-DATA; NAME=p; filename=\"C:\\dir\\b \\\"q\\\".bin\"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\
\r\n\
\x01\x02\r\n\
--------------------------d74496d66958873e--\r\n";
    let boundary = boundary_of(ct).unwrap();
    let (evs, r) = check_splits(&boundary, body);
    assert_eq!(r, Ok(()));
    assert_eq!(
        evs,
        vec![
            start("file", Some("a.txt"), Some("text/plain")),
            Ev::Data(b"hello\n".to_vec()),
            Ev::PartEnd,
            start("x", None, Some("text/x")),
            Ev::Data(b"1".to_vec()),
            Ev::PartEnd,
            start("p", Some("€ rates.txt"), None),
            Ev::Data(b"\x01\x02".to_vec()),
            Ev::PartEnd,
            Ev::End,
        ]
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn content_disposition_values() {
    let table: &[(&str, Option<&str>, Option<&str>)] = &[
        (
            "form-data; name=\"a\"; filename=\"b.txt\"",
            Some("a"),
            Some("b.txt"),
        ),
        ("form-data;name=a;filename=b.txt", Some("a"), Some("b.txt")),
        (
            "form-data ; name = \"a\" ; filename = b.txt ",
            Some("a"),
            Some("b.txt"),
        ),
        (
            "form-data; filename=\"x;y=z.txt\"; name=\"a\"",
            Some("a"),
            Some("x;y=z.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"C:\\\\x\\\\y.txt\"",
            Some("a"),
            Some("C:\\x\\y.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"C:\\x\\y.txt\"",
            Some("a"),
            Some("C:\\x\\y.txt"),
        ),
        (
            "form-data; name=\"a\"; filename*=utf-8''%C3%A9t%C3%A9.txt; filename=\"ete.txt\"",
            Some("a"),
            Some("été.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"ete.txt\"; filename*=UTF-8'fr'%C3%A9t%C3%A9.txt",
            Some("a"),
            Some("été.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"e.txt\"; filename*=iso-8859-1'en'%E9t%E9.txt",
            Some("a"),
            Some("été.txt"),
        ),
        // A bad `filename*` (bad escape, not UTF-8, unknown charset) falls back.
        (
            "form-data; name=\"a\"; filename=\"f.txt\"; filename*=UTF-8''%ZZ",
            Some("a"),
            Some("f.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"f.txt\"; filename*=UTF-8''%FF",
            Some("a"),
            Some("f.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"f.txt\"; filename*=koi8-r''abc",
            Some("a"),
            Some("f.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"f.txt\"; filename*=noquotes",
            Some("a"),
            Some("f.txt"),
        ),
        (
            "form-data; name=\"a\"; filename=\"unterminated",
            Some("a"),
            Some("unterminated"),
        ),
        ("form-data; name=\"a\"; filename", Some("a"), None),
        ("form-data; name=\"a\"; name=\"b\"", Some("a"), None),
        ("form-data", None, None),
        ("", None, None),
        (";;;", None, None),
    ];
    for &(value, name, filename) in table {
        let (n, f) = disposition(value.as_bytes());
        assert_eq!((n.as_deref(), f.as_deref()), (name, filename), "{value}");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn boundaries() {
    let table: &[(&str, Option<&str>)] = &[
        ("multipart/form-data; boundary=abc", Some("abc")),
        ("Multipart/Form-Data;BOUNDARY=abc", Some("abc")),
        (
            "multipart/form-data; charset=utf-8; boundary=\"a b:c\"",
            Some("a b:c"),
        ),
        (
            "multipart/form-data; boundary=----geckoformboundary6f1dc3e2",
            Some("----geckoformboundary6f1dc3e2"),
        ),
        ("multipart/form-data; boundary=\"\"", None),
        ("multipart/form-data; boundary=", None),
        ("multipart/form-data; boundary=\"trailing \"", None),
        ("multipart/form-data", None),
        ("multipart/mixed; boundary=abc", None),
        ("application/json; boundary=abc", None),
        ("", None),
    ];
    for &(ct, want) in table {
        assert_eq!(
            boundary_of(ct.as_bytes()).as_deref(),
            want.map(str::as_bytes),
            "{ct}"
        );
    }
    let long = format!("multipart/form-data; boundary={}", "x".repeat(MAX_BOUNDARY));
    assert!(boundary_of(long.as_bytes()).is_some());
    let too_long = format!(
        "multipart/form-data; boundary={}",
        "x".repeat(MAX_BOUNDARY + 1)
    );
    assert_eq!(boundary_of(too_long.as_bytes()), None);
    assert_eq!(boundary_of(b"multipart/form-data; boundary=a\x01b"), None);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn near_misses_are_data() {
    // Data full of delimiter prefixes, self-overlapping ones included (boundary `aab`).
    let body = b"preamble --aab ignored\r\n--aab\r\n\r\n\
\r\n-\r\n--\r\n--a\r\n--aa\r\n\r\n--aa\r\r\n--a\r\n--aa\r\n--aaab--aab\r\n\
--aab \t \r\nX-Other: 1\r\n\r\n\r\n--aab--\r\nepilogue \r\n--aab\r\nnot parsed";
    let (evs, r) = check_splits(b"aab", body);
    assert_eq!(r, Ok(()));
    assert_eq!(
        evs,
        vec![
            start("", None, None),
            Ev::Data(
                b"\r\n-\r\n--\r\n--a\r\n--aa\r\n\r\n--aa\r\r\n--a\r\n--aa\r\n--aaab--aab".to_vec()
            ),
            Ev::PartEnd,
            start("", None, None),
            Ev::PartEnd,
            Ev::End,
        ]
    );
    // Every byte value, in a part.
    let mut body = b"--z\r\n\r\n".to_vec();
    let data: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\r\n--z--");
    let (evs, r) = check_splits(b"z", &body);
    assert_eq!(
        (evs, r),
        (
            vec![start("", None, None), Ev::Data(data), Ev::PartEnd, Ev::End],
            Ok(())
        )
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn errors() {
    use MultipartError::*;
    let cases: &[(&[u8], MultipartError)] = &[
        (b"", MissingFinalBoundary),
        (b"no boundary here", MissingFinalBoundary),
        (b"--b\r\n\r\ndata", MissingFinalBoundary),
        (b"--b\r\n\r\ndata\r\n--b", MissingFinalBoundary),
        (b"--b\r\n\r\ndata\r\n--b-", MissingFinalBoundary),
        (b"--b\r\nContent-Type: x\r\n", MissingFinalBoundary),
        (
            b"--bX\r\n\r\n\r\n--b--",
            Malformed("a boundary followed by other text"),
        ),
        (
            b"--b\r\n\r\nx\r\n--b-x",
            Malformed("a single '-' after a boundary"),
        ),
        (b"--b\rx", Malformed("CR without LF after a boundary")),
        (
            b"--b\r\nno colon\r\n\r\n\r\n--b--",
            Malformed("part header without a colon"),
        ),
        (
            b"--b\r\nA: 1\r\n folded\r\n\r\n\r\n--b--",
            Malformed("folded part header"),
        ),
        (
            b"--b\r\nA: 1\nB: 2\r\n\r\n\r\n--b--",
            Malformed("a bare CR or LF in part headers"),
        ),
        (
            b"--b\r\nA b: 1\r\n\r\n\r\n--b--",
            Malformed("bad part header name"),
        ),
        (
            b"--b\r\n: 1\r\n\r\n\r\n--b--",
            Malformed("bad part header name"),
        ),
    ];
    for (body, want) in cases {
        let (_, r) = check_splits(b"b", body);
        assert_eq!(r, Err(want.clone()), "{:?}", String::from_utf8_lossy(body));
    }
    // Headers: 8 KiB is fine, one byte more is not; a stream of header bytes with no
    // line end is cut off at the limit, whatever the size of the piece.
    let ok_head = |len: usize| {
        let mut body = b"--b\r\nX: ".to_vec();
        body.resize(5 + len - 4, b'v');
        body.extend_from_slice(b"\r\n\r\n\r\n--b--");
        body
    };
    assert_eq!(run(b"b", [&ok_head(MAX_PART_HEAD)[..]]).1, Ok(()));
    assert_eq!(
        run(b"b", [&ok_head(MAX_PART_HEAD + 1)[..]]).1,
        Err(HeadersTooLarge)
    );
    let mut endless = b"--b\r\nX: ".to_vec();
    endless.resize(1 << 20, b'v');
    let mut p = Parser::new(b"b");
    assert_eq!(p.feed(&endless, &mut |_| ()), Err(HeadersTooLarge));
    assert!(p.head.len() <= MAX_PART_HEAD + 1);
    // A failed parser stays failed.
    assert_eq!(
        p.feed(b"\r\n\r\n\r\n--b--", &mut |_| ()),
        Err(HeadersTooLarge)
    );
    assert_eq!(p.finish(), Err(HeadersTooLarge));
    let mut p = Parser::new(b"b");
    assert_eq!(p.finish(), Err(MissingFinalBoundary));
    assert_eq!(p.feed(b"--b--", &mut |_| ()), Err(MissingFinalBoundary));
    assert!(MultipartError::HeadersTooLarge.to_string().contains("8192"));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn large_parts_stream_in_bounded_memory() {
    let boundary = b"----WebKitFormBoundaryePkpFF7tjBAqx29L";
    let mut p = Parser::new(boundary);
    let mut total = 0usize;
    let mut events = 0usize;
    let mut ended = false;
    let mut sink = |e: Event<'_>| {
        events += 1;
        match e {
            Event::Data(d) => total += d.len(),
            Event::End => ended = true,
            _ => {}
        }
    };
    let head: &[u8] = b"------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
        Content-Disposition: form-data; name=f; filename=big\r\n\r\n";
    p.feed(head, &mut sink).unwrap();
    // 16 MiB of data whose pieces end in a delimiter prefix each time.
    let mut chunk = vec![b'x'; 65_536 - 20];
    chunk.extend_from_slice(b"\r\n------WebKitForm");
    for _ in 0..256 {
        p.feed(&chunk, &mut sink).unwrap();
        assert!(p.matched <= p.pattern.len() && p.head.capacity() <= MAX_PART_HEAD + 1);
    }
    p.feed(b"BoundaryePkpFF7tjBAqx29L--", &mut sink).unwrap();
    p.finish().unwrap();
    assert!(ended);
    assert_eq!(total, 256 * chunk.len() - "\r\n------WebKitForm".len());
    assert!(events < 256 * 3 + 8, "{events}");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn pseudo_random_input_never_panics() {
    let mut seed = 0xdead_beef_cafe_f00du64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as u32
    };
    let words: &[&[u8]] = &[
        b"--ab",
        b"\r\n",
        b"--",
        b"-",
        b"\r",
        b"\n",
        b"Content-Disposition: form-data; name=\"x\"; filename*=UTF-8''%E2%8",
        b"Content-Type: a",
        b": ",
        b" ",
        b"x",
        b"\xff",
        b"\"",
        b";",
    ];
    for _ in 0..2_000 {
        let mut body = Vec::new();
        for _ in 0..next() % 40 {
            body.extend_from_slice(words[next() as usize % words.len()]);
        }
        let cut = next() as usize % (body.len() + 1);
        let (a, b) = body.split_at(cut);
        let whole = run(b"ab", [&body[..]]);
        assert_eq!(run(b"ab", [a, b]), whole);
        let _ = boundary_of(&body);
        let _ = disposition(&body);
    }
}

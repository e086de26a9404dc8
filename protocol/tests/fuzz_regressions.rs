//! Inputs found by the fuzz targets in `fuzz/` (or while writing their invariants) that
//! once broke the core, each kept as a test with the answer it must get. Run natively and
//! under wasm like the other protocol tests.

use protocol::sim::{Driver, Record, Start, Tables};
use protocol::{Action, Config, FileMeta, Input};

/// The request-head limit (SPEC "Security").
const MAX_HEAD: usize = 8 * 1024;

const HOST: &str = "127.0.0.1:8080";

fn config() -> Config {
    let mut c = Config::new("127.0.0.1", 8080, &[]);
    c.max_requests = 5;
    c
}

/// The shared driver as the fuzz targets start it, keeping every action, with time
/// standing still (at 1 ms) and every answer reported written at once; no file exists
/// unless added to `d.world.files`.
fn driver(config: Config) -> Driver<Tables> {
    let start = Start {
        unix_secs: 1_700_000_000,
        seed: [7; 16],
    };
    let mut d = Driver::new(config, Tables::default(), start);
    d.record = Record::Actions;
    (d.open_ms, d.upload_ms, d.write_ms) = (0, 0, 0);
    d.advance_ms(1);
    d
}

/// Feeds `pieces` to a fresh connection; returns every action.
fn feed_with(config: Config, pieces: &[&[u8]]) -> Vec<Action> {
    let mut d = driver(config);
    for p in pieces {
        d.send(p);
    }
    d.log
}

/// Feeds `pieces` to a fresh connection configured as the fuzz targets do.
fn feed(pieces: &[&[u8]]) -> Vec<Action> {
    feed_with(config(), pieces)
}

/// The head of a `Send` as text, and the status code.
fn head_of(a: &Action) -> (u16, String) {
    let Action::Send(bytes) = a else {
        panic!("not a Send: {a:?}");
    };
    let text = String::from_utf8_lossy(bytes).to_string();
    let status = text[9..12].parse().expect("status code");
    (status, text)
}

/// connection target: a file whose mtime is past year 9999 (any u64 a file system can
/// report) made httpdate panic while formatting `Last-Modified`. Now a date later than
/// `Date` is sent as `Date` (RFC 9110 §8.8.2.1), and dates past year 9999 never reach
/// the formatter.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn mtime_past_year_9999_does_not_panic() {
    for mtime_secs in [253_402_300_800, u64::MAX / 2, u64::MAX] {
        let mut d = driver(config());
        let meta = FileMeta {
            len: 5,
            mtime_secs,
            mtime_nanos: 0,
            is_dir: false,
        };
        d.world.files.insert("index.html".into(), Ok(meta));
        d.send(format!("GET /index.html HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes());
        let out = &d.log;
        assert!(matches!(&out[0], Action::OpenFile(p) if p.as_str() == "index.html"));
        let (status, head) = head_of(&out[1]);
        assert_eq!(status, 200);
        assert!(
            head.contains("\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"),
            "{head}"
        );
        assert_eq!(out[2], Action::SendFile { offset: 0, len: 5 });
    }
}

/// parse target invariant "Partial only within the head limit": the empty lines the
/// parser skips before a request line (RFC 9112 §2.2) did not count towards the 8 KiB
/// limit, so an endless run of CRLFs stayed Partial and was buffered without bound.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn endless_empty_lines_hit_the_head_limit() {
    let first = |input: &[u8]| head_of(&feed(&[input])[0]).0;
    assert_eq!(first(&b"\r\n".repeat(MAX_HEAD / 2 + 1)), 431);

    // Empty lines plus a head that would fit alone: over the limit together.
    let mut input = b"\r\n".repeat(MAX_HEAD / 2 - 10);
    input.extend_from_slice(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes());
    assert_eq!(first(&input), 431);

    // A few empty lines are still ignored: the request is read (its file is missing).
    let head = format!("\r\n\r\nGET /nope.html HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let out = feed(&[head.as_bytes()]);
    assert!(matches!(&out[0], Action::OpenFile(p) if p.as_str() == "nope.html"));
    // (The root's 404.html is looked for, as the body of the 404.)
    assert!(matches!(&out[1], Action::OpenFile(p) if p.as_str() == "404.html"));
    assert_eq!(head_of(&out[2]).0, 404);

    // Through a connection: 431 and close, in pieces as a client would send them.
    let pieces = vec![b"\r\n".repeat(256); MAX_HEAD / 512 + 1];
    let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let out = feed(&pieces);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(head_of(&out[0]).0, 431);
    assert_eq!(out[1], Action::Close);
}

/// split target: 33+ bytes of non-token characters with no space were "method token
/// too long" when they arrived together, but "malformed request head" when the first 32
/// came alone (httparse saw them first). The answer must not depend on segmentation:
/// only a run of token characters is a method that is too long.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn method_length_refusal_does_not_depend_on_segmentation() {
    let mut input = vec![0xa6u8; 51];
    input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    let whole = feed(&[&input]);
    let split = feed(&[&input[..32], &input[32..]]);
    assert_eq!(whole, split);
    let (status, text) = head_of(&whole[0]);
    assert_eq!(status, 400);
    assert!(text.contains("malformed request head"), "{text}");

    // A long run of token characters is still "too long", however it arrives.
    let long = [b"A".repeat(40).as_slice(), b" / HTTP/1.1\r\n\r\n"].concat();
    let whole = feed(&[&long]);
    let split = feed(&[&long[..20], &long[20..33], &long[33..]]);
    assert_eq!(whole, split);
    assert!(head_of(&whole[0]).1.contains("method token too long"));
}

/// split target: `GET /a%00.html HTTPGET / HTTP/1.1` got 505 when the line arrived
/// whole (the refusal looked at the line's last word) but 400 when only its first 25
/// bytes had arrived. The version is the third field, judged only on the bytes up to
/// where httparse stopped.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn version_refusal_looks_at_the_third_field() {
    let input = b"GET /a%00.html HTTPGET / HTTP/1.1\r\nHost: 127.0.0.1.TRACE \r\n";
    let whole = feed(&[input]);
    let split = feed(&[&input[..25], &input[25..31], &input[31..]]);
    assert_eq!(whole, split);
    assert_eq!(head_of(&whole[0]).0, 400);

    // A well-formed version we do not speak is 505; anything not `HTTP/DIGIT.DIGIT` is
    // 400 (issue 11: `HTTP/01.1` was 505). The parser waits for the whole field before
    // it decides, so the answer is the same however the line arrives.
    for (line, status) in [
        (&b"GET / HTTP/3.x\r\n\r\n"[..], 400),
        (b"GET / HTTP/1.2\r\n\r\n", 505),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/01.1\r\n\r\n", 400),
        (b"GET / HTTP/1.10\r\n\r\n", 400),
        (b"GET / HTTP/0.9\r\n\r\n", 505),
        (b"GET / HTTP/1x\r\n\r\n", 400),
        (b"GET / HTTPS/1.1\r\n\r\n", 400),
    ] {
        let whole = feed(&[line]);
        assert_eq!(
            head_of(&whole[0]).0,
            status,
            "{:?}",
            String::from_utf8_lossy(line)
        );
        for cut in 1..line.len() {
            assert_eq!(feed(&[&line[..cut], &line[cut..]]), whole, "cut at {cut}");
        }
    }
}

/// split target: a head over the 8 KiB limit with a bad byte past the limit got 400
/// (httparse reached the bad byte) when it arrived whole, but 431 when it arrived in
/// pieces (Partial past the limit). The parser no longer looks past the limit.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn oversized_head_is_431_however_it_arrives() {
    let mut input = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Long: ").into_bytes();
    input.extend(std::iter::repeat_n(b'a', MAX_HEAD + 100));
    input.extend_from_slice(b"\x01\r\n\r\n");
    let whole = feed(&[&input]);
    assert_eq!(head_of(&whole[0]).0, 431);
    for cut in [100, MAX_HEAD - 1, MAX_HEAD, MAX_HEAD + 1, MAX_HEAD + 50] {
        assert_eq!(feed(&[&input[..cut], &input[cut..]]), whole, "cut at {cut}");
    }
    // A bad byte inside the limit is still a 400, found as soon as it arrives.
    let mut early = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Bad: \x01").into_bytes();
    early.extend(std::iter::repeat_n(b'a', MAX_HEAD + 100));
    assert_eq!(head_of(&feed(&[&early])[0]).0, 400);
    assert_eq!(head_of(&feed(&[&early[..60]])[0]).0, 400);
}

/// split target: a chunked body that is read only to be discarded (the request is
/// refused, say 405) was checked against `max_body` per `receive` call, not in total:
/// sent whole it got 413, sent in small pieces it was read without limit.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn discarded_chunked_body_counts_against_max_body_across_reads() {
    let mut cfg = Config::new("127.0.0.1", 8080, &[]);
    cfg.max_body = 16;
    let head = format!("T /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n");
    let body = b"50\r\n"
        .iter()
        .chain(&[b'x'; 80])
        .copied()
        .collect::<Vec<u8>>();
    let run = |pieces: &[&[u8]]| feed_with(cfg.clone(), pieces);
    let whole = run(&[head.as_bytes(), &body]);
    assert_eq!(head_of(&whole[0]).0, 413);
    assert_eq!(whole[1], Action::Close);
    let pieces: Vec<&[u8]> = body.chunks(5).collect();
    let split = run(&[&[head.as_bytes()], pieces.as_slice()].concat());
    assert_eq!(split, whole);
}

/// split target (issue 11's fuzz port): `\rHEAD ` got a 400 without a page when it
/// arrived whole but with one when ` ` came later: the "HEAD gets no body" check skipped
/// any CR or LF, the parser only CRLF pairs. Both now skip CRLF pairs only.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn head_refused_unparsed_does_not_depend_on_segmentation() {
    let input = b"\rHEAD ";
    let whole = feed(&[input]);
    assert_eq!(whole, feed(&[&input[..5], &input[5..]]));
    let (status, text) = head_of(&whole[0]);
    assert_eq!(status, 400);
    assert!(
        text.contains("<h1>"),
        "not a HEAD: the page is sent: {text}"
    );
    // After empty lines (CRLF pairs), a HEAD still gets the head alone.
    let head =
        feed(&[b"\r\n\r\nHEAD / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: x\r\n\r\n"]);
    let (status, text) = head_of(&head[0]);
    assert_eq!(status, 400);
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

/// connection target: `Received("\r\n")` then `Drain` left the connection open until
/// the idle timeout: empty lines are idle time, so shutdown closes it at once.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn drain_after_empty_lines_closes() {
    let mut d = driver(config());
    d.send(b"\r\n");
    assert!(d.log.is_empty());
    d.input(Input::Drain);
    assert_eq!(d.log, [Action::Close]);
}

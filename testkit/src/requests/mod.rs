//! What one request gets back (SPEC "Requests"): the routes, the content types (inline
//! or an attachment), 404 and 415, HEAD, OPTIONS and the refused methods, downloads small
//! and large (byte-identical), the seed's curl examples with the real curl, and uploads
//! of JSON (`uploads.rs`).
//!
//! Where a test goes: here if it is about the answer to a well-formed request (its
//! status, headers and body) or about what an upload leaves on disk. A request built to
//! get what it must not is [`security`](crate::security); the conditional and partial
//! answers of a file are [`validators`](crate::validators); a directory's listing is
//! [`listing`](crate::listing); how a connection carries its requests is
//! [`connections`](crate::connections).

use std::process::Command;
use std::thread;

use crate::util::{expect_error_page, file, get, method};
use crate::{binary_bytes, contains, have, Fixture, Response, Server, INDEX_HTML};

mod uploads;
pub use uploads::*;

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __requests_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] requests;
            spec: [
                get_root_is_index_html,
                html_and_htm_are_inline_html,
                downloads_are_attachments_byte_identical,
                json_is_application_json,
                common_web_types_are_inline_with_their_type,
                unknown_extension_is_415,
                missing_file_or_directory_is_404,
                head_has_the_get_headers_and_no_body,
                options_is_204_with_allow,
                other_methods_are_405_with_allow,
                large_file_download_is_byte_identical,
                curl_examples_of_the_seed,
                upload_is_created_atomically_and_readable_back,
                upload_content_type_parameters_are_allowed,
                upload_other_content_type_is_415,
                upload_invalid_json_is_400,
                post_elsewhere_is_404_and_writes_nothing,
                concurrent_uploads_lose_and_duplicate_nothing,
                unwritable_uploads_give_500_and_serving_goes_on,
            ];
            more: [
                sigkill_mid_upload_storm_loses_no_acknowledged_upload,
                unwritable_uploads_give_500_and_the_server_recovers,
            ];
        }
    };
}
pub use crate::__requests_list as list;

// ----- Routes and types -----

pub fn get_root_is_index_html(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = s.get("/");
    r.expect_status(200)
        .expect_header("content-type", "text/html; charset=utf-8");
    assert_eq!(r.body, INDEX_HTML.as_bytes());
    assert!(r.header("content-disposition").is_none(), "inline: {r:?}");
    assert!(r.closes(), "Connection: close was asked: {r:?}");
    let r = s.get("/index.html");
    r.expect_status(200);
    assert_eq!(r.body, INDEX_HTML.as_bytes());
}

pub fn html_and_htm_are_inline_html(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for (path, name) in [
        ("/page.htm", "page.htm"),
        ("/sub/inner.html", "sub/inner.html"),
        ("/PAGE.HTM", ""),
    ] {
        let r = c.request(&get(&s, path));
        if name.is_empty() {
            // File names are case-sensitive: no such file.
            r.expect_status(404);
            continue;
        }
        r.expect_status(200)
            .expect_header("content-type", "text/html; charset=utf-8");
        assert!(r.header("content-disposition").is_none());
        assert_eq!(r.body, file(&s, name));
    }
}

pub fn downloads_are_attachments_byte_identical(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for name in ["sample.txt", "logo.png", "photo.jpg", "photo.jpeg"] {
        let r = c.request(&get(&s, &format!("/{name}")));
        r.expect_status(200)
            .expect_header("content-type", "application/octet-stream")
            .expect_header(
                "content-disposition",
                &format!("attachment; filename=\"{name}\""),
            );
        assert_eq!(r.body, file(&s, name), "{name} differs");
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
}

pub fn json_is_application_json(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = s.get("/data.json");
    r.expect_status(200)
        .expect_header("content-type", "application/json");
    assert_eq!(r.body, file(&s, "data.json"));
    assert!(r.header("content-disposition").is_none());
}

pub fn common_web_types_are_inline_with_their_type(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for (name, ty) in [
        ("style.css", "text/css"),
        ("app.js", "javascript"),
        ("image.svg", "image/svg+xml"),
        ("mod.wasm", "application/wasm"),
        ("favicon.ico", "image/"),
        ("anim.gif", "image/gif"),
        ("pic.webp", "image/webp"),
    ] {
        let r = c.request(&get(&s, &format!("/{name}")));
        r.expect_status(200);
        let got = r.header("content-type").unwrap_or_default();
        assert!(got.contains(ty), "{name}: Content-Type {got:?}, want {ty}");
        assert!(r.header("content-disposition").is_none(), "{name} inline");
        assert_eq!(r.body, file(&s, name));
    }
}

pub fn unknown_extension_is_415(bin: &str) {
    let s = Server::start(bin, &[]);
    let r = s.get("/notes.unknownext");
    expect_error_page(&r, 415);
    assert!(!contains(&r.body, b"what is this"));
}

pub fn missing_file_or_directory_is_404(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/nope.html",
        "/sub",
        "/sub/",
        "/nope/deeper.txt",
        "/uploads/",
        "/sample.txt/x",
    ] {
        let r = c.request(&get(&s, path));
        expect_error_page(&r, 404);
        assert!(!r.closes(), "a 404 keeps the connection: {path}");
    }
}

pub fn head_has_the_get_headers_and_no_body(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for path in [
        "/",
        "/logo.png",
        "/sample.txt",
        "/nope.html",
        "/notes.unknownext",
    ] {
        let head = c.request(&method(&s, "HEAD", path));
        // If HEAD had sent a body, this GET's response would not parse.
        let full = c.request(&get(&s, path));
        assert_eq!(head.status, full.status, "{path}");
        assert!(head.body.is_empty());
        let names = |r: &Response| -> Vec<String> {
            r.headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .filter(|n| n != "date" && n != "keep-alive")
                .collect()
        };
        assert_eq!(names(&head), names(&full), "{path}: header names");
        for h in [
            "content-length",
            "content-type",
            "content-disposition",
            "etag",
        ] {
            assert_eq!(head.header(h), full.header(h), "{path}: {h}");
        }
    }
}

// ----- Methods -----

pub fn options_is_204_with_allow(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for target in ["*", "/index.html", "/upload", "/nope"] {
        let r = c.request(&method(&s, "OPTIONS", target));
        r.expect_status(204)
            .expect_header("allow", "GET, HEAD, POST, OPTIONS");
        assert!(r.body.is_empty());
    }
}

pub fn other_methods_are_405_with_allow(bin: &str) {
    let s = Server::start(bin, &[]);
    let mut c = s.connect();
    for m in ["PUT", "DELETE", "PATCH", "TRACE", "FOO"] {
        let r = c.request(&method(&s, m, "/index.html"));
        expect_error_page(&r, 405);
        r.expect_header("allow", "GET, HEAD, POST, OPTIONS");
    }
    let r = c.request(&format!(
        "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n",
        s.host()
    ));
    r.expect_status(405);
    // A PUT with a body writes nothing, and the connection goes on.
    let r = c.request(&format!(
        "PUT /uploads/p.json HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        s.host()
    ));
    r.expect_status(405);
    assert!(s.fx.uploads().is_empty());
    c.request(&get(&s, "/")).expect_status(200);
}

// ----- Downloads, and the seed's examples -----

pub fn large_file_download_is_byte_identical(bin: &str) {
    let fx = Fixture::new();
    let big = binary_bytes(10 << 20);
    std::fs::write(fx.root.join("big.bin"), &big).expect("big");
    let s = Server::start_in(bin, fx, &[]);
    let mut c = s.connect();
    let r = c.request(&get(&s, "/big.bin"));
    r.expect_status(200);
    assert!(r.body == big, "10 MiB body differs");
    let r = c.request(&method(&s, "HEAD", "/big.bin"));
    r.expect_header("content-length", &(10u64 << 20).to_string());
    // A range in the middle of a large file.
    let r = c.request(&format!(
        "GET /big.bin HTTP/1.1\r\nHost: {}\r\nRange: bytes=1000000-2999999\r\n\r\n",
        s.host()
    ));
    r.expect_status(206);
    assert!(r.body == big[1_000_000..3_000_000]);
    // Two at once.
    thread::scope(|scope| {
        let hs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| s.get("/big.bin").body == big))
            .collect();
        for h in hs {
            assert!(h.join().expect("downloader"));
        }
    });
}

/// The seed README's curl examples, with the real curl.
pub fn curl_examples_of_the_seed(bin: &str) {
    assert!(
        have("curl"),
        "curl is not installed (.ci/run installs it): the seed's examples need it"
    );
    let s = Server::start(bin, &[]);
    // Over TLS: `https://` URLs (s.url), and curl trusts the test CA (s.curl_args).
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(s.curl_args())
            .args(args)
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        out
    };
    let out = curl(&["-v", &s.url("/")]);
    assert_eq!(out.stdout, INDEX_HTML.as_bytes());
    // Over TLS the server offers h2 first (ALPN) and curl takes it.
    let status_line = if s.is_tls() {
        "< HTTP/2 200"
    } else {
        "< HTTP/1.1 200"
    };
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains(status_line), "{verbose}");

    let dest = s.fx.base.path().join("downloaded_logo.png");
    curl(&["-v", &s.url("/logo.png"), "-o", &dest.to_string_lossy()]);
    assert_eq!(
        std::fs::read(&dest).expect("downloaded"),
        file(&s, "logo.png")
    );

    let out = curl(&[
        "-X",
        "POST",
        &s.url("/upload"),
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"key\": \"value\"}",
        "-w",
        "\n%{http_code}",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.ends_with("\n201"), "{text}");
    assert!(text.contains("\"status\":\"created\""), "{text}");
    let names = s.fx.uploads();
    assert_eq!(names.len(), 1);
    assert_eq!(
        std::fs::read_to_string(s.fx.root.join("uploads").join(&names[0])).expect("upload"),
        "{\"key\": \"value\"}"
    );

    let code = |args: &[&str]| -> String {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&curl(&all).stdout).into_owned()
    };
    // curl itself squashes `/../`; with --path-as-is the server sees it and refuses.
    assert_eq!(code(&["--path-as-is", &s.url("/../server.py")]), "403");
    assert_ne!(code(&[&s.url("/../server.py")]), "200");
    assert_eq!(code(&["-H", "Host: example.com", &s.url("/")]), "403");
    assert_eq!(code(&["--http1.0", &s.url("/sample.txt")]), "200");
}

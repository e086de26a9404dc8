//! SPEC "Requests": one table row, at least one test.
mod common;
use common::*;

fn file_row(path: &str, opened: &str, content_type: &str, attachment: Option<&str>, len: u64) {
    let d = one(&get(path));
    assert_eq!(d.out[0], Out::Open(opened.to_string()), "{path}");
    let r = d.only();
    assert_eq!(r.status, 200, "{path}");
    assert_eq!(r.header("Content-Type"), Some(content_type), "{path}");
    assert_eq!(r.header("Content-Disposition"), attachment, "{path}");
    assert_eq!(
        r.header("Content-Length"),
        Some(len.to_string().as_str()),
        "{path}"
    );
    assert_eq!(
        d.out.last(),
        Some(&Out::SendFile { offset: 0, len }),
        "{path}"
    );
}

t!(get_root_is_index_html {
    file_row("/", "index.html", "text/html; charset=utf-8", None, 1133);
});

t!(get_html_and_htm_inline {
    file_row("/index.html", "index.html", "text/html; charset=utf-8", None, 1133);
    file_row("/page.htm", "page.htm", "text/html; charset=utf-8", None, 10);
});

t!(images_and_text_are_downloads {
    for (p, name, len) in [
        ("/logo.png", "logo.png", 7028),
        ("/photo.jpg", "photo.jpg", 10),
        ("/photo.jpeg", "photo.jpeg", 10),
        ("/sample.txt", "sample.txt", 218),
    ] {
        let disp = format!("attachment; filename=\"{name}\"");
        file_row(p, name, "application/octet-stream", Some(&disp), len);
    }
});

t!(json_read_back {
    file_row("/uploads/a.json", "uploads/a.json", "application/json", None, 7);
});

t!(common_web_types_have_their_type {
    for (p, ct) in [
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/pic.svg", "image/svg+xml"),
        ("/favicon.ico", "image/x-icon"),
        ("/anim.gif", "image/gif"),
        ("/img.webp", "image/webp"),
        ("/mod.wasm", "application/wasm"),
    ] {
        let d = one(&get(p));
        assert_eq!(d.status(), 200, "{p}");
        assert_eq!(d.only().header("Content-Type"), Some(ct), "{p}");
        assert_eq!(d.only().header("Content-Disposition"), None, "{p}");
    }
});

t!(unknown_extension_is_415 {
    assert_eq!(one(&get("/notes.qqq")).status(), 415);
    assert_eq!(one(&get("/README")).status(), 415);
});

t!(missing_file_or_directory_is_404 {
    assert_eq!(one(&get("/nope.html")).status(), 404);
    assert_eq!(one(&get("/uploads")).status(), 404);
    assert_eq!(one(&get("/docs")).status(), 404);
    // A directory target with a slash is its index.html.
    let d = one(&get("/docs/"));
    assert_eq!(d.out[0], Out::Open("docs/index.html".into()));
    assert_eq!(d.status(), 200);
});

t!(head_has_get_headers_and_no_body {
    for p in ["/", "/logo.png", "/nope.html", "/notes.qqq", "/style.css"] {
        let g = one(&get(p));
        let h = one(&req("HEAD", p, ""));
        let (g, hr) = (g.only(), h.only());
        assert_eq!(g.status, hr.status, "{p}");
        assert_eq!(g.headers, hr.headers, "{p}");
        assert!(hr.body.is_empty(), "{p}");
        assert!(!h.out.iter().any(|o| matches!(o, Out::SendFile { .. })), "{p}");
    }
});

t!(post_upload_creates_file {
    let d = one(&upload(r#"{"key": "value"}"#));
    assert_eq!(d.world.uploads.len(), 1);
    let (name, body) = &d.world.uploads[0];
    assert!(name.ends_with(".json") && name.len() == 41, "{name}");
    assert_eq!(body, br#"{"key": "value"}"#);
    let r = d.only();
    assert_eq!(r.status, 201);
    let loc = format!("/uploads/{name}");
    assert_eq!(r.header("Location"), Some(loc.as_str()));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(v["status"], "created");
    assert_eq!(v["path"], loc.as_str());
});

t!(upload_content_type_parameters_allowed {
    let body = r#"[1,2,3]"#;
    let r = req(
        "POST",
        "/upload",
        &format!("Content-Type: Application/JSON; charset=utf-8\r\nContent-Length: {}\r\n", body.len()),
    );
    let mut d = driver();
    d.send(&r).send(body.as_bytes());
    assert_eq!(d.status(), 201);
});

t!(uploads_get_distinct_names {
    let mut d = driver();
    d.send(&upload("1")).send(&upload("2")).send(&upload("3"));
    let mut names: Vec<_> = d.world.uploads.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3);
});

t!(upload_other_content_type_is_415 {
    let d = one(&req("POST", "/upload", "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}"));
    assert_eq!(d.status(), 415);
    assert!(d.world.uploads.is_empty());
    let d = one(&req("POST", "/upload", "Content-Length: 2\r\n\r\n{}"));
    assert_eq!(d.status(), 415);
    assert!(d.world.uploads.is_empty());
});

t!(upload_invalid_json_is_400 {
    for body in ["{", "", "{'a':1}", "[1,]", "nul"] {
        let d = one(&upload(body));
        assert_eq!(d.status(), 400, "{body:?}");
        assert!(d.world.uploads.is_empty());
        assert!(!d.closed, "a bad JSON body does not break framing");
    }
});

t!(post_elsewhere_is_404_and_writes_nothing {
    for p in ["/", "/index.html", "/uploads", "/upload/x"] {
        let d = one(&req("POST", p, "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
        assert_eq!(d.status(), 404, "{p}");
        assert!(d.world.uploads.is_empty());
    }
});

t!(options_is_204_with_allow {
    for p in ["*", "/", "/upload", "/anything"] {
        let d = one(&req("OPTIONS", p, ""));
        let r = d.only();
        assert_eq!(r.status, 204, "{p}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD, POST, OPTIONS"));
        assert!(!r.has("Content-Length"), "RFC 9110 §8.6: no Content-Length on 204");
    }
});

t!(other_methods_are_405_with_allow {
    for m in ["PUT", "DELETE", "PATCH", "TRACE", "FOO", "get"] {
        let d = one(&req(m, "/index.html", ""));
        let r = d.only();
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD, POST, OPTIONS"));
    }
    let d = one(b"CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert_eq!(d.status(), 405);
});

t!(upload_write_failure_is_500_and_serving_goes_on {
    let mut d = driver();
    d.world.upload_result = Err(protocol::UploadError::Other);
    d.send(&upload("{}"));
    d.world.upload_result = Ok(());
    d.send(&get("/"));
    let r = d.responses();
    assert_eq!(r[0].status, 500);
    assert_eq!(r[1].status, 200);
    // A name that exists is never overwritten: a new name, from new random bytes, up to
    // four names; then 500.
    let taken = Err(protocol::UploadError::AlreadyExists { reseed: [9; 16] });
    let mut d = driver();
    d.world.upload_result = taken;
    d.send(&upload("{}"));
    assert_eq!(d.status(), 500, "an existing file is never overwritten");
    assert_eq!(d.world.uploads.len(), 4);
    let mut d = driver();
    d.world.upload_queue.push_back(taken);
    d.send(&upload("{}"));
    assert_eq!(d.status(), 201);
    assert_eq!(d.world.uploads.len(), 2);
    assert_ne!(d.world.uploads[0].0, d.world.uploads[1].0);
    let location = format!("/uploads/{}", d.world.uploads[1].0);
    assert_eq!(d.only().header("Location"), Some(location.as_str()));
});

t!(an_unavailable_store_is_503_with_retry_after {
    let mut d = driver();
    d.world.upload_queue.push_back(Err(protocol::UploadError::Unavailable));
    d.send(&upload("{}"));
    let r = d.only();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(!d.closed, "the body was read: the connection goes on");
    d.send(&upload("{}"));
    assert_eq!(d.responses()[1].status, 201);
});

t!(a_read_from_an_unavailable_store_is_503_with_retry_after {
    // An upload kept in an object store that is down (the host's HEAD failed): a 503
    // with Retry-After, as for a write, never a 500; the connection goes on.
    let mut d = driver();
    d.world
        .files
        .insert("uploads/kept.json".into(), Err(protocol::FileError::Unavailable));
    d.send(&get("/uploads/kept.json"));
    let r = d.only();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(!d.closed);
    // HEAD gets the same head, and a client that accepts compressed variants too.
    d.send(&req("HEAD", "/uploads/kept.json", ""));
    d.send(&req("GET", "/uploads/kept.json", "Accept-Encoding: gzip, br\r\n"));
    let rs = d.responses();
    assert_eq!(rs.len(), 3);
    for r in &rs[1..] {
        assert_eq!(r.status, 503);
        assert_eq!(r.header("Retry-After"), Some("1"));
    }
    // The store back: served.
    d.world
        .files
        .insert("uploads/kept.json".into(), protocol::sim::Tables::file(7, MTIME));
    d.send(&get("/uploads/kept.json"));
    assert_eq!(d.responses()[3].status, 200);
});

t!(file_open_errors {
    assert_eq!(one(&get("/escape.html")).status(), 403);
    assert_eq!(one(&get("/broken.html")).status(), 500);
});

t!(every_response_has_date_server_length {
    let reqs: Vec<Vec<u8>> = vec![
        get("/"),
        get("/nope.html"),
        get("/notes.qqq"),
        upload("{}"),
        upload("{"),
        req("PUT", "/", ""),
        req("GET", "/../x", ""),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"BAD\r\n\r\n".to_vec(),
    ];
    for q in reqs {
        let d = one(&q);
        let r = d.only();
        assert!(r.has("Date") && r.has("Server") && r.has("Content-Length"), "{:?}", r);
        if r.status >= 400 {
            let text = String::from_utf8_lossy(&r.body);
            assert!(text.contains(&r.status.to_string()), "short readable page: {text}");
        }
    }
});

t!(content_disposition_escapes_names {
    let mut d = driver();
    d.world.files.insert("we\"ird.txt".into(), Ok(protocol::FileMeta { len: 1, ..Default::default() }));
    d.world.files.insert("café.png".into(), Ok(protocol::FileMeta { len: 1, ..Default::default() }));
    d.send(&get("/we%22ird.txt")).send(&get("/caf%C3%A9.png"));
    let r = d.responses();
    assert_eq!(r[0].header("Content-Disposition"), Some("attachment; filename=\"we\\\"ird.txt\""));
    assert_eq!(
        r[1].header("Content-Disposition"),
        Some("attachment; filename=\"caf_.png\"; filename*=UTF-8''caf%C3%A9.png")
    );
});

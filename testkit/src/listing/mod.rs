//! Directory listings with `--dir-listing` (SPEC "Requests", the `--dir-listing` rows) on
//! a real file system.
//!
//! The core's decisions (order, escaping, the cap, JSON) are table-tested with made-up
//! entries in `protocol/tests/listing.rs`; these tests give a runtime real files whose
//! names hold spaces, `#`, `?`, `%`, quotes, `<`, `&`, non-ASCII and a newline, real
//! symlinks into and out of the root, and a 20,000-entry directory, and follow every link
//! of each page back over the wire (`links.rs` reads a page).
//!
//! Where a test goes: here if it needs `--dir-listing`. A listing in a real browser is
//! [`browser`](crate::browser).

use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

use crate::util::{mtime_secs, proc_kib};
use crate::{Client, Fixture, Response, Server};

mod archive;
mod links;
pub use archive::*;
use links::*;

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __listing_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] listing;
            spec: [];
            more: [
                a_directory_without_its_slash_redirects_query_kept,
                a_directory_with_index_html_serves_it,
                the_page_is_ordered_and_escaped_and_every_link_round_trips,
                hidden_entries_are_never_listed,
                symlinks_out_of_the_root_are_never_listed,
                json_for_scripts,
                head_is_the_gets_head,
                post_to_a_directory_is_not_a_success,
                dot_dot_is_forbidden,
                flag_off_is_404_as_before,
                a_huge_directory_is_fast_capped_and_bounded,
                a_folder_as_a_zip_holds_exactly_the_tree,
                a_zip_only_for_who_may_read_the_folder,
                zip64_past_4_gib_a_sparse_file,
            ];
        }
    };
}
pub use crate::__listing_list as list;

// ----- The tree -----

/// Files of `pub/` whose names a listing must escape in HTML and encode in its links.
const TRICKY_FILES: &[&str] = &[
    "a b.txt",
    "a+b.txt",
    "hash#frag.txt",
    "what?q=1.txt",
    "100%.txt",
    "%41.txt",
    "A.txt",
    "quote\"d.txt",
    "it's.txt",
    "<b>bold.txt",
    "a&amp;b.txt",
    "caf\u{e9}.txt",
    "\u{65e5}\u{672c}\u{8a9e}.txt",
    "crab \u{1f980}.json",
    "new\nline.txt",
    "x\r\nSet-Cookie: injected=1.txt",
    "page <i>.html",
];

/// Directories of `pub/` (each with one file inside).
const TRICKY_DIRS: &[&str] = &["Zeta", "alpha", "sub dir #1 & <2>", "\u{fc}ber"];

/// A modification time to find in the JSON: 2001-09-09T01:46:40Z.
const KNOWN_MTIME: u64 = 1_000_000_000;

/// The bytes of each file of the tree: its own name, so a wrong file shows.
fn content(name: &str) -> Vec<u8> {
    format!("the bytes of {name:?}\n").into_bytes()
}

/// A web root without `index.html`: `pub/` (tricky names, hidden entries, one
/// subdirectory per tricky directory name), `site/` (with its own `index.html`) and
/// `empty/`.
fn tree() -> Fixture {
    let fx = Fixture::empty();
    let public = fx.root.join("pub");
    fs::create_dir_all(&public).expect("pub/");
    for name in TRICKY_FILES {
        fs::write(public.join(name), content(name)).expect("a tricky file");
    }
    for dir in TRICKY_DIRS {
        let d = public.join(dir);
        fs::create_dir(&d).expect("a tricky directory");
        fs::write(d.join("inner.txt"), content(&format!("{dir}/inner.txt"))).expect("inner");
    }
    fs::write(public.join(".hidden.txt"), "hidden").expect(".hidden.txt");
    fs::create_dir(public.join(".git")).expect(".git");
    fs::write(public.join(".git/config"), "[core]").expect(".git/config");
    fs::create_dir(fx.root.join(".dotdir")).expect(".dotdir");
    fs::write(fx.root.join(".env"), "KEY=1").expect(".env");
    fs::create_dir(fx.root.join("site")).expect("site/");
    fs::write(fx.root.join("site/index.html"), "<h1>site index</h1>").expect("index");
    fs::write(fx.root.join("site/other.txt"), "other").expect("other");
    fs::create_dir(fx.root.join("empty")).expect("empty/");
    fx
}

fn start(bin: &str, fx: Fixture) -> Server {
    Server::builder(bin)
        .fixture(fx)
        .args(&["--dir-listing"])
        .rust_log("info")
        .start()
}

/// `METHOD target` on a new connection, with extra header lines (each ending in CRLF).
fn send(s: &Server, method: &str, target: &str, extra: &str) -> Response {
    s.raw(&format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
        s.host()
    ))
}

fn get_json(s: &Server, target: &str) -> Vec<Value> {
    let r = send(s, "GET", target, "Accept: application/json\r\n");
    r.expect_status(200)
        .expect_header("content-type", "application/json");
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("GET {target} as JSON is not JSON ({e}): {}", r.text()));
    v.as_array()
        .unwrap_or_else(|| panic!("GET {target} as JSON is not an array: {v}"))
        .clone()
}

/// A listing page: 200, HTML, its links (`href` as written, text unescaped).
#[track_caller]
fn page(s: &Server, target: &str) -> (String, Vec<(String, String)>) {
    let r = s.get(target);
    r.expect_status(200)
        .expect_header("content-type", "text/html; charset=utf-8");
    let text = String::from_utf8(r.body.clone()).expect("the page is UTF-8");
    let links = links(&text);
    (text, links)
}

// ----- The cases -----

/// `/DIR` is a 301 to `/DIR/`, its query kept; the new address lists the directory.
pub fn a_directory_without_its_slash_redirects_query_kept(bin: &str) {
    let s = start(bin, tree());
    let cases = [
        ("/pub", "/pub/"),
        ("/pub?sort=name&x=%20", "/pub/?sort=name&x=%20"),
        ("/empty?", "/empty/?"),
        ("/pub/alpha?a=1&b=%2F", "/pub/alpha/?a=1&b=%2F"),
        (
            "/pub/sub%20dir%20%231%20%26%20%3C2%3E?q=%23",
            "/pub/sub%20dir%20%231%20%26%20%3C2%3E/?q=%23",
        ),
        ("/pub/%C3%BCber", "/pub/%C3%BCber/"),
    ];
    for (target, location) in cases {
        let r = s.get(target);
        r.expect_status(301).expect_header("location", location);
        // Following it gives the listing (the query is no part of the path).
        let (text, _) = page(&s, location);
        let dir = percent_decode(location.split('?').next().unwrap_or(""));
        let title = format!("Index of {}", dir);
        assert!(
            unescape(&text).contains(&title),
            "GET {location} should say {title:?}: {text}"
        );
    }
    // A file is no directory: no redirect.
    s.get("/pub/a%20b.txt").expect_status(200);
}

/// A directory with an `index.html` serves it at `/DIR/`; `/DIR` redirects there.
pub fn a_directory_with_index_html_serves_it(bin: &str) {
    let s = start(bin, tree());
    let r = s.get("/site/");
    r.expect_status(200)
        .expect_header("content-type", "text/html; charset=utf-8");
    assert_eq!(
        r.text(),
        "<h1>site index</h1>",
        "GET /site/ serves site/index.html"
    );
    s.get("/site")
        .expect_status(301)
        .expect_header("location", "/site/");
    s.get("/site?x=1&y=two")
        .expect_status(301)
        .expect_header("location", "/site/?x=1&y=two");
    let r = s.get("/site/?x=1");
    r.expect_status(200);
    assert_eq!(r.text(), "<h1>site index</h1>");
    // The root with an index.html serves it too.
    let fx = Fixture::empty().with_file("index.html", "<h1>root index</h1>");
    let s = start(bin, fx);
    let r = s.get("/");
    r.expect_status(200);
    assert_eq!(r.text(), "<h1>root index</h1>");
}

/// The page of `pub/`: directories first then files, each by name; every name escaped
/// in the text and percent-encoded in its link; following every link of it (and of the
/// pages it links) gives that file's bytes or that directory's listing.
pub fn the_page_is_ordered_and_escaped_and_every_link_round_trips(bin: &str) {
    let fx = tree();
    // A name that is not UTF-8 cannot be linked: it is left out, and the page still works.
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"latin1-\xe9.txt");
        fs::write(fx.root.join("pub").join(odd), "latin-1 name").expect("a non-UTF-8 name");
    }
    let root = fx.root.clone();
    let s = start(bin, fx);
    let (text, links) = page(&s, "/pub/");
    assert!(
        text.contains("<title>Index of /pub/</title>"),
        "the title: {text}"
    );
    let got: Vec<&str> = links.iter().map(|(_, t)| t.as_str()).collect();
    let mut want = vec!["../".to_string()];
    want.extend(
        expected_order(TRICKY_DIRS, TRICKY_FILES)
            .iter()
            .map(|n| shown(n)),
    );
    assert_eq!(got, want, "the links' text, in order");
    // The escaping: no name's markup got through; the raw bytes are only in links.
    for raw in [
        "<b>bold",
        "<i>",
        "<2>",
        "quote\"d",
        "new\nline",
        "\r\nSet-Cookie",
    ] {
        assert!(!text.contains(raw), "{raw:?} unescaped in the page: {text}");
    }
    assert!(text.contains("a&amp;amp;b.txt"), "`&` escaped in {text}");
    assert!(text.contains("&lt;b&gt;bold.txt"), "`<` escaped in {text}");
    let hrefs: Vec<&str> = links.iter().map(|(h, _)| h.as_str()).collect();
    for (href, name) in [
        ("./a%20b.txt", "a b.txt"),
        ("./a%2Bb.txt", "a+b.txt"),
        ("./hash%23frag.txt", "#"),
        ("./what%3Fq%3D1.txt", "?"),
        ("./100%25.txt", "%"),
        ("./%2541.txt", "%41"),
        ("./new%0Aline.txt", "newline"),
        ("./caf%C3%A9.txt", "non-ASCII"),
    ] {
        assert!(hrefs.contains(&href), "{name}: no {href:?} in {hrefs:?}");
    }
    // Every link, followed over the wire as written, gives back what it names.
    let followed = follow_every_link(&s, "/pub/", &root.join("pub"), 1);
    let expected = 1 + TRICKY_FILES.len() + TRICKY_DIRS.len() * 3;
    assert_eq!(
        followed, expected,
        "links followed on /pub/ and its subdirectories"
    );
    // The root is listed too, without a link to its parent.
    let (_, links) = page(&s, "/");
    let got: Vec<&str> = links.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        got,
        ["./empty/", "./pub/", "./site/", "./uploads/"],
        "the root's links"
    );
    // A directory with nothing in it: only the parent link.
    let (_, links) = page(&s, "/empty/");
    assert_eq!(links, [("../".to_string(), "../".to_string())]);
}

/// Names starting with `.` are never listed, and asked for directly are 404.
pub fn hidden_entries_are_never_listed(bin: &str) {
    let s = start(bin, tree());
    for dir in ["/", "/pub/"] {
        let (text, links) = page(&s, dir);
        for (href, name) in &links {
            assert!(
                !href.contains("/.") || href == "../",
                "hidden {href:?} listed on {dir}"
            );
            assert!(
                !name.starts_with('.') || name == "../",
                "hidden {name:?} on {dir}"
            );
        }
        for hidden in [".hidden", ".git", ".dotdir", ".env"] {
            assert!(!text.contains(hidden), "{hidden} shown on {dir}: {text}");
        }
        for item in get_json(&s, dir) {
            let name = item["name"].as_str().unwrap_or_default();
            assert!(
                !name.starts_with('.'),
                "hidden {name:?} in the JSON of {dir}"
            );
        }
    }
    for target in [
        "/pub/.hidden.txt",
        "/pub/.git/",
        "/pub/.git",
        "/.dotdir/",
        "/.env",
    ] {
        s.get(target).expect_status(404);
    }
}

/// Symlinks that lead out of the root (to a directory, to a file, relative or
/// absolute) and dangling ones are never listed; one to a file (or directory) inside the
/// root is listed as what it points to and serves it.
pub fn symlinks_out_of_the_root_are_never_listed(bin: &str) {
    use std::os::unix::fs::symlink;
    let fx = tree();
    let (root, base) = (fx.root.clone(), fx.base.path().to_path_buf());
    let links = root.join("links");
    fs::create_dir(&links).expect("links/");
    fs::create_dir(base.join("outside")).expect("a directory outside the root");
    fs::write(base.join("outside/visible.txt"), "outside").expect("outside file");
    symlink(base.join("outside"), links.join("out-dir")).expect("symlink");
    symlink("../../outside", links.join("rel-out-dir")).expect("symlink");
    symlink(&fx.secret, links.join("out-file.txt")).expect("symlink");
    symlink("../../secret.txt", links.join("rel-out-file.txt")).expect("symlink");
    symlink("/", links.join("slash")).expect("symlink");
    symlink("nowhere.txt", links.join("dangling.txt")).expect("symlink");
    symlink("../pub/a b.txt", links.join("in-file.txt")).expect("symlink");
    symlink(
        root.join("pub/caf\u{e9}.txt"),
        links.join("abs-in-file.txt"),
    )
    .expect("symlink");
    symlink("../pub/alpha", links.join("in-dir")).expect("symlink");
    // A FIFO costs a listing nothing (it is never read).
    let special = root.join("special");
    fs::create_dir(&special).expect("special/");
    fs::write(special.join("plain.txt"), "plain").expect("plain.txt");
    let fifo = Command::new("mkfifo")
        .arg(special.join("pipe.txt"))
        .status()
        .is_ok_and(|st| st.success());
    let s = start(bin, fx);

    let (text, got) = page(&s, "/links/");
    let names: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        names,
        ["../", "in-dir/", "abs-in-file.txt", "in-file.txt"],
        "the links of /links/: {text}"
    );
    for out in [
        "out-dir", "rel-out", "out-file", "slash", "dangling", "outside", "secret",
    ] {
        assert!(!text.contains(out), "{out} shown: {text}");
    }
    let items = get_json(&s, "/links/");
    let a_b = fs::metadata(root.join("pub/a b.txt")).expect("a b.txt");
    let in_file = items
        .iter()
        .find(|i| i["name"] == "in-file.txt")
        .expect("in-file.txt in the JSON");
    assert_eq!(in_file["type"], "file", "{in_file}");
    assert_eq!(in_file["size"].as_u64(), Some(a_b.len()), "{in_file}");
    let in_dir = items
        .iter()
        .find(|i| i["name"] == "in-dir")
        .expect("in-dir in the JSON");
    assert_eq!(in_dir["type"], "dir", "{in_dir}");
    assert_eq!(
        items.len(),
        3,
        "only the symlinks inside the root: {items:?}"
    );
    // The listed ones serve what they point to.
    let r = s.get("/links/in-file.txt");
    r.expect_status(200);
    assert_eq!(r.body, content("a b.txt"));
    let r = s.get("/links/abs-in-file.txt");
    r.expect_status(200);
    assert_eq!(r.body, content("caf\u{e9}.txt"));
    let (_, inner) = page(&s, "/links/in-dir/");
    assert!(inner.iter().any(|(h, _)| h == "./inner.txt"), "{inner:?}");
    // The ones out of the root list nothing of what is there.
    for target in ["/links/out-dir/", "/links/rel-out-dir/", "/links/slash/"] {
        let r = s.get(target);
        assert!(
            r.status == 403 || r.status == 404,
            "GET {target} should be 403 or 404: {r:?}"
        );
        assert!(!r.text().contains("visible.txt") && !r.text().contains("secret.txt"));
    }

    if fifo {
        let started = Instant::now();
        let (_, got) = page(&s, "/special/");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a FIFO stalled the listing"
        );
        assert!(got.iter().any(|(h, _)| h == "./plain.txt"), "{got:?}");
    } else {
        eprintln!("mkfifo failed: the FIFO check was skipped");
    }
}

/// `Accept: application/json`: the entries as JSON, in the page's order, with their
/// type, size and RFC 3339 modification time; no `../`.
pub fn json_for_scripts(bin: &str) {
    let fx = tree();
    let root = fx.root.clone();
    let known = root.join("pub/a b.txt");
    fs::File::options()
        .write(true)
        .open(&known)
        .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(KNOWN_MTIME)))
        .expect("set a known mtime");
    let s = start(bin, fx);
    let r = send(&s, "GET", "/pub/", "Accept: application/json\r\n");
    r.expect_status(200)
        .expect_header("content-type", "application/json");
    let items = get_json(&s, "/pub/");
    let names: Vec<String> = items
        .iter()
        .map(|i| {
            let keys: Vec<&str> = i
                .as_object()
                .unwrap_or_else(|| panic!("not an object: {i}"))
                .keys()
                .map(String::as_str)
                .collect();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(keys, ["modified", "name", "size", "type"], "{i}");
            i["name"].as_str().expect("a name").to_string()
        })
        .collect();
    let want: Vec<String> = expected_order(TRICKY_DIRS, TRICKY_FILES)
        .into_iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    assert_eq!(names, want, "the JSON's names: raw, in the page's order");
    for item in &items {
        let name = item["name"].as_str().unwrap_or_default();
        let path = root.join("pub").join(name);
        let meta = fs::metadata(&path).expect("a listed entry");
        let kind = if meta.is_dir() { "dir" } else { "file" };
        assert_eq!(item["type"], kind, "{item}");
        assert!(item["size"].is_u64(), "{item}");
        if !meta.is_dir() {
            assert_eq!(item["size"].as_u64(), Some(meta.len()), "{item}");
        }
        assert_eq!(item["modified"], rfc3339(mtime_secs(&path)), "{item}");
    }
    let known = items
        .iter()
        .find(|i| i["name"] == "a b.txt")
        .expect("a b.txt");
    assert_eq!(known["modified"], "2001-09-09T01:46:40Z", "{known}");
    // The root and an empty directory.
    let names: Vec<Value> = get_json(&s, "/")
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(names, ["empty", "pub", "site", "uploads"]);
    assert_eq!(get_json(&s, "/empty/"), Vec::<Value>::new());
    // A browser's Accept gets the page.
    let r = send(
        &s,
        "GET",
        "/pub/",
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n",
    );
    r.expect_header("content-type", "text/html; charset=utf-8");
}

/// HEAD is the GET's status and headers without a body, for the page, the JSON and the
/// redirect (checked on one keep-alive connection: a stray body would break the next).
pub fn head_is_the_gets_head(bin: &str) {
    let s = start(bin, tree());
    let mut c = s.connect();
    let host = s.host();
    for (target, extra) in [
        ("/pub/", ""),
        ("/pub/", "Accept: application/json\r\n"),
        ("/pub", ""),
        ("/pub?x=1", ""),
        ("/", ""),
        ("/empty/", ""),
    ] {
        let head = c.request(&format!(
            "HEAD {target} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        ));
        let get = c.request(&format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        ));
        assert_eq!(head.status, get.status, "HEAD {target} {extra:?}");
        assert!(head.body.is_empty(), "HEAD {target} has a body");
        let headers = |r: &Response| -> Vec<(String, String)> {
            let mut h: Vec<(String, String)> = r
                .headers
                .iter()
                .filter(|(n, _)| !["date", "keep-alive"].contains(&n.to_ascii_lowercase().as_str()))
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect();
            h.sort();
            h
        };
        assert_eq!(
            headers(&head),
            headers(&get),
            "HEAD {target} {extra:?}: the GET's headers"
        );
        let length: usize = get
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .expect("a Content-Length");
        assert_eq!(length, get.body.len(), "GET {target}");
    }
}

/// A POST to a directory (with or without its slash) is refused and writes nothing.
pub fn post_to_a_directory_is_not_a_success(bin: &str) {
    let fx = tree();
    let root = fx.root.clone();
    let before = fs::read_dir(root.join("pub")).expect("pub/").count();
    let s = start(bin, fx);
    let body = "{\"k\": 1}";
    for target in ["/pub/", "/pub", "/", "/empty/", "/uploads/", "/site/"] {
        let r = s.raw(&format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            s.host(),
            body.len()
        ));
        assert!(
            !(200..300).contains(&r.status),
            "POST {target} must not succeed: {r:?}"
        );
    }
    assert_eq!(
        fs::read_dir(root.join("pub")).expect("pub/").count(),
        before
    );
    assert_eq!(s.fx.uploads(), Vec::<String>::new(), "nothing uploaded");
}

/// `..` in a directory's path is 403, encoded or not, and lists nothing.
pub fn dot_dot_is_forbidden(bin: &str) {
    let s = start(bin, tree());
    for target in [
        "/../",
        "/..",
        "/pub/../",
        "/pub/..",
        "/pub/../../",
        "/pub/alpha/../../",
        "/%2e%2e/",
        "/pub/%2E%2E/",
        "/pub/%2e%2e/%2e%2e/",
        "/pub/..%2f..%2f",
    ] {
        let r = s.get(target);
        assert_eq!(r.status, 403, "GET {target}: {r:?}");
        assert!(
            !r.text().contains("href=") && !r.text().contains("secret"),
            "GET {target} listed something: {}",
            r.text()
        );
    }
}

/// Without `--dir-listing` nothing changes: directories are 404, no redirect.
pub fn flag_off_is_404_as_before(bin: &str) {
    let s = Server::builder(bin)
        .fixture(tree())
        .rust_log("info")
        .start();
    for target in ["/", "/pub/", "/pub", "/pub?x=1", "/empty/", "/pub/alpha/"] {
        s.get(target).expect_status(404);
        let r = send(&s, "GET", target, "Accept: application/json\r\n");
        r.expect_status(404);
        let mut c = s.connect();
        let r = c.request(&format!(
            "HEAD {target} HTTP/1.1\r\nHost: {}\r\n\r\n",
            s.host()
        ));
        r.expect_status(404);
    }
    // Files are served as before.
    let r = s.get("/pub/a%20b.txt");
    r.expect_status(200);
    assert_eq!(r.body, content("a b.txt"));
}

/// 20,000 entries: the page shows 10,000 and says how many it left out, within 2 s,
/// and the server's memory stays bounded, also with several such requests at once.
pub fn a_huge_directory_is_fast_capped_and_bounded(bin: &str) {
    const FILES: usize = 20_000;
    const SHOWN: usize = 10_000;
    const RSS_LIMIT_KIB: u64 = 64 * 1024;
    let fx = Fixture::empty();
    let big = fx.root.join("big");
    fs::create_dir(&big).expect("big/");
    // Hard links to one empty file: one link() each, about ten times faster than
    // creating 20,000 inodes; to the server each is an empty file like any other.
    let made = Instant::now();
    let seed = fx.base.path().join("empty-seed");
    fs::File::create(&seed).expect("an empty file");
    for i in 0..FILES {
        fs::hard_link(&seed, big.join(format!("f{i:05}.txt"))).expect("an empty file");
    }
    eprintln!("made {FILES} empty files in {:?}", made.elapsed());
    let s = start(bin, fx);
    let rss_before = proc_kib(s.pid(), "VmRSS");

    let started = Instant::now();
    let r = s.get("/big/");
    let took = started.elapsed();
    eprintln!(
        "GET /big/ ({FILES} entries): {took:?}, {} bytes",
        r.body.len()
    );
    r.expect_status(200);
    assert!(took < Duration::from_secs(2), "GET /big/ took {took:?}");
    let text = String::from_utf8(r.body).expect("UTF-8");
    let links = links(&text);
    assert_eq!(links.len(), 1 + SHOWN, "../ and the first {SHOWN} entries");
    assert_eq!(links[1].0, "./f00000.txt");
    assert_eq!(links[SHOWN].0, format!("./f{:05}.txt", SHOWN - 1));
    let more = format!("{} more entries not shown", FILES - SHOWN);
    assert!(
        text.contains(&more),
        "the page should say {more:?}: …{}",
        &text[text.len().saturating_sub(300)..]
    );

    let started = Instant::now();
    let items = get_json(&s, "/big/");
    eprintln!("GET /big/ as JSON: {:?}", started.elapsed());
    assert_eq!(
        items.len(),
        SHOWN,
        "at most {SHOWN} entries in the JSON too"
    );
    let r = s.raw(&format!(
        "HEAD /big/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.host()
    ));
    r.expect_status(200);

    // Several at once, several times: memory comes back and stays bounded.
    for _ in 0..3 {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let port = s.port;
                let host = s.host();
                thread::spawn(move || {
                    let mut c = Client::connect(port);
                    let r = c.request(&format!(
                        "GET /big/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                    ));
                    r.status
                })
            })
            .collect();
        for w in workers {
            assert_eq!(w.join().expect("a client thread"), 200);
        }
    }
    let rss = proc_kib(s.pid(), "VmRSS");
    let peak = proc_kib(s.pid(), "VmHWM");
    eprintln!(
        "server RSS: {rss_before} KiB at start, {rss} KiB after 14 listings of {FILES} entries (peak {peak} KiB)"
    );
    assert!(
        rss < RSS_LIMIT_KIB,
        "server RSS {rss} KiB, over {RSS_LIMIT_KIB} KiB"
    );
    assert!(
        peak < RSS_LIMIT_KIB,
        "server peak RSS {peak} KiB, over {RSS_LIMIT_KIB} KiB"
    );
}

//! Issue 15: directory listings with `--dir-listing`, decided and rendered by the core
//! from the entries the runtime read: the redirect, escaping, sorting, hidden entries,
//! JSON, HEAD, the cap, and everything unchanged with the flag off.
mod common;
use common::*;
use protocol::sim::Tables;
use protocol::{DirEntry, FileError};

fn entry(name: &str, is_dir: bool, size: u64) -> DirEntry {
    DirEntry {
        name: name.to_string(),
        is_dir,
        size,
        mtime_secs: MTIME,
    }
}

fn listing_driver() -> Driver {
    let mut c = config();
    c.dir_listing = true;
    let mut d = driver_with(c);
    d.world.files.insert("pub".into(), Tables::dir(MTIME));
    d.world.dirs.insert(
        "pub".into(),
        Ok((
            vec![
                entry("zeta.txt", false, 5),
                entry("Alpha", true, 4096),
                entry("beta.html", false, 1536),
                entry(".hidden", false, 1),
                entry(".git", true, 4096),
                entry("alpha", true, 4096),
                entry("a b#c?d%e\"f'g<h>&i.txt", false, 3),
                entry("caf\u{e9}.txt", false, 3),
                entry("new\nline.txt", false, 3),
            ],
            0,
        )),
    );
    d.world.dirs.insert(
        "".into(),
        Ok((
            vec![entry("pub", true, 4096), entry("index.htm", false, 9)],
            0,
        )),
    );
    d
}

fn body(d: &Driver) -> String {
    String::from_utf8(d.only().body.clone()).expect("utf-8 page")
}

/// The hrefs of a page's entries (and its parent), in order: not the link to the
/// folder's archive.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap_or(0)].to_string())
        .filter(|h| h != "./?zip")
        .collect()
}

t!(flag_off_changes_nothing {
    let mut d = driver();
    d.world.dirs.insert("docs".into(), Ok((vec![entry("x.txt", false, 1)], 0)));
    d.send(&get("/docs"));
    assert_eq!(d.status(), 404);
    let mut d = driver();
    d.send(&get("/nodir/"));
    assert_eq!(d.status(), 404);
    assert!(!d.out.iter().any(|o| matches!(o, Out::List(_))));
});

t!(a_directory_without_its_slash_redirects_query_kept {
    let mut d = listing_driver();
    d.send(&get("/pub?sort=name&x=%20"));
    let r = d.only();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/pub/?sort=name&x=%20"));
    // With an index.html too (docs/index.html exists in the fake root).
    let mut d = listing_driver();
    d.send(&get("/docs"));
    assert_eq!(d.only().status, 301);
    assert_eq!(d.only().header("Location"), Some("/docs/"));
    // A directory with an index.html keeps serving it.
    let mut d = listing_driver();
    d.send(&get("/docs/"));
    assert_eq!(d.status(), 200);
    assert!(!d.out.iter().any(|o| matches!(o, Out::List(_))));
});

t!(the_redirect_never_leaves_the_site {
    // `//pub` must not become a protocol-relative `//pub/` (another host).
    let mut d = listing_driver();
    d.send(&get("//pub"));
    assert_eq!(d.only().header("Location"), Some("/pub/"));
});

t!(html_listing_sorted_dirs_first_hidden_never {
    let mut d = listing_driver();
    d.send(&get("/pub/"));
    let r = d.only().clone();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("Vary"), Some("Accept"));
    let page = body(&d);
    let links = hrefs(&page);
    assert_eq!(
        links,
        [
            "../",
            "./Alpha/",
            "./alpha/",
            "./a%20b%23c%3Fd%25e%22f%27g%3Ch%3E%26i.txt",
            "./beta.html",
            "./caf%C3%A9.txt",
            "./new%0Aline.txt",
            "./zeta.txt",
        ]
    );
    assert!(!page.contains("hidden") && !page.contains(".git"));
    // Names are escaped in text: no raw <h> or a quote that ends an attribute.
    assert!(page.contains("a b#c?d%e&quot;f&#39;g&lt;h&gt;&amp;i.txt"), "{page}");
    assert!(!page.contains("<h>"));
    assert!(page.contains("new\u{240a}line.txt"));
    assert!(page.contains("1.5 KiB"));
    assert!(page.contains("Index of /pub/"));
});

t!(every_link_round_trips_to_its_entry {
    // Following each href (relative to /pub/) asks the runtime for that very name.
    let mut d = listing_driver();
    d.send(&get("/pub/"));
    let page = body(&d);
    for href in hrefs(&page).into_iter().filter(|h| h.starts_with("./") && !h.ends_with('/')) {
        let target = format!("/pub/{}", &href[2..]);
        let mut f = listing_driver();
        f.send(&get(&target));
        let opened: Vec<&Out> = f.out.iter().filter(|o| matches!(o, Out::Open(_))).collect();
        let Out::Open(path) = opened[0] else { unreachable!() };
        let name = &path["pub/".len()..];
        assert!(
            [ "zeta.txt", "beta.html", "a b#c?d%e\"f'g<h>&i.txt", "caf\u{e9}.txt", "new\nline.txt" ].contains(&name),
            "{href} opened {path:?}"
        );
    }
});

t!(the_root_has_no_parent_link {
    let mut d = listing_driver();
    d.world.files.remove("index.html");
    d.send(&get("/"));
    assert_eq!(d.out.iter().filter(|o| matches!(o, Out::List(p) if p.is_empty())).count(), 1);
    let page = body(&d);
    assert_eq!(hrefs(&page), ["./pub/", "./index.htm"]);
});

t!(json_listing_for_scripts {
    let mut d = listing_driver();
    d.send(&req("GET", "/pub/", "Accept: application/json\r\n"));
    let r = d.only().clone();
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 7);
    assert_eq!(items[0]["name"], "Alpha");
    assert_eq!(items[0]["type"], "dir");
    assert_eq!(items[3]["name"], "beta.html");
    assert_eq!(items[3]["type"], "file");
    assert_eq!(items[3]["size"], 1536);
    assert_eq!(items[3]["modified"], "2023-11-14T22:13:20Z");
    assert!(items.iter().all(|i| !i["name"].as_str().unwrap_or(".").starts_with('.')));
    // A browser's Accept prefers HTML.
    let mut d = listing_driver();
    d.send(&req("GET", "/pub/", "Accept: text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8\r\n"));
    assert_eq!(d.only().header("Content-Type"), Some("text/html; charset=utf-8"));
});

t!(head_gets_the_gets_headers {
    let mut get_d = listing_driver();
    get_d.send(&get("/pub/"));
    let mut head_d = listing_driver();
    head_d.send(&req("HEAD", "/pub/", ""));
    let (g, h) = (get_d.only(), head_d.only());
    assert_eq!(g.status, h.status);
    assert_eq!(g.header("Content-Length"), h.header("Content-Length"));
    assert_eq!(g.header("Content-Type"), h.header("Content-Type"));
    assert!(h.body.is_empty());
    let mut d = listing_driver();
    d.send(&req("HEAD", "/pub", ""));
    assert_eq!(d.only().status, 301);
    assert!(d.only().body.is_empty());
});

t!(post_to_a_directory_is_not_a_success {
    let mut d = listing_driver();
    d.send(&req("POST", "/pub/", "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
    assert!(d.status() >= 400);
    assert!(d.world.uploads.is_empty());
});

t!(path_rules_unchanged {
    let mut d = listing_driver();
    d.send(&get("/pub/../"));
    assert_eq!(d.status(), 403);
    let mut d = listing_driver();
    d.send(&get("/.git/"));
    assert_eq!(d.status(), 404);
    assert!(!d.out.iter().any(|o| matches!(o, Out::List(_))));
});

t!(missing_or_refused_directories {
    let mut d = listing_driver();
    d.send(&get("/nodir/"));
    assert_eq!(d.status(), 404);
    let mut d = listing_driver();
    d.world.dirs.insert("out".into(), Err(FileError::Forbidden));
    d.send(&get("/out/"));
    assert_eq!(d.status(), 403);
    let mut d = listing_driver();
    d.world.dirs.insert("bad".into(), Err(FileError::Other));
    d.send(&get("/bad/"));
    assert_eq!(d.status(), 500);
    let mut d = listing_driver();
    d.world.dirs.insert("away".into(), Err(FileError::Unavailable));
    d.send(&get("/away/"));
    assert_eq!(d.status(), 503);
    assert_eq!(d.only().header("Retry-After"), Some("1"));
});

t!(a_huge_directory_is_capped_and_says_so {
    let mut d = listing_driver();
    let many: Vec<DirEntry> = (0..20_000).map(|i| entry(&format!("f{i:05}.txt"), false, i)).collect();
    d.world.dirs.insert("big".into(), Ok((many, 7)));
    d.send(&get("/big/"));
    let page = body(&d);
    assert_eq!(hrefs(&page).len(), 1 + 10_000);
    assert!(page.contains("10007 more entries not shown"), "{}", &page[page.len() - 200..]);
});

// ---- Folders as zip archives (`GET /DIR/?zip`, issue 26) ----

t!(a_folder_as_a_zip_archive {
    let mut d = listing_driver();
    d.send(&get("/pub/?zip"));
    let r = d.only();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"pub.zip\"")
    );
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(!r.has("content-length"));
    assert!(d.out.contains(&Out::Archive("pub".into(), None)));
    assert!(d.out.contains(&Out::SendFile { offset: 0, len: u64::MAX }));
    // The connection goes on.
    d.send(&get("/pub/"));
    assert_eq!(d.responses().len(), 2);
    // The root, and a query with more in it.
    let mut d = listing_driver();
    d.send(&get("/?sort=name&zip"));
    assert_eq!(d.only().header("content-disposition"), Some("attachment; filename=\"root.zip\""));
    assert!(d.out.contains(&Out::Archive(String::new(), None)));
});

t!(a_zip_of_what_is_not_there_or_not_a_folder {
    for (target, status) in [("/nowhere/?zip", 404), ("/out/?zip", 403), ("/bad/?zip", 500)] {
        let mut d = listing_driver();
        d.world.files.insert("out".into(), Err(FileError::Forbidden));
        d.world.files.insert("bad".into(), Err(FileError::Other));
        d.send(&get(target));
        assert_eq!(d.status(), status, "{target}");
    }
    // Without --dir-listing, ?zip is an ordinary query: the index.html of the folder.
    let mut d = driver();
    d.world.files.insert("docs".into(), Tables::dir(MTIME));
    d.send(&get("/docs/?zip"));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(d.world.archived.is_empty());
    // A file with ?zip is the file.
    let mut d = listing_driver();
    d.send(&get("/index.html?zip"));
    assert_eq!(d.only().header("content-type"), Some("text/html; charset=utf-8"));
    assert!(d.world.archived.is_empty());
});

t!(a_zip_in_http_1_0_and_to_head {
    let mut d = listing_driver();
    d.send(b"GET /pub/?zip HTTP/1.0\r\n\r\n");
    let r = d.only();
    assert_eq!(r.status, 200);
    assert!(!r.has("transfer-encoding") && !r.has("content-length"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(d.out.contains(&Out::Close));
    let mut d = listing_driver();
    d.send(&req("HEAD", "/pub/?zip", ""));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert!(!d.out.iter().any(|o| matches!(o, Out::SendFile { .. })));
});

t!(the_listing_links_its_archive {
    let mut d = listing_driver();
    d.send(&get("/pub/"));
    let body = String::from_utf8_lossy(&d.only().body).into_owned();
    assert!(body.contains("<a href=\"./?zip\" download>"), "{body}");
});

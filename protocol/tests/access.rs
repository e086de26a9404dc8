//! SPEC "Access control" and "Web pages and browsers" through a connection: a table of
//! users × paths × methods → 200, 401, 403 or 429; the challenge; a password verified
//! once per request that carries it (the runtime remembers it, not the core); the
//! failure window; listings filtered; CORS answers and preflights; `--header`; `--spa`;
//! the root's `404.html`.

mod common;

use std::sync::Arc;

use common::*;
use protocol::sim::Tables;
use protocol::{AccessControl, Config, Cors, DirEntry, Rules};

/// Real hashes are verified by the host; the core only hands them out. These are PHC
/// strings of the right shape.
const ALICE: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Vm/cP5vKzAT0WxgoA3cE+lsZUHKCKkeXi7E3uAzu8SA";
const BOB: &str = "$2y$10$lFVFmtmBHqTMtbHxLb3kCuzTCfqSc9bE47Oq5tr8l3KTFmNqhrqYO";

fn rules() -> Rules {
    Rules::parse_lines(&format!(
        "alice:{ALICE}@/:rw\nalice:{ALICE}@/archive:ro\nbob:{BOB}@/team:rw\n@/public:ro\n"
    ))
    .expect("rules")
}

fn access_config() -> Config {
    let mut c = config();
    c.access = Some(Arc::new(AccessControl::new(rules(), "test-realm")));
    c
}

/// A driver with the rules, where alice's password is `wonderland` and bob's `builder`.
fn driver_auth() -> Driver {
    let mut d = driver_with(access_config());
    d.world
        .passwords
        .insert("alice".into(), "wonderland".into());
    d.world.passwords.insert("bob".into(), "builder".into());
    for path in [
        "public/a.html",
        "archive/old.html",
        "team/plan.html",
        "team/x.json",
    ] {
        d.world.files.insert(path.into(), Tables::file(10, MTIME));
    }
    d
}

fn basic(user: &str, password: &str) -> String {
    // The standard base64 of "user:password".
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Authorization: Basic {out}\r\n")
}

t!(a_table_of_users_paths_and_methods {
    let alice = basic("alice", "wonderland");
    let bob = basic("bob", "builder");
    let wrong = basic("alice", "nope");
    let nobody = basic("mallory", "x");
    let json = "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let cases: &[(&str, &str, &str, u16)] = &[
        // anonymous: /public only, to read
        ("GET", "/public/a.html", "", 200),
        ("HEAD", "/public/a.html", "", 200),
        ("GET", "/index.html", "", 401),
        ("GET", "/team/plan.html", "", 401),
        ("POST", "/upload", json, 401),
        // alice: everything, /archive read-only, /public read-only (the longer rule)
        ("GET", "/index.html", &alice, 200),
        ("GET", "/archive/old.html", &alice, 200),
        ("GET", "/public/a.html", &alice, 200),
        ("POST", "/upload", &format!("{alice}{json}"), 201),
        // bob: /team, and what anyone may read
        ("GET", "/team/plan.html", &bob, 200),
        ("GET", "/public/a.html", &bob, 200),
        ("GET", "/index.html", &bob, 403),
        ("POST", "/upload", &format!("{bob}{json}"), 403),
        // wrong password, unknown user: 401 (the unknown one is verified against a dummy)
        ("GET", "/index.html", &wrong, 401),
        ("GET", "/public/a.html", &wrong, 401),
        ("GET", "/index.html", &nobody, 401),
        // OPTIONS needs no credentials
        ("OPTIONS", "/index.html", "", 204),
    ];
    for &(method, path, extra, want) in cases {
        let mut d = driver_auth();
        d.send(&req(method, path, extra));
        let r = d.only();
        assert_eq!(r.status, want, "{method} {path} with {extra:?}");
        if want == 401 {
            assert_eq!(
                r.header("www-authenticate"),
                Some("Basic realm=\"test-realm\", charset=\"UTF-8\""),
                "{method} {path}"
            );
        } else {
            assert!(!r.has("www-authenticate"));
        }
        // Only a request with credentials asks the runtime to verify them.
        let asked = d.out.iter().filter(|o| matches!(o, Out::Verify(_))).count();
        assert_eq!(asked, usize::from(extra.contains("Authorization")), "{method} {path}");
    }
});

t!(the_unknown_user_is_verified_without_a_hash {
    let mut d = driver_auth();
    d.send(&get_with("/index.html", &basic("mallory", "x")));
    assert_eq!(d.world.verified, ["mallory"]);
    assert_eq!(d.status(), 401);
});

t!(ten_failures_in_a_minute_are_429_until_it_is_over {
    let mut c = access_config();
    let ac = Arc::new(AccessControl::new(rules(), "r"));
    c.access = Some(Arc::clone(&ac));
    let wrong = basic("alice", "nope");
    let mut at = 0;
    for i in 0..10 {
        let mut d = driver_with(c.clone());
        d.set_time(at);
        d.send(&get_with("/index.html", &wrong));
        assert_eq!(d.status(), 401, "attempt {i}");
        at += 1_000;
    }
    // The 11th, right or wrong, from the same address within the minute: 429.
    let mut d = driver_with(c.clone());
    d.world.passwords.insert("alice".into(), "wonderland".into());
    d.set_time(at);
    d.send(&get_with("/index.html", &basic("alice", "wonderland")));
    let r = d.only();
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(d.world.verified.is_empty(), "a blocked address is not verified");
    // Once the minute from the first failure is over (it was counted when its
    // verification ended, 1.5 s in), it is served again.
    let mut d = driver_with(c);
    d.world.passwords.insert("alice".into(), "wonderland".into());
    d.set_time(62_000);
    d.send(&get_with("/index.html", &basic("alice", "wonderland")));
    assert_eq!(d.status(), 200);
});

t!(a_body_waits_for_the_verdict {
    // A denied upload with `Expect: 100-continue` is refused without a 100.
    let mut d = driver_auth();
    let bob = basic("bob", "builder");
    d.send(&req(
        "POST",
        "/upload",
        &format!("{bob}Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"),
    ));
    assert!(!d.out.iter().any(|o| matches!(o, Out::Continue)));
    assert_eq!(d.status(), 403);
    assert!(d.world.uploads.is_empty());
});

t!(a_listing_under_access_control {
    // Under the rules a reader of a directory may read all below it (a longer rule only
    // grants more), so a listing shows all its entries to whoever may list it; the
    // filter (`Connection::may_read`) is there for rules that could say otherwise.
    let mut c = access_config();
    c.dir_listing = true;
    let entry = |name: &str, is_dir: bool| DirEntry {
        name: name.into(),
        is_dir,
        size: 1,
        mtime_secs: MTIME,
    };
    for (who, want) in [("", 401), ("bob", 403), ("alice", 200)] {
        let mut d = driver_with(c.clone());
        d.world.passwords.insert("alice".into(), "wonderland".into());
        d.world.passwords.insert("bob".into(), "builder".into());
        d.world.dirs.insert(
            String::new(),
            Ok((vec![entry("public", true), entry("top.txt", false)], 0)),
        );
        d.world.files.remove("index.html");
        let extra = match who {
            "" => String::new(),
            "bob" => basic("bob", "builder"),
            _ => basic("alice", "wonderland"),
        };
        d.send(&get_with("/", &format!("{extra}Accept: application/json\r\n")));
        let r = d.only();
        assert_eq!(r.status, want, "{who}");
        if want == 200 {
            let listed: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
        }
    }
    // Anonymous may list /public/.
    let mut d = driver_with(c);
    d.world.dirs.insert("public".into(), Ok((vec![entry("a.html", false)], 0)));
    d.world.files.insert("public".into(), Tables::dir(MTIME));
    d.send(&get("/public/"));
    assert_eq!(d.status(), 200);
});

fn cors_config(origins: &[&str], auth: bool) -> Config {
    let mut c = if auth { access_config() } else { config() };
    c.cors = Some(Arc::new(Cors::new(origins).expect("origins")));
    c
}

t!(cors_answers_a_named_origin_and_refuses_a_foreign_one {
    let c = cors_config(&["https://app.example"], false);
    let mut d = driver_with(c.clone());
    d.send(&get_with("/index.html", "Origin: https://app.example\r\n"));
    let r = d.only();
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(r.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("vary") && v == "Origin"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("ETag, Location, Content-Disposition")
    );
    let mut d = driver_with(c);
    d.send(&get_with("/index.html", "Origin: https://evil.example\r\n"));
    let r = d.only();
    assert!(!r.has("access-control-allow-origin"));
    assert!(r.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("vary") && v == "Origin"));
});

t!(a_preflight_is_answered_without_credentials {
    let c = cors_config(&["https://app.example"], true);
    let mut d = driver_with(c.clone());
    d.send(&req(
        "OPTIONS",
        "/upload",
        "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type, x-unknown\r\n",
    ));
    let r = d.only();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(r.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    assert_eq!(r.header("access-control-allow-headers"), Some("content-type"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    // `*` never allows credentials.
    let c = cors_config(&["*"], true);
    let mut d = driver_with(c);
    d.send(&get_with("/public/a.html", "Origin: https://any.example\r\n"));
    let r = d.only();
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(!r.has("access-control-allow-credentials"));
});

t!(extra_headers_go_on_every_answer {
    let mut c = config();
    c.headers = vec![("X-Frame-Options".into(), "DENY".into())];
    for path in ["/index.html", "/missing.html", "/notes.qqq"] {
        let mut d = driver_with(c.clone());
        d.send(&get(path));
        assert_eq!(d.only().header("x-frame-options"), Some("DENY"), "{path}");
    }
});

t!(spa_routes_get_the_index_page {
    let mut c = config();
    c.spa = true;
    let page = "Accept: text/html,application/xhtml+xml\r\n";
    let mut d = driver_with(c.clone());
    d.send(&get_with("/app/settings", page));
    let r = d.only();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(d.out.contains(&Out::Open("index.html".into())));
    // Not for a path with an extension, nor for a client that does not ask for HTML.
    for (path, extra) in [("/app/missing.js", page), ("/app/settings", "Accept: */*\r\n")] {
        let mut d = driver_with(c.clone());
        d.send(&get_with(path, extra));
        assert_eq!(d.status(), 404, "{path}");
    }
    // Off by default.
    let mut d = driver();
    d.send(&get_with("/app/settings", page));
    assert_eq!(d.status(), 404);
});

t!(the_roots_404_page_is_the_body_of_every_404 {
    let mut d = driver();
    d.world.files.insert("404.html".into(), Tables::file(123, MTIME));
    d.send(&get("/missing.html"));
    let r = d.only();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("123"));
    assert_eq!(d.out.last(), Some(&Out::SendFile { offset: 0, len: 123 }));
    // A hidden name and a directory too; a POST elsewhere keeps the usual page.
    for path in ["/.env", "/docs"] {
        let mut d = driver();
        d.world.files.insert("404.html".into(), Tables::file(123, MTIME));
        d.send(&get(path));
        assert_eq!(d.only().header("content-length"), Some("123"), "{path}");
    }
    let mut d = driver();
    d.world.files.insert("404.html".into(), Tables::file(123, MTIME));
    d.send(&req("POST", "/elsewhere", "Content-Length: 0\r\n"));
    assert_eq!(d.status(), 404);
    assert_ne!(d.only().header("content-length"), Some("123"));
});

t!(a_keep_alive_connection_verifies_its_credentials_once {
    let ac = Arc::new(AccessControl::new(rules(), "r"));
    let mut c = config();
    c.access = Some(Arc::clone(&ac));
    let mut d = driver_with(c);
    d.world.passwords.insert("alice".into(), "wonderland".into());
    d.world.passwords.insert("bob".into(), "builder".into());
    let alice = basic("alice", "wonderland");
    for _ in 0..3 {
        d.send(&get_with("/index.html", &alice));
    }
    d.send(&get_with("/index.html", &basic("bob", "builder")));
    let statuses: Vec<u16> = d.responses().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 403]);
    // alice once, then bob: a new value is verified again.
    assert_eq!(d.world.verified, ["alice", "bob"]);
    // A reload forgets it: the same credentials are verified again.
    ac.replace(rules());
    d.send(&get_with("/index.html", &alice));
    assert_eq!(d.world.verified, ["alice", "bob", "alice"]);
});

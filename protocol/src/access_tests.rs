//! Tests of `access`: rule syntax, the decision table of SPEC "Access control", the
//! `Basic` header and the failure limiter.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Real hashes, each verified by `host::auth`'s tests: argon2id from `--hash-password`
/// (OWASP parameters), an `htpasswd -nbB` line's `$2y$`, and Openwall's `$2a$` test
/// vector as `$2b$`.
const ARGON: &str = "$argon2id$v=19$m=19456,t=2,p=1$Qv7noOM/oJneoHxRjPDsNg$JSkNbc328iJYpz2aORrG51W/6OjasWah5lkgY3jedvI";
const BCRYPT: &str = "$2y$05$aQbLTEW1gK0RSKxae/gQF.jD6vDdlRW2wUbHdInzx/WaZJwAy4keu";
const BCRYPT_B: &str = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
const BCRYPT_A: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

fn rules(lines: &[String]) -> Rules {
    Rules::new(lines.iter().map(|l| parse_rule(l).unwrap()).collect()).unwrap()
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rule_syntax() {
    let r = parse_rule(&format!("alice:{ARGON}@/docs:rw")).unwrap();
    assert_eq!(r.user.as_deref(), Some("alice"));
    assert_eq!(r.hash.as_deref(), Some(ARGON));
    assert_eq!((r.path.as_str(), r.perm), ("/docs", Perm::Rw));
    let r = parse_rule(&format!("bob:{BCRYPT}@/")).unwrap();
    assert_eq!(
        (r.hash.as_deref(), r.path.as_str(), r.perm),
        (Some(BCRYPT), "/", Perm::Ro)
    );
    let r = parse_rule(&format!("bob:{BCRYPT_B}@:rw")).unwrap();
    assert_eq!((r.path.as_str(), r.perm), ("/", Perm::Rw));
    let r = parse_rule(&format!("carol:{BCRYPT_A}@/c")).unwrap();
    assert_eq!((r.hash.as_deref(), r.path.as_str()), (Some(BCRYPT_A), "/c"));
    // An htpasswd -B line is a rule: read access to everything.
    let r = parse_rule(&format!("user:{BCRYPT}")).unwrap();
    assert_eq!((r.path.as_str(), r.perm), ("/", Perm::Ro));
    let r = parse_rule(&format!("user:{BCRYPT}:rw")).unwrap();
    assert_eq!((r.path.as_str(), r.perm), ("/", Perm::Rw));
    for (text, path, perm) in [
        ("@/public", "/public", Perm::Ro),
        ("@/public/:ro", "/public", Perm::Ro),
        ("@//a//b/:rw", "/a/b", Perm::Rw),
        ("@", "/", Perm::Ro),
        ("@/", "/", Perm::Ro),
        ("  @/x  ", "/x", Perm::Ro),
        ("@/mail/@bob:rw", "/mail/@bob", Perm::Rw),
        ("@/a:b/c", "/a:b/c", Perm::Ro),
        ("@/ünï cödé", "/ünï cödé", Perm::Ro),
    ] {
        let r = parse_rule(text).unwrap();
        assert_eq!(
            (r.user, r.hash, r.path.as_str(), r.perm),
            (None, None, path, perm),
            "{text}"
        );
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rule_errors() {
    use RuleError::*;
    let cases: Vec<(String, RuleError)> = vec![
        ("".into(), Empty),
        ("   ".into(), Empty),
        ("alice@/x".into(), MissingHash),
        ("alice:@/x".into(), MissingHash),
        ("alice".into(), MissingHash),
        (format!(":{ARGON}@/"), EmptyUser),
        ("alice:secret@/".into(), NotAHash),
        ("alice:hunter2".into(), NotAHash),
        (
            "alice:$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA@/".into(),
            NotAHash,
        ),
        (
            "alice:$argon2id$v=19$m=19456$c2FsdHNhbHQ$aGFzaA@/".into(),
            NotAHash,
        ),
        ("alice:$2y$05$short@/".into(), NotAHash),
        (
            "alice:$2x$05$aQbLTEW1gK0RSKxae/gQF.jD6vDdlRW2wUbHdInzx/WaZJwAy4keu".into(),
            NotAHash,
        ),
        (format!("alice:{ARGON}@/x:rx"), BadPerm("rx".into())),
        ("@/x:RW".into(), BadPerm("RW".into())),
        ("@relative".into(), BadPath("relative".into())),
        ("@/a/../b".into(), BadPath("/a/../b".into())),
        ("@/a/./b".into(), BadPath("/a/./b".into())),
        ("@/a\\b".into(), BadPath("/a\\b".into())),
        (format!("al\tice:{ARGON}@/"), BadUser("al\tice".into())),
    ];
    for (text, want) in cases {
        assert_eq!(parse_rule(&text), Err(want), "{text}");
    }
    let hint = parse_rule("alice:secret@/").unwrap_err().to_string();
    assert!(hint.contains("--hash-password"), "{hint}");
    assert!(
        !hint.contains("secret"),
        "a password never appears in an error"
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rule_files() {
    let text = format!(
        "# who may do what\n\n  alice:{ARGON}@/:rw\r\nalice:{ARGON}@/archive:ro\n  # comment\n@/public\nbob:{BCRYPT}\n"
    );
    let rules = Rules::parse_lines(&text).unwrap();
    assert_eq!(rules.rules().len(), 4);
    assert_eq!(rules.hash_of("alice"), Some(ARGON));
    assert_eq!(rules.hash_of("bob"), Some(BCRYPT));
    assert_eq!(rules.hash_of("carol"), None);
    assert!(!rules.is_empty());
    assert!(Rules::parse_lines("# nothing\n\n").unwrap().is_empty());
    let bad = format!("@/public\nalice:{ARGON}@/\nalice:hunter2@/x\n");
    assert_eq!(Rules::parse_lines(&bad), Err((3, RuleError::NotAHash)));
    let conflict = format!("alice:{ARGON}@/\nalice:{BCRYPT}@/x\n");
    assert_eq!(
        Rules::parse_lines(&conflict),
        Err((2, RuleError::ConflictingHash("alice".into())))
    );
    let mut set = Rules::default();
    set.push(parse_rule(&format!("alice:{ARGON}@/")).unwrap())
        .unwrap();
    set.push(parse_rule(&format!("alice:{ARGON}@/b:rw")).unwrap())
        .unwrap();
    let other = parse_rule(&format!("alice:{BCRYPT}@/c")).unwrap();
    assert_eq!(
        set.push(other.clone()),
        Err(RuleError::ConflictingHash("alice".into()))
    );
    assert_eq!(
        Rules::new(vec![other.clone(), other]).map(|r| r.rules().len()),
        Ok(2)
    );
    assert_eq!(set.rules().len(), 2);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn decision_table() {
    use Access::{Read as R, Write as W};
    use Decision::{Allow as A, Forbidden as F, Unauthorized as U};
    let set = rules(&[
        format!("alice:{ARGON}@/:rw"),
        format!("alice:{ARGON}@/archive:ro"),
        format!("bob:{BCRYPT}@/uploads:rw"),
        format!("bob:{BCRYPT}@/team"),
        "@/public:ro".into(),
        "@/drop:rw".into(),
    ]);
    let table: &[(Option<&str>, &str, Access, Decision)] = &[
        // alice: rw everywhere but /archive, which is read-only for her (SPEC's example).
        (Some("alice"), "/", R, A),
        (Some("alice"), "/index.html", W, A),
        (Some("alice"), "/archive", R, A),
        (Some("alice"), "/archive/2020/a.txt", R, A),
        (Some("alice"), "/archive/2020/a.txt", W, F),
        (Some("alice"), "/archive", W, F),
        (Some("alice"), "/archived/x", W, A), // segment-wise: /archive does not cover it
        (Some("alice"), "archive/x", W, F),   // the leading slash is optional
        // The longest prefix among her rules and the anonymous ones decides (SPEC): the
        // anonymous `@/public:ro` makes /public read-only for alice too.
        (Some("alice"), "/public/a.css", W, F),
        (Some("alice"), "/public/a.css", R, A),
        // bob: his own grants plus the anonymous ones.
        (Some("bob"), "/uploads/x.json", W, A),
        (Some("bob"), "/uploads", R, A),
        (Some("bob"), "/team/plan.md", R, A),
        (Some("bob"), "/team/plan.md", W, F),
        (Some("bob"), "/public/a.css", R, A),
        (Some("bob"), "/public/a.css", W, F),
        (Some("bob"), "/drop/f.bin", W, A),
        (Some("bob"), "/", R, F),
        (Some("bob"), "/index.html", R, F),
        (Some("bob"), "/uploadsX", R, F),
        // anonymous: /public to read, /drop to write, nothing else.
        (None, "/public", R, A),
        (None, "/public/", R, A),
        (None, "/public/deep/er/a.png", R, A),
        (None, "/public/a.png", W, U),
        (None, "/publicity", R, U),
        (None, "/drop/x", W, A),
        (None, "/drop/x", R, A),
        (None, "/", R, U),
        (None, "/archive/a.txt", R, U),
        // an unknown (never verified) user name is treated like any verified one.
        (Some("mallory"), "/public/a", R, A),
        (Some("mallory"), "/archive", R, F),
    ];
    for &(user, path, access, want) in table {
        assert_eq!(
            set.decide(path, access, user),
            want,
            "{user:?} {path} {access:?}"
        );
        if access == R {
            assert_eq!(set.may_read(path, user), want == A, "{user:?} {path}");
        }
    }
    // No rules: open.
    let open = Rules::default();
    for user in [None, Some("alice")] {
        for access in [R, W] {
            assert_eq!(open.decide("/any/where", access, user), A);
        }
    }
    // Ties at the same length: the strongest wins; a longer rule decides even when it
    // is anonymous and weaker (SPEC: the longest prefix among the requester's rules and
    // the anonymous ones sets the permission).
    let tie = rules(&[
        "@/:ro".into(),
        format!("alice:{ARGON}@/:rw"),
        "@/x:ro".into(),
    ]);
    assert_eq!(tie.decide("/z", W, Some("alice")), A);
    assert_eq!(tie.decide("/x/y", W, Some("alice")), F);
    assert_eq!(tie.decide("/x/y", W, None), U);
    assert_eq!(tie.decide("/x/y", R, None), A);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn basic_header() {
    let ok = |v: &str| parse_basic(v.as_bytes());
    let pair = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
    // `curl -u alice:secret` and a browser send exactly this.
    assert_eq!(ok("Basic YWxpY2U6c2VjcmV0"), pair("alice", "secret"));
    assert_eq!(ok("basic YWxpY2U6c2VjcmV0"), pair("alice", "secret"));
    assert_eq!(ok("BASIC   YWxpY2U6c2VjcmV0  "), pair("alice", "secret"));
    // RFC 7617's example, and a password with colons.
    assert_eq!(
        ok("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        pair("Aladdin", "open sesame")
    );
    assert_eq!(
        ok("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ"),
        pair("Aladdin", "open sesame")
    );
    assert_eq!(ok("Basic YTpiOmM6"), pair("a", "b:c:"));
    assert_eq!(ok("Basic YTo="), pair("a", ""));
    // UTF-8 (RFC 7617 §2.1's charset="UTF-8"): "test:123£".
    assert_eq!(ok("Basic dGVzdDoxMjPCow=="), pair("test", "123£"));
    for bad in [
        "",
        "Basic",
        "Basic ",
        "Bearer YWxpY2U6c2VjcmV0",
        "Basic YWxpY2U6c2VjcmV0=",
        "Basic YWxpY2U6c2VjcmV0===",
        "Basic YWxp Y2U6c2VjcmV0",
        "Basic YWxpY2U",      // no colon
        "Basic OnNlY3JldA==", // empty user
        "Basic /w==",         // not UTF-8
        "Basic A",
        "Basic ====",
        "Basic YWxpY2U6c2VjcmV0!",
    ] {
        assert_eq!(ok(bad), None, "{bad:?}");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn base64_round_trips() {
    let enc = |data: &[u8]| {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | ((b as u32) << (16 - 8 * i)));
            for i in 0..4 {
                out.push(if i <= c.len() {
                    A[((n >> (18 - 6 * i)) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        out
    };
    let data: Vec<u8> = (0..=255u8).collect();
    for len in 0..data.len() {
        let text = enc(&data[..len]);
        assert_eq!(
            base64_decode(text.as_bytes()).as_deref(),
            Some(&data[..len]),
            "{text}"
        );
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn limiter_window() {
    let lim = FailureLimiter::new(16);
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let t0 = 1_000_000;
    for i in 0..9 {
        lim.record_failure(a, t0 + i * 1000);
        assert_eq!(lim.retry_after(a, t0 + i * 1000), None);
    }
    lim.record_failure(a, t0 + 9_500);
    assert_eq!(lim.retry_after(a, t0 + 9_500), Some(51));
    assert_eq!(lim.retry_after(a, t0 + 58_999), Some(2));
    assert_eq!(lim.retry_after(a, t0 + 59_999), Some(1));
    assert_eq!(lim.retry_after(a, t0 + 60_000), None);
    assert_eq!(
        lim.retry_after(b, t0 + 9_500),
        None,
        "other peers are not affected"
    );
    // After the window, counting starts again.
    lim.record_failure(a, t0 + 60_000);
    assert_eq!(lim.retry_after(a, t0 + 60_001), None);
    // Ten failures spread over more than the window never block.
    let c = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    for i in 0..30 {
        lim.record_failure(c, t0 + i * 7_000);
        assert_eq!(lim.retry_after(c, t0 + i * 7_000), None, "{i}");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn limiter_is_bounded() {
    let lim = FailureLimiter::new(64);
    let victim = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    for _ in 0..10 {
        lim.record_failure(victim, 5_000);
    }
    // A spray from many addresses: the table never grows past its capacity, and the
    // entry whose window started first goes first.
    for i in 0..10_000u32 {
        lim.record_failure(
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
            6_000 + u64::from(i),
        );
        assert!(lim.len() <= 64);
    }
    assert_eq!(lim.len(), 64);
    assert_eq!(
        lim.retry_after(victim, 7_000),
        None,
        "evicted as the oldest"
    );
    let last = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 9_999));
    assert!(lim.lock().contains_key(&last));
    // Expired entries make room before live ones are evicted.
    let lim = FailureLimiter::new(2);
    let (x, y, z) = (
        IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
        IpAddr::V4(Ipv4Addr::new(2, 2, 2, 2)),
        IpAddr::V4(Ipv4Addr::new(3, 3, 3, 3)),
    );
    for _ in 0..10 {
        lim.record_failure(y, 30_000);
    }
    lim.record_failure(x, 0);
    lim.record_failure(z, 70_000);
    assert_eq!(lim.len(), 2);
    assert_eq!(lim.retry_after(y, 70_000), Some(20));
    assert!(FailureLimiter::new(0).is_empty());
    assert_eq!(FailureLimiter::default().capacity, FailureLimiter::CAPACITY);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn pseudo_random_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as u8
    };
    let alphabet = b"@:$/.=,ab2yrwoBasic +\\\n\r\t#\x00\xff";
    let set = rules(&[format!("alice:{ARGON}@/a:rw"), "@/b".into()]);
    for _ in 0..3_000 {
        let len = next() as usize % 64;
        let raw: Vec<u8> = (0..len)
            .map(|_| match next() % 4 {
                0 => next(),
                _ => alphabet[next() as usize % alphabet.len()],
            })
            .collect();
        let text = String::from_utf8_lossy(&raw);
        let _ = parse_rule(&text);
        let _ = Rules::parse_lines(&text);
        let _ = parse_basic(&raw);
        let _ = base64_decode(&raw);
        let _ = set.decide(&text, Access::Write, Some("alice"));
        let _ = set.may_read(&text, None);
    }
}

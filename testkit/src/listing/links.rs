//! Reading a listing page: its links, their text, where they lead, the order of the
//! entries, and every link followed back over the wire.

use std::fs;
use std::path::Path;

use super::page;
use crate::Server;

/// Every `<a href="HREF">TEXT</a>` of a page, in order: the href as written, the text
/// with its character references decoded. Panics on markup a name broke.
pub(super) fn links(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in page.split("<a href=\"").skip(1) {
        let (href, rest) = part
            .split_once('"')
            .unwrap_or_else(|| panic!("an unterminated href in {part:?}"));
        // Attributes may follow the href, never markup; the folder's zip link
        // (`download`) is not an entry, and not one of the links.
        let (attrs, after) = rest
            .split_once('>')
            .filter(|(attrs, _)| !attrs.contains(['<', '"']))
            .unwrap_or_else(|| panic!("a link {href:?} not followed by `>TEXT</a>`: {rest:?}"));
        if attrs.split_whitespace().any(|a| a == "download") {
            continue;
        }
        let text = Some(after)
            .and_then(|r| r.split_once("</a>"))
            .unwrap_or_else(|| panic!("a link {href:?} not followed by `>TEXT</a>`: {rest:?}"))
            .0;
        assert!(
            !text.contains(['<', '>', '"']),
            "markup or a raw quote in a link's text: {text:?}"
        );
        out.push((href.to_string(), unescape(text)));
    }
    out
}

/// HTML text with its character references decoded (named ones of the escaping set,
/// decimal and hexadecimal ones).
pub(super) fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find(';')
            .unwrap_or_else(|| panic!("a bare `&` in HTML text: {text:?}"));
        let entity = &after[..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code =
                    if let Some(hex) = entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                code.and_then(char::from_u32)
                    .unwrap_or_else(|| panic!("unknown reference &{entity}; in {text:?}"))
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A name as a page shows it: control characters as their Control Pictures symbols.
pub(super) fn shown(name: &str) -> String {
    name.chars()
        .map(|c| match u32::from(c) {
            n @ 0..=0x1f => char::from_u32(0x2400 + n).unwrap_or('?'),
            0x7f => '\u{2421}',
            _ => c,
        })
        .collect()
}

/// An href resolved against the URL path `base` (ending in `/`), as a browser does
/// (RFC 3986 §5.2, for paths): the result keeps the href's percent-encoding as is.
pub(super) fn resolve(base: &str, href: &str) -> String {
    let joined = if href.starts_with('/') {
        href.to_string()
    } else {
        format!("{}{href}", &base[..=base.rfind('/').expect("a base path")])
    };
    let trailing = joined.ends_with('/') || joined.ends_with("/.") || joined.ends_with("/..");
    let mut segments: Vec<&str> = Vec::new();
    for seg in joined.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.retain(|s| !s.is_empty());
    let mut out = format!("/{}", segments.join("/"));
    if trailing && out != "/" {
        out.push('/');
    }
    out
}

/// A URL path with its percent-escapes decoded (bytes: a name may be any UTF-8).
pub(super) fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII escape");
            out.push(u8::from_str_radix(hex, 16).expect("a hex escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("a UTF-8 path")
}

/// Whether an href is written only with characters a URL may carry unencoded.
pub(super) fn is_encoded(href: &str) -> bool {
    href.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
}

/// The visible entries of a directory as a listing orders them: directories first
/// (with their slash), then files, each sorted by name (bytes).
pub(super) fn expected_order(dirs: &[&str], files: &[&str]) -> Vec<String> {
    let mut dirs: Vec<String> = dirs.iter().map(|d| format!("{d}/")).collect();
    let mut files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    dirs.sort_by(|a, b| a.trim_end_matches('/').cmp(b.trim_end_matches('/')));
    files.sort();
    dirs.extend(files);
    dirs
}

/// Follows every link of the listing at `url` (which lists `dir` of the root), down to
/// `depth` directories: each file link gives that file's bytes, each directory link a
/// listing of it. Returns how many links it followed.
pub(super) fn follow_every_link(s: &Server, url: &str, dir: &Path, depth: usize) -> usize {
    let (_, links) = page(s, url);
    let mut followed = 0;
    for (href, text) in links {
        assert!(
            is_encoded(&href),
            "href {href:?} on {url} is not percent-encoded"
        );
        let target = resolve(url, &href);
        if href == "../" {
            let r = s.get(&target);
            r.expect_status(200);
            followed += 1;
            continue;
        }
        let name = percent_decode(
            target
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(""),
        );
        let expected_text = if target.ends_with('/') {
            format!("{}/", shown(&name))
        } else {
            shown(&name)
        };
        assert_eq!(
            text, expected_text,
            "the text of the link {href:?} on {url}"
        );
        let on_disk = dir.join(&name);
        if target.ends_with('/') {
            assert!(
                on_disk.is_dir(),
                "{href:?} on {url}: {} is not a directory",
                on_disk.display()
            );
            if depth > 0 {
                followed += follow_every_link(s, &target, &on_disk, depth - 1);
            } else {
                page(s, &target);
            }
        } else {
            let r = s.get(&target);
            assert_eq!(
                r.status, 200,
                "following {href:?} on {url} (GET {target}): {r:?}"
            );
            let bytes = fs::read(&on_disk).expect("the linked file");
            assert_eq!(
                r.body,
                bytes,
                "following {href:?} on {url} (GET {target}) gave other bytes than {}",
                on_disk.display()
            );
            assert_eq!(
                r.header_count("set-cookie"),
                0,
                "a name's bytes reached the headers: {r:?}"
            );
        }
        followed += 1;
    }
    followed
}

/// `unix_secs` as RFC 3339 in UTC, the JSON's `modified`.
pub(super) fn rfc3339(unix_secs: u64) -> String {
    let (days, rem) = ((unix_secs / 86_400) as i64, unix_secs % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

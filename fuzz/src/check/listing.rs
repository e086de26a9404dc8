//! A `200` directory listing: its type (JSON exactly when `Accept` prefers it), its
//! `Content-Length` for `HEAD`, and its body: the visible entries, in order, escaped,
//! the "N more" line, and a page that depends on nothing hidden.

use protocol::listing::MAX_SHOWN;
use protocol::{DirEntry, Listing};

use crate::shadow::ShadowRequest;

/// The entries a listing shows, in order (directories first, then by name), never a
/// hidden one; and how many it must say it left out (past [`MAX_SHOWN`], and unread).
fn expected_entries<'a>(listing: &Listing<'a>) -> (Vec<&'a DirEntry>, u64) {
    let mut shown: Vec<&DirEntry> = listing
        .entries
        .iter()
        .filter(|e| !e.name.starts_with('.') && !e.name.is_empty() && !e.name.contains('/'))
        .collect();
    shown.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    let left_out = (shown.len().saturating_sub(MAX_SHOWN) as u64).saturating_add(listing.unread);
    shown.truncate(MAX_SHOWN);
    (shown, left_out)
}

/// A `200` listing of directory `dir` (a `SafePath`, empty for the root) for `req`.
/// JSON when `Accept` prefers it: an array whose names and types are exactly the
/// visible entries, in order. Else HTML: every `href` percent-encoded (unreserved
/// characters, `%XX`, `/`), decoding to exactly the visible entries in order; link texts
/// and the title escaped; the "N more" line exactly when entries were left out; and the
/// page the same with the hidden entries removed and the rest in reverse order (it
/// depends on nothing of a hidden entry, nor on the order read). A `HEAD` gets no body
/// and the `Content-Length` of the `GET`.
pub fn check_listing(
    dir: &str,
    req: &ShadowRequest,
    content_type: &str,
    content_length: u64,
    body: &[u8],
    listing: &Listing<'_>,
) {
    let title = if dir.is_empty() {
        "/".to_string()
    } else {
        format!("/{dir}/")
    };
    let json = match content_type {
        "application/json" => true,
        "text/html; charset=utf-8" => false,
        other => panic!("a listing of type {other:?}"),
    };
    assert_eq!(
        json, req.accept_json,
        "a {content_type} listing for Accept preferring JSON: {}",
        req.accept_json
    );
    if req.is_head {
        assert!(body.is_empty(), "a listing body for HEAD");
        let full = if json {
            protocol::listing::json(listing)
        } else {
            protocol::listing::html(&title, listing)
        };
        assert_eq!(
            content_length,
            full.len() as u64,
            "HEAD's Content-Length differs from GET's"
        );
    } else if json {
        check_json(body, listing);
    } else {
        check_html(dir, &title, body, listing);
    }
}

/// A JSON listing: an array of the visible entries in order, with their type, size and
/// RFC 3339 date.
fn check_json(body: &[u8], listing: &Listing<'_>) {
    let (shown, _) = expected_entries(listing);
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "a JSON listing that does not parse ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let items = v.as_array().expect("a JSON listing that is not an array");
    let names: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["name"].as_str().expect("a JSON entry without a name"),
                i["type"].as_str().expect("a JSON entry without a type"),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = shown
        .iter()
        .map(|e| (e.name.as_str(), if e.is_dir { "dir" } else { "file" }))
        .collect();
    assert!(
        names == expected,
        "JSON entries {names:?}, expected {expected:?}"
    );
    for (item, e) in items.iter().zip(&shown) {
        assert_eq!(
            item["size"].as_u64(),
            Some(e.size),
            "JSON size of {:?}",
            e.name
        );
        let modified = item["modified"].as_str().expect("JSON modified");
        assert!(
            modified.len() == 20 && modified.ends_with('Z') && modified.as_bytes()[10] == b'T',
            "JSON modified {modified:?}"
        );
    }
}

/// An HTML listing: the title, `../` first except at the root, one link per visible
/// entry in order, the "N more" line, and nothing hidden.
fn check_html(dir: &str, title: &str, body: &[u8], listing: &Listing<'_>) {
    let (shown, left_out) = expected_entries(listing);
    let page = std::str::from_utf8(body).expect("an HTML listing that is not UTF-8");
    let title_text = page
        .split_once("<title>Index of ")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t)
        .expect("a listing without its title");
    check_html_text(title_text, title);
    let links: Vec<(&str, &str)> = page
        .split("<a href=\"")
        .skip(1)
        .map(|s| {
            let (href, rest) = s.split_once('"').expect("an unterminated href");
            let rest = rest.split_once('>').expect("an unterminated link tag").1;
            let text = rest.split_once("</a>").expect("an unterminated link").0;
            (href, text)
        })
        // The folder's own zip link (with --dir-listing, `?zip`) is not an entry.
        .filter(|(href, _)| *href != "./?zip")
        .collect();
    let rows = match links.split_first() {
        Some((("../", "../"), rest)) if !dir.is_empty() => rest,
        _ if dir.is_empty() => &links[..],
        _ => panic!("a listing of {title:?} without its ../ link first"),
    };
    check_links(rows, &shown);
    let more = format!("<p class=\"more\">{left_out} more entries not shown.</p>");
    assert_eq!(
        page.contains("class=\"more\""),
        left_out > 0,
        "{left_out} entries left out, and the page says otherwise"
    );
    if left_out > 0 {
        assert!(page.contains(&more), "the page does not say {more:?}");
    }
    check_nothing_hidden(title, body, listing);
}

/// One link per visible entry, in order: `./` + the name percent-encoded (+ `/` for a
/// directory), and the name escaped as its text.
fn check_links(rows: &[(&str, &str)], shown: &[&DirEntry]) {
    assert_eq!(
        rows.len(),
        shown.len(),
        "{} links for {} visible entries",
        rows.len(),
        shown.len()
    );
    for ((href, text), e) in rows.iter().zip(shown) {
        let slash = if e.is_dir { "/" } else { "" };
        let encoded = href
            .strip_prefix("./")
            .and_then(|h| h.strip_suffix(slash))
            .unwrap_or_else(|| panic!("href {href:?} for {:?}", e.name));
        assert!(
            percent_decode_unreserved(encoded).as_deref() == Some(e.name.as_bytes()),
            "href {href:?} is not {:?} percent-encoded (or not in order)",
            e.name
        );
        let name = text
            .strip_suffix(slash)
            .unwrap_or_else(|| panic!("link text {text:?} for {:?}", e.name));
        check_html_text(name, &e.name);
    }
}

/// The page does not depend on hidden entries (so no hidden name, nor anything derived
/// from one, is in it), nor on the order the entries were read in: it is the page of
/// the visible entries alone, in reverse order.
fn check_nothing_hidden(title: &str, body: &[u8], listing: &Listing<'_>) {
    let visible: Vec<DirEntry> = listing
        .entries
        .iter()
        .rev()
        .filter(|e| !e.name.starts_with('.'))
        .cloned()
        .collect();
    let clean = protocol::listing::html(
        title,
        &Listing {
            entries: &visible,
            unread: listing.unread,
        },
    );
    if clean != body {
        let at = clean.iter().zip(body).take_while(|(a, b)| a == b).count();
        let around = |p: &[u8]| {
            let start = at.saturating_sub(120);
            String::from_utf8_lossy(&p[start..p.len().min(at + 120)]).into_owned()
        };
        panic!(
            "the page changes with hidden entries or with the order of entries, at byte \
             {at}:\n  served: {:?}\n  without hidden, reversed: {:?}",
            around(body),
            around(&clean)
        );
    }
}

/// Text in HTML: no raw `<`, `>`, quote or control character, `&` only in `&amp;`,
/// `&lt;`, `&gt;`, `&quot;`, `&#39;`; unescaped it is `expected`, each control character
/// shown as one other character.
fn check_html_text(text: &str, expected: &str) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        assert!(
            !matches!(c, '<' | '>' | '"' | '\'') && !c.is_control(),
            "raw {c:?} in HTML text {text:?}"
        );
        if c == '&' {
            let (entity, ch) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
            ]
            .into_iter()
            .find(|(entity, _)| rest.starts_with(entity))
            .unwrap_or_else(|| panic!("a raw & in HTML text {text:?}"));
            out.push(ch);
            rest = &rest[entity.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let (got, want): (Vec<char>, Vec<char>) = (out.chars().collect(), expected.chars().collect());
    assert!(
        got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g == w || w.is_control()),
        "HTML text {text:?} does not show {expected:?}"
    );
}

/// Decodes an href segment that may hold only unreserved characters and `%XX`; `None`
/// for any other byte (a `/`, a quote, a space, a raw non-ASCII byte) or a bad escape.
fn percent_decode_unreserved(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

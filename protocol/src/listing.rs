//! Directory listings (`--dir-listing`): the entries a runtime read, filtered, sorted
//! and rendered as an HTML page in the bundled page's style, or as JSON for scripts.
//! The runtime reads the directory (and leaves out symlinks that lead out of the root);
//! everything else — hidden names, order, escaping, the page — is decided here.

use std::fmt::Write as _;

use percent_encoding::utf8_percent_encode;

use crate::target::SEGMENT;

/// One entry of a directory, as the runtime found it (a symlink as what it points to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    pub mtime_secs: u64,
}

/// What the runtime read of a directory: the entries (at most [`MAX_READ`]), and how
/// many more it did not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listing<'a> {
    pub entries: &'a [DirEntry],
    pub unread: u64,
}

/// The most entries a runtime reads from one directory.
pub const MAX_READ: usize = 100_000;
/// The most entries a page shows; the rest are counted ("N more not shown").
pub const MAX_SHOWN: usize = 10_000;

/// The entries worth showing, in order: directories first, then files, each by name;
/// never a hidden one (a name starting with `.`). Also how many were left out by the cap.
fn visible<'a>(listing: &Listing<'a>) -> (Vec<&'a DirEntry>, u64) {
    let mut shown: Vec<&DirEntry> = listing
        .entries
        .iter()
        .filter(|e| !e.name.starts_with('.') && !e.name.is_empty() && !e.name.contains('/'))
        .collect();
    shown.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    let left_out = (shown.len().saturating_sub(MAX_SHOWN) as u64).saturating_add(listing.unread);
    shown.truncate(MAX_SHOWN);
    (shown, left_out)
}

/// The HTML page for the directory at URL path `dir` (decoded, ending in `/`).
pub fn html(dir: &str, listing: &Listing<'_>) -> Vec<u8> {
    let (entries, left_out) = visible(listing);
    let title = escape(dir);
    let mut page = String::with_capacity(1024 + entries.len() * 160);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Index of {title}</h1>\n<table>\n<thead><tr><th>Name</th><th class=\"n\">Size</th>\
         <th>Modified</th></tr></thead>\n<tbody>\n"
    );
    if dir != "/" {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td class=\"n\">—</td><td></td></tr>\n");
    }
    for e in &entries {
        let href = utf8_percent_encode(&e.name, SEGMENT);
        let slash = if e.is_dir { "/" } else { "" };
        let size = if e.is_dir {
            "—".to_string()
        } else {
            human_size(e.size)
        };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"./{href}{slash}\">{}{slash}</a></td><td class=\"n\">{size}</td>\
             <td>{}</td></tr>",
            escape(&e.name),
            rfc3339(e.mtime_secs)
                .replace('T', " ")
                .trim_end_matches('Z'),
        );
    }
    page.push_str("</tbody>\n</table>\n");
    page.push_str(
        "<p class=\"zip\"><a href=\"./?zip\" download>Download this folder as a .zip</a></p>\n",
    );
    if left_out > 0 {
        let _ = writeln!(
            page,
            "<p class=\"more\">{left_out} more entries not shown.</p>"
        );
    }
    page.push_str("</body>\n</html>\n");
    page.into_bytes()
}

/// The JSON array for scripts: `{"name", "type": "file"|"dir", "size", "modified"}`.
pub fn json(listing: &Listing<'_>) -> Vec<u8> {
    let (entries, _) = visible(listing);
    let mut out = String::with_capacity(2 + entries.len() * 96);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // The name through serde_json, for its string escaping.
        let name = serde_json::to_string(&e.name).unwrap_or_else(|_| "\"\"".into());
        let _ = write!(
            out,
            "{{\"name\":{name},\"type\":\"{}\",\"size\":{},\"modified\":\"{}\"}}",
            if e.is_dir { "dir" } else { "file" },
            e.size,
            rfc3339(e.mtime_secs)
        );
    }
    out.push(']');
    out.into_bytes()
}

/// Text in HTML (element content and quoted attribute values).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Shown as the Control Pictures symbols (a newline as ␊); the link still
            // carries the real bytes.
            c if u32::from(c) < 0x20 => {
                out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('?'))
            }
            '\u{7f}' => out.push('\u{2421}'),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// `unix_secs` as RFC 3339 in UTC (`2026-12-01T06:27:36Z`).
pub fn rfc3339(unix_secs: u64) -> String {
    let secs = unix_secs.min(crate::response::MAX_HTTP_DATE);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
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

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f6f8fb;--fg:#1b2430;--muted:#566374;--card:#fff;\
--line:#d5dce6;--accent:#1f5ea8}\
@media (prefers-color-scheme:dark){:root{--bg:#12171e;--fg:#e6ebf1;--muted:#a3afbd;\
--card:#1b222c;--line:#334052;--accent:#6aa7ef}}\
body{margin:0 auto;max-width:52rem;padding:1.5rem 1rem 2rem;background:var(--bg);\
color:var(--fg);font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif}\
h1{font-size:1.4rem;word-break:break-all}\
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);\
border-radius:8px}\
th,td{padding:.35rem .7rem;border-bottom:1px solid var(--line);text-align:left}\
th{color:var(--muted);font-weight:600}td.n,th.n{text-align:right;white-space:nowrap}\
a{color:var(--accent);text-decoration:none;word-break:break-all}a:hover{text-decoration:underline}\
.more{color:var(--muted)}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_099_256), "2026-12-01T04:27:36Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }
}

//! Content types by file extension (SPEC "Requests"): the seed's rules for html, images
//! and text; `application/json` for uploads read back; everything else from mime_guess's
//! maintained table; unknown extensions are refused (415).

use std::borrow::Cow;

/// How a file is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentType {
    /// The `Content-Type` value.
    pub value: Cow<'static, str>,
    /// Sent as a download (`Content-Disposition: attachment`).
    pub attachment: bool,
    /// Worth looking for a precompressed `.br` / `.gz` sibling.
    pub compressible: bool,
}

const fn fixed(value: &'static str, attachment: bool, compressible: bool) -> ContentType {
    ContentType {
        value: Cow::Borrowed(value),
        attachment,
        compressible,
    }
}

/// The content type for a file name, or `None` for an unknown extension (415).
pub fn content_type(file_name: &str) -> Option<ContentType> {
    let (_, ext) = file_name.rsplit_once('.')?;
    let lower;
    let ext = if ext.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = ext.to_ascii_lowercase();
        lower.as_str()
    } else {
        ext
    };
    Some(match ext {
        "html" | "htm" => fixed("text/html; charset=utf-8", false, true),
        // The seed serves these as downloads, and SPEC keeps that.
        "png" | "jpg" | "jpeg" | "txt" => fixed("application/octet-stream", true, false),
        "json" => fixed("application/json", false, true),
        "css" => fixed("text/css; charset=utf-8", false, true),
        "js" | "mjs" => fixed("text/javascript; charset=utf-8", false, true),
        "svg" => fixed("image/svg+xml", false, true),
        "wasm" => fixed("application/wasm", false, true),
        "ico" => fixed("image/x-icon", false, false),
        "map" => fixed("application/json", false, true),
        "md" => fixed("text/markdown; charset=utf-8", false, true),
        other => {
            let raw = mime_guess::from_ext(other).first_raw()?;
            let text = raw.starts_with("text/");
            let compressible = text || raw.ends_with("+xml") || raw.ends_with("xml");
            ContentType {
                value: if text {
                    Cow::Owned(format!("{raw}; charset=utf-8"))
                } else {
                    Cow::Borrowed(raw)
                },
                attachment: false,
                compressible,
            }
        }
    })
}

/// The `Content-Disposition` value for a download of `name`: a quoted ASCII fallback and,
/// when the name is not plain ASCII, an RFC 8187 `filename*` with the exact name.
pub fn attachment(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 32);
    out.push_str("attachment; filename=\"");
    let mut plain = true;
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => {
                plain = false;
                out.push('_');
            }
        }
    }
    out.push('"');
    if !plain {
        out.push_str("; filename*=UTF-8''");
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

//! The request target → a path below the web root, by the rules of SPEC "Security":
//! percent-decode once, split on `/`, refuse `..`, backslash, NUL and encoded slashes.
//! A [`SafePath`] can only be made here, so every path the core hands a runtime has
//! passed these rules.

use crate::config::PathRules;
use crate::Refusal;
use percent_encoding::percent_decode;

/// A relative path below the web root: `/`-separated segments, none empty, none `.` or
/// `..`, none starting with `.`, no backslash, no NUL. The runtime joins it to the root
/// (and still checks the resolved file, for symlinks).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SafePath(String);

impl SafePath {
    /// The path, e.g. `index.html` or `uploads/ab.json`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path a request for `path` (the path part of a target, such as `/a/b.html`)
    /// would open, by the same rules; `None` when a request for it is refused. For
    /// runtimes' tests that need a path the way the core makes one.
    pub fn from_request_path(path: &str) -> Option<SafePath> {
        resolve_path(path, PathRules::Posix).ok()
    }

    /// The entry `name` of this directory (`SafePath::root()` for the root): `None` when
    /// `name` is not one plain, visible name (empty, `.`, `..`, hidden, with `/`, `\` or
    /// NUL). For runtimes listing a directory.
    pub fn join(&self, name: &str) -> Option<SafePath> {
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
            return None;
        }
        Some(if self.0.is_empty() {
            SafePath(name.to_string())
        } else {
            SafePath(format!("{}/{name}", self.0))
        })
    }

    /// The web root itself (an empty path), as [`crate::Action::ListDir`] names it.
    pub fn root() -> SafePath {
        SafePath(String::new())
    }

    /// The directory holding this path's last name (`docs/index.html` → `docs`;
    /// `index.html` → the root).
    pub(crate) fn parent(&self) -> SafePath {
        match self.0.rsplit_once('/') {
            Some((dir, _)) => SafePath(dir.to_string()),
            None => SafePath::root(),
        }
    }

    /// The URL path of this directory, percent-encoded, with a trailing slash
    /// (`a b/c` → `/a%20b/c/`).
    pub(crate) fn dir_url(&self) -> String {
        let mut url = String::with_capacity(self.0.len() + 2);
        for seg in self.0.split('/').filter(|s| !s.is_empty()) {
            url.push('/');
            url.extend(percent_encoding::utf8_percent_encode(seg, SEGMENT));
        }
        url.push('/');
        url
    }

    /// The same path with a suffix on the file name (`a.html` → `a.html.gz`).
    pub fn with_suffix(&self, suffix: &str) -> SafePath {
        SafePath(format!("{}{}", self.0, suffix))
    }
}

/// Everything but the unreserved characters is percent-encoded in a URL segment.
pub(crate) const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const FORBIDDEN: Refusal = Refusal::keep(403, "path escapes the web root");

/// The path part of an origin-form target (`/a/b?q`) or of an absolute-form one whose
/// authority was already checked, decoded and checked.
pub fn resolve_path(path: &str, rules: PathRules) -> Result<SafePath, Refusal> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let raw = path.as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(Refusal::keep(400, "request target is not an absolute path"));
    }
    // An encoded slash or backslash would let a decoded segment span directories.
    if contains_encoded(raw, b'/') || contains_encoded(raw, b'\\') || contains_encoded(raw, 0) {
        return Err(FORBIDDEN);
    }
    if !valid_escapes(raw) {
        return Err(Refusal::keep(400, "malformed percent-encoding"));
    }
    let decoded = percent_decode(raw)
        .decode_utf8()
        .map_err(|_| Refusal::keep(400, "request path is not UTF-8"))?;
    // Control characters other than NUL are legal in file names (a name with a newline
    // must round-trip from a directory listing); log lines and headers escape them.
    if decoded.contains(['\\', '\0']) {
        return Err(FORBIDDEN);
    }
    let mut out = String::with_capacity(decoded.len() + 10);
    for seg in decoded.split('/') {
        match seg {
            "" | "." => continue,
            ".." => return Err(FORBIDDEN),
            s if s.starts_with('.') => {
                return Err(Refusal::keep(404, "hidden files are not served"))
            }
            s if rules == PathRules::Windows && !windows_safe(s) => {
                return Err(Refusal::keep(403, "a name Windows would resolve elsewhere"))
            }
            s => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(s);
            }
        }
    }
    // A directory target (`/`, `/docs/`) is its index.html.
    if decoded.ends_with('/') {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str("index.html");
    }
    if out.is_empty() {
        out.push_str("index.html");
    }
    Ok(SafePath(out))
}

/// Whether Windows would open this segment as named (see [`PathRules::Windows`]).
fn windows_safe(seg: &str) -> bool {
    const RESERVED: [&str; 7] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"];
    if seg.ends_with(['.', ' '])
        || seg.contains([':', '<', '>', '"', '|', '?', '*'])
        || seg.chars().any(|c| c < ' ')
    {
        return false;
    }
    // The device name is what comes before the first dot, trailing spaces ignored.
    let stem = seg.split('.').next().unwrap_or(seg).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let numbered = |prefix: &str| {
        upper.strip_prefix(prefix).is_some_and(|n| {
            matches!(
                n,
                "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            )
        })
    };
    if RESERVED.contains(&upper.as_str()) || numbered("COM") || numbered("LPT") {
        return false;
    }
    // An 8.3 short name: `~` followed by a digit in the stem (`PROGRA~1`).
    let bytes = stem.as_bytes();
    !bytes
        .windows(2)
        .any(|w| w[0] == b'~' && w[1].is_ascii_digit())
}

/// Whether `%XX` decoding to `byte` occurs in `raw`.
fn contains_encoded(raw: &[u8], byte: u8) -> bool {
    raw.windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]).zip(hex(w[2])).map(|(h, l)| h * 16 + l) == Some(byte))
}

fn valid_escapes(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            if i + 2 >= raw.len() {
                return false;
            }
            if hex(raw[i + 1]).is_none() || hex(raw[i + 2]).is_none() {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits an absolute-form target (`http://host:port/path`) into authority and path.
/// `None` when it is not `http://` or has no authority.
pub fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let scheme_end = target.find("://")?;
    if !target[..scheme_end].eq_ignore_ascii_case("http") {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(auth_end);
    if authority.is_empty() {
        return None;
    }
    Some((authority, if path.is_empty() { "/" } else { path }))
}

//! Cross-origin requests (SPEC "Web pages and browsers", the Fetch standard's CORS
//! protocol): the policy made from the `--cors ORIGIN` values, and the headers an answer
//! gets for it.
//!
//! ```text
//! let cors = Cors::new(["https://app.example", "http://localhost:5173"])?;  // or ["*"]
//! // an actual request with `Origin: https://app.example`:
//! for (name, value) in cors.actual_headers(origin, auth_on) { head.push(name, value) }
//! // a preflight (OPTIONS with Origin and Access-Control-Request-Method):
//! let methods = ["GET", "HEAD", "OPTIONS"];                  // what the path accepts
//! if let Some(headers) = cors.preflight(origin, acr_method, acr_headers, &methods, auth_on) {
//!     204 with headers
//! }
//! ```
//!
//! - A named origin is echoed in `Access-Control-Allow-Origin` with `Vary: Origin`;
//!   `*` answers `*` to any origin a named one did not match. With `--auth` on, a named
//!   origin also gets `Access-Control-Allow-Credentials: true` and `*` never does (SPEC:
//!   credentials only for named origins), so a browser sends no credentials to a `*`
//!   answer. A foreign origin gets no CORS header at all (the browser refuses it).
//! - When any origin is named, the answer depends on `Origin`: [`Cors::varies`] tells the
//!   caller to send `Vary: Origin` on every answer, even those without CORS headers, so
//!   that a shared cache never hands one origin's answer to another.
//! - Origins compare ASCII case-insensitively, after the configured value is normalised
//!   (lower case, no trailing `/`, no default port `:443` / `:80`). `null` is never
//!   allowed by name (sandboxed documents and `file:` pages send it; `*` covers them).
//! - A preflight's `Access-Control-Allow-Headers` lists the requested headers that the
//!   server reads ([`READ_HEADERS`]); the others are left out and the browser refuses the
//!   request. `Accept-Encoding`, `Content-Length` and the like are read too, but a
//!   browser sets them itself and never asks for them.

use crate::syntax::{is_tchar, list, trim_ows};
use std::fmt;

/// The request headers the server reads that a script may set (lower case).
pub const READ_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
];

/// The response headers a script may read (`Access-Control-Expose-Headers`).
pub const EXPOSE_HEADERS: &str = "ETag, Location, Content-Disposition";

/// How long a browser may keep a preflight's answer (`Access-Control-Max-Age`).
pub const MAX_AGE_SECS: u32 = 600;

/// The CORS policy: empty (no `--cors`) answers no CORS headers at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

/// A `--cors` value that is neither `*` nor an origin (`scheme://host[:port]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsError(pub String);

impl fmt::Display for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad --cors value {:?}: '*' or an origin such as https://example.com:8443 (no path)",
            self.0
        )
    }
}

impl std::error::Error for CorsError {}

/// The `Access-Control-Allow-Origin` to send for one origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowOrigin {
    /// The origin itself, or `*`.
    pub value: String,
    /// Add `Vary: Origin` (the value is the origin itself).
    pub vary: bool,
    /// Add `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

impl Cors {
    /// The policy from the `--cors` values (`*` for any origin).
    pub fn new<I, S>(values: I) -> Result<Cors, CorsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cors = Cors::default();
        for v in values {
            let v = v.as_ref().trim();
            if v == "*" {
                cors.any = true;
            } else {
                let o = normalize_origin(v).ok_or_else(|| CorsError(v.to_string()))?;
                if !cors.origins.contains(&o) {
                    cors.origins.push(o);
                }
            }
        }
        Ok(cors)
    }

    /// No `--cors`: no CORS headers anywhere.
    pub fn is_empty(&self) -> bool {
        !self.any && self.origins.is_empty()
    }

    /// Some origin is named, so every answer should carry `Vary: Origin`.
    pub fn varies(&self) -> bool {
        !self.origins.is_empty()
    }

    /// What to answer to `Origin: origin`; `None` for a foreign origin (no CORS
    /// headers). `with_credentials_possible` is on when `--auth` is.
    pub fn allow_origin(
        &self,
        origin: &[u8],
        with_credentials_possible: bool,
    ) -> Option<AllowOrigin> {
        let origin = trim_ows(origin);
        let named = !origin.is_empty()
            && self
                .origins
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin));
        if named {
            // It matched a configured origin, so it is visible ASCII.
            let value = String::from_utf8_lossy(origin).into_owned();
            return Some(AllowOrigin {
                value,
                vary: true,
                credentials: with_credentials_possible,
            });
        }
        self.any.then(|| AllowOrigin {
            value: "*".to_string(),
            vary: false,
            credentials: false,
        })
    }

    /// The CORS headers of an answer to an actual (not preflight) request from
    /// `origin`: empty for a foreign origin.
    pub fn actual_headers(
        &self,
        origin: &[u8],
        with_credentials_possible: bool,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(allow) = self.allow_origin(origin, with_credentials_possible) {
            push_allow(&mut out, allow);
            out.push(("Access-Control-Expose-Headers", EXPOSE_HEADERS.to_string()));
        }
        out
    }

    /// The headers of the 204 to a preflight from `origin` asking for `request_method`
    /// (`Access-Control-Request-Method`) and `request_headers`
    /// (`Access-Control-Request-Headers`, a comma-separated list) on a path that accepts
    /// `path_methods`. `None` for a foreign origin or a request method that is not a
    /// token (answer as to a plain `OPTIONS`). A method the path does not accept still
    /// gets the list of those it does: the browser refuses.
    pub fn preflight(
        &self,
        origin: &[u8],
        request_method: &[u8],
        request_headers: Option<&[u8]>,
        path_methods: &[&str],
        with_credentials_possible: bool,
    ) -> Option<Vec<(&'static str, String)>> {
        let method = trim_ows(request_method);
        if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let allow = self.allow_origin(origin, with_credentials_possible)?;
        let mut out = Vec::new();
        push_allow(&mut out, allow);
        out.push(("Access-Control-Allow-Methods", path_methods.join(", ")));
        let mut granted: Vec<&str> = Vec::new();
        for h in request_headers.into_iter().flat_map(list) {
            if let Some(&name) = READ_HEADERS
                .iter()
                .find(|n| n.as_bytes().eq_ignore_ascii_case(h))
            {
                if !granted.contains(&name) {
                    granted.push(name);
                }
            }
        }
        if !granted.is_empty() {
            out.push(("Access-Control-Allow-Headers", granted.join(", ")));
        }
        out.push(("Access-Control-Max-Age", MAX_AGE_SECS.to_string()));
        Some(out)
    }
}

fn push_allow(out: &mut Vec<(&'static str, String)>, allow: AllowOrigin) {
    let (vary, credentials) = (allow.vary, allow.credentials);
    out.push(("Access-Control-Allow-Origin", allow.value));
    if credentials {
        out.push(("Access-Control-Allow-Credentials", "true".to_string()));
    }
    if vary {
        out.push(("Vary", "Origin".to_string()));
    }
}

/// `scheme://host[:port]` in lower case without a trailing `/` or a default port;
/// `None` for anything else.
fn normalize_origin(v: &str) -> Option<String> {
    let v = v.strip_suffix('/').unwrap_or(v).to_ascii_lowercase();
    let (scheme, rest) = v.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let host_ok = !rest.is_empty()
        && !rest.starts_with(':')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~[]:%".contains(&b));
    if !scheme_ok || !host_ok {
        return None;
    }
    // A port, if any, is digits after the last ':' outside an IPv6 literal.
    let host_end = rest.rfind(']').map_or(0, |i| i + 1);
    let (host, port) = match rest[host_end..].rfind(':') {
        Some(i) => rest.split_at(host_end + i),
        None => (rest, ""),
    };
    let digits = &port.get(1..).unwrap_or("");
    if !port.is_empty() && (digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return None;
    }
    Some(match (scheme, port) {
        ("https", ":443") | ("http", ":80") => format!("{scheme}://{host}"),
        _ => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn configured_values() {
        let c = Cors::new([
            "https://App.Example/",
            "http://localhost:5173",
            "https://x.test:443",
            "http://[::1]:8080",
            "https://app.example",
        ])
        .unwrap();
        assert_eq!(
            c.origins,
            [
                "https://app.example",
                "http://localhost:5173",
                "https://x.test",
                "http://[::1]:8080"
            ]
        );
        assert!(!c.any && c.varies() && !c.is_empty());
        assert!(Cors::new(Vec::<String>::new()).unwrap().is_empty());
        let star = Cors::new(["*"]).unwrap();
        assert!(star.any && !star.varies());
        for bad in [
            "",
            "null",
            "example.com",
            "https://",
            "https://a.com/path",
            "https://a.com:port",
            "https://a.com:",
            "https://a b.com",
            "1http://a.com",
            "https://:8080",
            "http://::1",
            "**",
        ] {
            assert_eq!(Cors::new([bad]), Err(CorsError(bad.to_string())), "{bad:?}");
        }
        assert!(CorsError("x".into()).to_string().contains("'*'"));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn origins_matched() {
        let named = Cors::new(["https://app.example", "http://localhost:5173"]).unwrap();
        let mixed = Cors::new(["*", "https://app.example"]).unwrap();
        let star = Cors::new(["*"]).unwrap();
        let allow = |v: &str, vary, credentials| {
            Some(AllowOrigin {
                value: v.to_string(),
                vary,
                credentials,
            })
        };
        // (policy, Origin, auth on, answer)
        let table: &[(&Cors, &str, bool, Option<AllowOrigin>)] = &[
            (
                &named,
                "https://app.example",
                false,
                allow("https://app.example", true, false),
            ),
            (
                &named,
                "https://app.example",
                true,
                allow("https://app.example", true, true),
            ),
            (
                &named,
                "HTTPS://APP.EXAMPLE",
                false,
                allow("HTTPS://APP.EXAMPLE", true, false),
            ),
            (
                &named,
                " http://localhost:5173 ",
                true,
                allow("http://localhost:5173", true, true),
            ),
            (&named, "http://app.example", false, None),
            (&named, "https://app.example:8443", false, None),
            (&named, "https://evil.example", true, None),
            (&named, "https://app.example.evil", true, None),
            (&named, "null", false, None),
            (&named, "", false, None),
            (
                &star,
                "https://anyone.example",
                false,
                allow("*", false, false),
            ),
            (
                &star,
                "https://anyone.example",
                true,
                allow("*", false, false),
            ),
            (&star, "null", false, allow("*", false, false)),
            (
                &mixed,
                "https://app.example",
                true,
                allow("https://app.example", true, true),
            ),
            (
                &mixed,
                "https://other.example",
                true,
                allow("*", false, false),
            ),
            (&Cors::default(), "https://app.example", false, None),
        ];
        for (cors, origin, auth, want) in table {
            assert_eq!(
                &cors.allow_origin(origin.as_bytes(), *auth),
                want,
                "{origin} {auth}"
            );
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn actual_request_headers() {
        let c = Cors::new(["https://app.example"]).unwrap();
        let h = c.actual_headers(b"https://app.example", true);
        assert_eq!(
            h,
            vec![
                (
                    "Access-Control-Allow-Origin",
                    "https://app.example".to_string()
                ),
                ("Access-Control-Allow-Credentials", "true".to_string()),
                ("Vary", "Origin".to_string()),
                (
                    "Access-Control-Expose-Headers",
                    "ETag, Location, Content-Disposition".to_string()
                ),
            ]
        );
        let star = Cors::new(["*"])
            .unwrap()
            .actual_headers(b"https://a.example", true);
        assert_eq!(get(&star, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(get(&star, "Access-Control-Allow-Credentials"), None);
        assert_eq!(get(&star, "Vary"), None);
        assert_eq!(
            get(&star, "Access-Control-Expose-Headers"),
            Some(EXPOSE_HEADERS)
        );
        assert!(c.actual_headers(b"https://evil.example", true).is_empty());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn preflights() {
        let c = Cors::new(["https://app.example"]).unwrap();
        let methods = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"];
        // What Chromium sends before `fetch(url, {method: "PUT", headers: {...}})`.
        let h = c
            .preflight(
                b"https://app.example",
                b"PUT",
                Some(b"authorization,content-type,if-match,x-custom"),
                &methods,
                true,
            )
            .unwrap();
        assert_eq!(
            get(&h, "Access-Control-Allow-Origin"),
            Some("https://app.example")
        );
        assert_eq!(get(&h, "Access-Control-Allow-Credentials"), Some("true"));
        assert_eq!(get(&h, "Vary"), Some("Origin"));
        assert_eq!(
            get(&h, "Access-Control-Allow-Methods"),
            Some("GET, HEAD, PUT, DELETE, OPTIONS")
        );
        assert_eq!(
            get(&h, "Access-Control-Allow-Headers"),
            Some("authorization, content-type, if-match")
        );
        assert_eq!(get(&h, "Access-Control-Max-Age"), Some("600"));
        assert_eq!(get(&h, "Access-Control-Expose-Headers"), None);
        // Case, spaces, duplicates and empty members; no header asked for.
        let h = c
            .preflight(
                b"https://app.example",
                b"GET",
                Some(b" Range , RANGE,,If-None-Match "),
                &methods[..2],
                false,
            )
            .unwrap();
        assert_eq!(
            get(&h, "Access-Control-Allow-Headers"),
            Some("range, if-none-match")
        );
        assert_eq!(get(&h, "Access-Control-Allow-Credentials"), None);
        assert_eq!(get(&h, "Access-Control-Allow-Methods"), Some("GET, HEAD"));
        let h = c
            .preflight(b"https://app.example", b"GET", None, &methods, false)
            .unwrap();
        assert_eq!(get(&h, "Access-Control-Allow-Headers"), None);
        let h = c
            .preflight(
                b"https://app.example",
                b"PATCH",
                Some(b"x-a, x-b"),
                &methods,
                false,
            )
            .unwrap();
        assert_eq!(get(&h, "Access-Control-Allow-Headers"), None);
        // Foreign origin, malformed method: not a CORS answer.
        assert_eq!(
            c.preflight(b"https://evil.example", b"GET", None, &methods, false),
            None
        );
        assert_eq!(
            c.preflight(b"https://app.example", b"", None, &methods, false),
            None
        );
        assert_eq!(
            c.preflight(b"https://app.example", b"G T", None, &methods, false),
            None
        );
        let star = Cors::new(["*"]).unwrap();
        let h = star
            .preflight(
                b"https://x.example",
                b"DELETE",
                Some(b"authorization"),
                &methods,
                true,
            )
            .unwrap();
        assert_eq!(get(&h, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(get(&h, "Access-Control-Allow-Credentials"), None);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn pseudo_random_input_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u8
        };
        let alphabet = b"htps:/[]:1.ax*-, \t\xc3\xa9";
        let c = Cors::new(["*", "https://a.x"]).unwrap();
        for _ in 0..3_000 {
            let len = next() as usize % 40;
            let raw: Vec<u8> = (0..len)
                .map(|_| {
                    if next() % 5 == 0 {
                        next()
                    } else {
                        alphabet[next() as usize % alphabet.len()]
                    }
                })
                .collect();
            let _ = Cors::new([String::from_utf8_lossy(&raw)]);
            let _ = c.allow_origin(&raw, true);
            let _ = c.preflight(&raw, &raw, Some(&raw), &["GET"], true);
        }
    }
}

//! Where a request goes: the `Host` rules (RFC 9112 §3.2, SPEC "Security") and the
//! routing of a method and path to a file, an upload, `OPTIONS` or a refusal.

use super::{Connection, Route};
use crate::config::PathRules;
use crate::host::split_host;
use crate::parse::{Method, RequestHead};
use crate::target::{resolve_path, split_absolute};
use crate::Refusal;

impl Connection {
    /// The `Host` rules; returns the path part of the target.
    pub(super) fn check_host<'h>(&self, head: &'h RequestHead) -> Result<&'h str, Refusal> {
        let hosts = &self.config.hosts;
        if head.host_count > 1 {
            return Err(Refusal::close(400, "more than one Host header"));
        }
        if head.minor == 1 && head.host_count == 0 {
            return Err(Refusal::close(400, "missing Host header"));
        }
        // The field is validated whatever the target's form (RFC 9112 §3.2).
        if let Some(host) = &head.host {
            if split_host(host).is_none() {
                return Err(Refusal::close(400, "invalid Host header"));
            }
        }
        let target = head.target.as_str();
        let origin_form = target.starts_with('/') || target == "*";
        if !origin_form {
            // Absolute form: the target's authority names the server, not Host (§3.2.2).
            if let Some((authority, path)) = split_absolute(target) {
                hosts.check(authority.as_bytes())?;
                return Ok(path);
            }
            // Any other form (`CONNECT host:port`) is for a method we do not route: `route`
            // answers 405 after the Host check; for our methods it is malformed.
            if !matches!(head.method, Method::Other(_)) {
                return Err(Refusal::close(400, "unsupported request target form"));
            }
        }
        if let Some(host) = &head.host {
            hosts.check(host)?;
        }
        Ok(target)
    }
}

/// Where a request goes, from its method and path.
pub(super) fn route(head: &RequestHead, path: &str, rules: PathRules) -> Route {
    if path == "*" {
        return match head.method {
            Method::Options => Route::Options,
            _ => Route::Refuse(Refusal::keep(400, "the * target is only for OPTIONS")),
        };
    }
    match head.method {
        Method::Options => Route::Options,
        Method::Other(_) => Route::Refuse(Refusal::keep(405, "method not allowed")),
        Method::Post => match resolve_path(path, rules) {
            Ok(p) if p.as_str() == "upload" => {
                if head.content_type_json {
                    Route::Upload
                } else {
                    Route::Refuse(Refusal::keep(415, "uploads must be application/json"))
                }
            }
            Ok(_) => Route::Refuse(Refusal::keep(404, "only /upload accepts POST")),
            Err(r) => Route::Refuse(r),
        },
        Method::Get | Method::Head => match resolve_path(path, rules) {
            Ok(p) => {
                let path_part = path.split(['?', '#']).next().unwrap_or("");
                Route::File {
                    path: p,
                    dir: path_part.ends_with('/'),
                }
            }
            Err(r) => Route::Refuse(r),
        },
    }
}

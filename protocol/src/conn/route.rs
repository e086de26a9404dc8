//! Where a request goes: the `Host` rules (RFC 9112 §3.2, SPEC "Security") and the
//! routing of a method and path to a file, an upload, `OPTIONS` or a refusal.

use super::{Connection, Route};
use crate::authority::split_host;
use crate::config::Config;
use crate::parse::{Method, RequestHead};
use crate::response::{ALLOW, ALLOW_WRITABLE};
use crate::target::{resolve_path, split_absolute, SafePath};
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

/// Whether `PUT` and `DELETE` are methods of `path` (some `--auth` rule grants `rw` on
/// it; without rules they are not: SPEC "Requests").
pub(super) fn writable(config: &Config, path: &SafePath) -> bool {
    config
        .access
        .as_ref()
        .is_some_and(|ac| ac.rules().may_be_written(path.as_str()))
}

/// The `Allow` of a path: the methods it accepts.
pub(super) fn allow(config: &Config, target: &str) -> &'static str {
    let path = target.split(['?', '#']).next().unwrap_or("");
    match SafePath::from_request_path(path) {
        Some(p) if writable(config, &p) => ALLOW_WRITABLE,
        _ => ALLOW,
    }
}

/// Where a request goes, from its method and path.
pub(super) fn route(head: &RequestHead, path: &str, config: &Config) -> Route {
    let rules = config.path_rules;
    if path == "*" {
        return match head.method {
            Method::Options => Route::Options,
            _ => Route::Refuse(Refusal::keep(400, "the * target is only for OPTIONS")),
        };
    }
    match head.method {
        Method::Options => Route::Options,
        Method::Other(_) => Route::Refuse(Refusal::keep(405, "method not allowed")),
        Method::Put | Method::Delete => match resolve_path(path, rules) {
            Ok(p) if writable(config, &p) && head.method == Method::Put => Route::Put { path: p },
            Ok(p) if writable(config, &p) => Route::Delete { path: p },
            Ok(_) => Route::Refuse(Refusal::keep(405, "method not allowed")),
            Err(r) => Route::Refuse(r),
        },
        Method::Post => match resolve_path(path, rules) {
            Ok(p) if p.as_str() == "upload" => {
                let boundary = head
                    .content_type
                    .as_deref()
                    .and_then(|ct| crate::multipart::boundary_of(ct.as_bytes()));
                if head.content_type_json {
                    Route::Upload
                } else if let Some(boundary) = boundary {
                    Route::Multipart { boundary }
                } else {
                    Route::Refuse(Refusal::keep(
                        415,
                        "uploads must be application/json or multipart/form-data",
                    ))
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

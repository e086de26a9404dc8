//! Who may do what (`--auth`, SPEC "Access control"), and the fields that every answer
//! gets whatever it is (`--cors`, `--header`, the challenge of a `401`).
//!
//! The decision is a pure function of the request, the rules and the verified user
//! ([`crate::Rules::decide`]); this module applies it at the head, before any body is
//! read: a blocked address is `429`; a request without credentials is decided as
//! anonymous (`401` where no rule lets anyone in); a request with credentials asks the
//! runtime to verify them ([`Action::Verify`], tens of milliseconds of CPU, off the
//! event loop) and is decided as that user once [`Input::Verified`] says so (`403`
//! without the grant), or is a `401` and a failure counted against its address.
//!
//! [`Input::Verified`]: super::Input::Verified

use log::warn;

use super::{Action, Connection, Credentials, Request, Route, State};
use crate::access::{parse_basic, Access, AccessControl, Decision};
use crate::config::Config;
use crate::parse::{Method, RequestHead};
use crate::response::HeadWriter;
use crate::Refusal;

const UNAUTHORIZED: Refusal = Refusal::keep(401, "credentials needed");
const WRONG: Refusal = Refusal::keep(401, "wrong user name or password");
const FORBIDDEN: Refusal = Refusal::keep(403, "no grant for this user");
const BLOCKED: Refusal = Refusal::close(429, "too many failed attempts from this address");

/// What a route needs of the rules: reading or writing, and where (`None`: nothing, an
/// `OPTIONS` or a request refused anyway). Paths as the rules take them (the leading
/// slash is optional).
fn needs(route: &Route) -> Option<(Access, &str)> {
    match route {
        Route::File { path, .. } => Some((Access::Read, path.as_str())),
        Route::Upload | Route::Multipart { .. } => Some((Access::Write, "uploads/")),
        Route::Put { path } | Route::Delete { path } => Some((Access::Write, path.as_str())),
        Route::Options | Route::Refuse(_) => None,
    }
}

/// The credentials this connection verified last: a keyed digest of the
/// `Authorization` value (the connection's seed is the key; the value itself is not
/// kept), its user, and the rules' generation. The same value on the same connection
/// (a keep-alive client, a browser) is not verified again.
#[derive(Debug)]
pub(super) struct Verified {
    digest: u64,
    user: String,
    generation: u64,
}

/// SipHash-2-4 of `data` under `key` (the connection's 16 random bytes).
fn digest(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap_or([0; 8]));
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap_or([0; 8]));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

impl Connection {
    /// Applies the rules to a request whose head was just read. The request goes on
    /// (possibly to be refused: its route becomes the refusal), or `Some(user)`: its
    /// credentials were handed out to be verified.
    pub(super) fn authorize(&mut self, req: &mut Request) -> Option<String> {
        let ac = self.config.access.clone()?;
        let (access, path) = needs(&req.route)?;
        if let Some(secs) = ac.limiter().retry_after(self.peer_ip, self.now.mono_ms) {
            self.retry_after = secs;
            req.route = Route::Refuse(BLOCKED);
            return None;
        }
        let rules = ac.rules();
        let Some(value) = req.head.authorization.as_deref() else {
            if rules.decide(path, access, None) != Decision::Allow {
                req.route = Route::Refuse(UNAUTHORIZED);
            }
            return None;
        };
        // Verified on this connection before, under the same rules: decided at once.
        let digest = digest(&self.seed, value.as_bytes());
        if let Some(v) = self
            .verified
            .as_ref()
            .filter(|v| v.digest == digest && v.generation == ac.generation())
        {
            let user = v.user.clone();
            self.decide_as(req, &user, &rules);
            return None;
        }
        let Some((user, password)) = parse_basic(value.as_bytes()) else {
            self.failed(&ac, "(unreadable credentials)");
            req.route = Route::Refuse(WRONG);
            req.auth_failed = true;
            return None;
        };
        let hash = rules.hash_of(&user).map(str::to_string);
        self.pending_digest = digest;
        self.out.push_back(Action::Verify(Credentials {
            user: user.clone(),
            password,
            hash,
            generation: ac.generation(),
        }));
        Some(user)
    }

    /// Decides `req` as the verified `user`: allowed (it carries the user), or `403`.
    fn decide_as(&self, req: &mut Request, user: &str, rules: &crate::access::Rules) {
        let Some((access, path)) = needs(&req.route) else {
            return;
        };
        if rules.decide(path, access, Some(user)) == Decision::Allow {
            req.user = Some(user.to_string());
        } else {
            warn!(
                "{} refused (403): {} has no grant to {} /{}",
                self.peer,
                Quoted(user),
                if access == Access::Read {
                    "read"
                } else {
                    "write"
                },
                path.trim_start_matches('/')
            );
            req.route = Route::Refuse(FORBIDDEN);
        }
    }

    /// The result of [`Action::Verify`]: the request is decided as its user, or refused.
    pub(super) fn verified(&mut self, ok: bool) {
        let State::AwaitAuth {
            mut req,
            user,
            body_len,
        } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        let Some(ac) = self.config.access.clone() else {
            return self.proceed(req, body_len);
        };
        if !ok {
            self.failed(&ac, &user);
            req.route = Route::Refuse(WRONG);
            req.auth_failed = true;
        } else {
            self.decide_as(&mut req, &user, &ac.rules());
            self.verified = Some(Verified {
                digest: self.pending_digest,
                user,
                generation: ac.generation(),
            });
        }
        self.proceed(req, body_len);
    }

    /// A failed attempt: logged (never the password) and counted against the address.
    fn failed(&self, ac: &AccessControl, user: &str) {
        warn!(
            "{} authentication failed for user {}",
            self.peer,
            Quoted(user)
        );
        ac.limiter().record_failure(self.peer_ip, self.now.mono_ms);
    }

    /// Whether `path` (relative to the root, as in a listing) may be read by the user of
    /// `req` (`true` without `--auth`).
    pub(super) fn may_read(&self, req: &Request, path: &str) -> bool {
        match &self.config.access {
            Some(ac) => ac.rules().may_read(path, req.user.as_deref()),
            None => true,
        }
    }
}

/// The fields every answer to `head` gets after its own: CORS (`--cors`, not on a
/// preflight, which writes its own), the `--header` fields, the challenge of a `401`
/// and the `Retry-After` of a `429`.
pub(super) fn decorate(
    w: &mut HeadWriter<'_>,
    config: &Config,
    head: Option<&RequestHead>,
    status: u16,
    retry_after: u64,
) {
    if let (Some(cors), Some(head)) = (&config.cors, head) {
        let preflight = head.method == Method::Options && head.cors_method.is_some();
        match head.origin.as_deref() {
            Some(origin) if !preflight => {
                for (name, value) in cors.actual_headers(origin.as_bytes(), config.access.is_some())
                {
                    w.field(name, &value);
                }
                if cors.varies()
                    && !matches!(cors.allow_origin(origin.as_bytes(), false), Some(a) if a.vary)
                {
                    w.field("Vary", "Origin");
                }
            }
            _ if cors.varies() && !preflight => {
                w.field("Vary", "Origin");
            }
            _ => {}
        }
    }
    for (name, value) in &config.headers {
        w.field(name, value);
    }
    match status {
        401 => {
            if let Some(ac) = &config.access {
                let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", ac.realm);
                w.field("WWW-Authenticate", &challenge);
            }
        }
        429 => {
            w.number("Retry-After", retry_after.max(1));
        }
        _ => {}
    }
}

/// A user name in a log line: quoted, printable ASCII kept, everything else escaped,
/// cut short (a name is client text).
struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        f.write_char('"')?;
        for (i, b) in self.0.bytes().enumerate() {
            if i == 64 {
                f.write_str("...")?;
                break;
            }
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                f.write_char(b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_char('"')
    }
}

//! Access control (SPEC "Access control"): the rules of `--auth` / `--auth-file`, the
//! decision for one request, the `Authorization: Basic` header, and the table that
//! answers 429 to a peer that keeps failing.
//!
//! Pure: no password is hashed or verified here (that is `host::auth`, off the event
//! loop); [`Rules::decide`] takes a user name that was already verified, or `None`.
//!
//! ```text
//! let rules = Rules::parse_lines(file_text)?;          // or Rules::new(vec![parse_rule(arg)?])
//! let (user, pw) = parse_basic(authorization_value)?;  // then host::auth verifies pw
//!                                                      // against rules.hash_of(&user)
//! match rules.decide("/archive/a.txt", Access::Read, Some("alice")) {
//!     Decision::Allow => …, Decision::Unauthorized => 401, Decision::Forbidden => 403,
//! }
//! ```
//!
//! The rule syntax, and how it is split: `USER:HASH@PATH[:ro|:rw]` or `@PATH[:ro|:rw]`.
//! - A rule that starts with `@` is anonymous. Otherwise the user is what comes before
//!   the first `:` (a user name holds neither `:` nor `@`).
//! - The hash is what follows, up to the first `@` (or `:`): neither an argon2id PHC
//!   string (`$`, `=`, `,`, base64 without padding) nor a bcrypt one (`$`, `.`, `/`,
//!   base64) ever holds an `@` or a `:`, so the first `@` ends the hash and a PATH may
//!   hold `@` and `:`. Without `@PATH` (`USER:HASH`, an `htpasswd -B` line, or
//!   `USER:HASH:rw`) the PATH is `/`.
//! - A trailing `:ro` or `:rw` is the permission (default `ro`); any other `:WORD` with
//!   no `/` after the last `:` is refused as a bad permission, so that a typo never
//!   becomes part of a PATH. The rest is the PATH (empty: `/`). A PATH starts with `/`
//!   and holds no `.` / `..` segment, `\` or control character; `/a/`, `/a` and `//a`
//!   are the same PATH, compared case-sensitively with the decoded request path.
//!
//! The decision: no rules, everything is allowed. With rules, rules only grant. For a
//! request, the anonymous rules and (for a verified user) that user's own rules are
//! looked at; among those whose PATH is a segment-wise prefix of the request path
//! (`/a` covers `/a` and `/a/b`, not `/ab`), the longest sets the permission, and when
//! several of that length remain the strongest wins. An anonymous rule is a grant to
//! everyone: it never lowers what a user's own rules give (the user's permission is the
//! stronger of the one their own rules set and the one the anonymous rules set).
//! Not allowed: [`Decision::Unauthorized`] without a user (credentials could help: 401),
//! [`Decision::Forbidden`] with one (403).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

/// What a rule grants below its path. `Rw` includes `Ro`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Perm {
    Ro,
    Rw,
}

/// One access rule: `user` and `hash` are both `None` for an anonymous rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub user: Option<String>,
    /// The PHC string (argon2id or bcrypt) the user's password is verified against.
    pub hash: Option<String>,
    /// Normalised: starts with `/`, no empty segment, no trailing `/` (except `/`).
    pub path: String,
    pub perm: Perm,
}

/// Why a rule (or a rule file) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// An empty rule.
    Empty,
    /// `USER@PATH`, `USER:@PATH`: a named rule needs `:HASH`.
    MissingHash,
    /// `:HASH@PATH` with nothing before the `:`.
    EmptyUser,
    /// A user name with `@` or a control character.
    BadUser(String),
    /// The value in the place of the hash is not an argon2id or bcrypt PHC string.
    NotAHash,
    /// The PATH is not an absolute, plain path.
    BadPath(String),
    /// A permission other than `ro` / `rw`.
    BadPerm(String),
    /// One user given two different hashes.
    ConflictingHash(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Empty => write!(f, "empty rule"),
            RuleError::MissingHash => {
                write!(
                    f,
                    "missing password hash: a rule is USER:HASH@PATH[:ro|:rw] or @PATH[:ro|:rw]"
                )
            }
            RuleError::EmptyUser => write!(f, "empty user name before ':'"),
            RuleError::BadUser(u) => {
                write!(f, "bad user name {u:?} (no '@' or control characters)")
            }
            RuleError::NotAHash => write!(
                f,
                "the password must be given as a hash (argon2id `$argon2id$...` or bcrypt \
                 `$2b$...`/`$2y$...`), never in clear: make one with --hash-password"
            ),
            RuleError::BadPath(p) => {
                write!(
                    f,
                    "bad path {p:?}: it must start with '/' and have no '.', '..' or '\\'"
                )
            }
            RuleError::BadPerm(p) => write!(f, "bad permission {p:?}: ro or rw"),
            RuleError::ConflictingHash(u) => write!(f, "user {u:?} is given two different hashes"),
        }
    }
}

impl std::error::Error for RuleError {}

/// Parses one rule (see the module doc for the syntax).
pub fn parse_rule(text: &str) -> Result<Rule, RuleError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RuleError::Empty);
    }
    let (user, hash, rest) = if let Some(rest) = text.strip_prefix('@') {
        (None, None, rest)
    } else {
        let (user, after) = match (text.find(':'), text.find('@')) {
            (Some(c), Some(a)) if a < c => return Err(RuleError::MissingHash),
            (Some(c), _) => (&text[..c], &text[c + 1..]),
            (None, _) => return Err(RuleError::MissingHash),
        };
        if user.is_empty() {
            return Err(RuleError::EmptyUser);
        }
        if user.chars().any(char::is_control) {
            return Err(RuleError::BadUser(user.to_string()));
        }
        // Neither kind of hash holds `@` or `:`: the hash ends at the first of them.
        let (hash, rest) = match after.find(['@', ':']) {
            Some(i) if after.as_bytes()[i] == b'@' => (&after[..i], &after[i + 1..]),
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if hash.is_empty() {
            return Err(RuleError::MissingHash);
        }
        if !is_phc_hash(hash) {
            return Err(RuleError::NotAHash);
        }
        (Some(user.to_string()), Some(hash.to_string()), rest)
    };
    let (path, perm) = if let Some(p) = rest.strip_suffix(":rw") {
        (p, Perm::Rw)
    } else if let Some(p) = rest.strip_suffix(":ro") {
        (p, Perm::Ro)
    } else {
        match rest.rsplit_once(':') {
            // Something that looks like a permission after the last ':' but is not one.
            Some((_, p)) if !p.contains('/') => return Err(RuleError::BadPerm(p.to_string())),
            _ => (rest, Perm::Ro),
        }
    };
    Ok(Rule {
        user,
        hash,
        path: normalize_path(path)?,
        perm,
    })
}

/// Whether `s` is an argon2id or a bcrypt PHC string (shape only; `host::auth` parses).
fn is_phc_hash(s: &str) -> bool {
    let b64 = |t: &str| {
        let char_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        !t.is_empty() && t.bytes().all(char_ok)
    };
    if let Some(rest) = s.strip_prefix("$argon2id$") {
        let fields: Vec<&str> = rest.split('$').collect();
        let (params, salt, hash) = match fields.as_slice() {
            [v, p, s, h] if v.starts_with("v=") => (*p, *s, *h),
            [p, s, h] => (*p, *s, *h),
            _ => return false,
        };
        let has = |k: &str| params.split(',').any(|kv| kv.starts_with(k));
        return has("m=") && has("t=") && has("p=") && b64(salt) && b64(hash);
    }
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let Some((cost, tail)) = rest.split_once('$') else {
                return false;
            };
            return cost.len() == 2
                && cost.bytes().all(|b| b.is_ascii_digit())
                && tail.len() == 53
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
        }
    }
    false
}

fn normalize_path(path: &str) -> Result<String, RuleError> {
    if path.is_empty() {
        return Ok("/".to_string());
    }
    let bad = || RuleError::BadPath(path.to_string());
    if !path.starts_with('/') || path.contains('\\') || path.chars().any(char::is_control) {
        return Err(bad());
    }
    let mut out = String::with_capacity(path.len());
    for seg in segments(path) {
        if seg == "." || seg == ".." {
            return Err(bad());
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// How many segments of `path` the rule path `prefix` covers, or `None` when it does
/// not cover it (segment-wise: `/a` covers `/a/b`, not `/ab`).
fn covers(prefix: &str, path: &str) -> Option<usize> {
    let mut path_segs = segments(path);
    let mut n = 0;
    for seg in segments(prefix) {
        if path_segs.next() != Some(seg) {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// What a request does: reading (GET, HEAD, listings, archives) or writing (uploads,
/// `PUT`, `DELETE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The outcome of [`Rules::decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 401 with `WWW-Authenticate`: no (valid) credentials, and nothing grants anonymous
    /// access.
    Unauthorized,
    /// 403: a verified user without the grant.
    Forbidden,
}

/// The rules in force (from `--auth` and `--auth-file` together).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// The rules, checked: a user given two different hashes is an error.
    pub fn new(rules: Vec<Rule>) -> Result<Rules, RuleError> {
        let mut set = Rules::default();
        for rule in rules {
            set.push(rule)?;
        }
        Ok(set)
    }

    /// Adds one rule (after those there are): an error if it gives its user another hash
    /// than an earlier rule did.
    pub fn push(&mut self, rule: Rule) -> Result<(), RuleError> {
        if let (Some(user), Some(hash)) = (&rule.user, &rule.hash) {
            if self.hash_of(user).is_some_and(|h| h != hash) {
                return Err(RuleError::ConflictingHash(user.clone()));
            }
        }
        self.rules.push(rule);
        Ok(())
    }

    /// An auth file: one rule a line; blank lines and lines starting with `#` (after
    /// leading whitespace) are skipped. The error carries its 1-based line number.
    pub fn parse_lines(text: &str) -> Result<Rules, (usize, RuleError)> {
        let mut rules = Rules::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            parse_rule(line)
                .and_then(|rule| rules.push(rule))
                .map_err(|e| (i + 1, e))?;
        }
        Ok(rules)
    }

    /// No rules: access control is off.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The PHC string to verify `user`'s password against; `None` for an unknown user
    /// (then verify against a dummy hash, so that the answer takes the same time).
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.user.as_deref() == Some(user))
            .and_then(|r| r.hash.as_deref())
    }

    /// The permission on `path` for `user` (`None`: anonymous): among the rules that
    /// apply to the requester — the anonymous ones and the user's own — and cover the
    /// path, the one whose path is the longest segment-wise prefix sets it (SPEC "Access
    /// control"); on a tie the stronger wins.
    fn perm_of(&self, path: &str, user: Option<&str>) -> Option<Perm> {
        let mut best: Option<(usize, Perm)> = None;
        let applies = |r: &&Rule| r.user.is_none() || (user.is_some() && r.user.as_deref() == user);
        for r in self.rules.iter().filter(applies) {
            if let Some(len) = covers(&r.path, path) {
                best = match best {
                    Some((l, p)) if l > len || (l == len && p >= r.perm) => Some((l, p)),
                    _ => Some((len, r.perm)),
                };
            }
        }
        best.map(|(_, p)| p)
    }

    /// Whether `access` to `path` (a request path, decoded: `/a/b.txt`; `a/b.txt` is
    /// the same) is allowed to `user` (a verified user name, or `None`).
    pub fn decide(&self, path: &str, access: Access, user: Option<&str>) -> Decision {
        if self.rules.is_empty() {
            return Decision::Allow;
        }
        let perm = self.perm_of(path, user);
        let needed = match access {
            Access::Read => Perm::Ro,
            Access::Write => Perm::Rw,
        };
        match (perm, user) {
            (Some(p), _) if p >= needed => Decision::Allow,
            (_, None) => Decision::Unauthorized,
            (_, Some(_)) => Decision::Forbidden,
        }
    }

    /// Whether some rule (anyone's) grants `rw` on `path`: where none does, `PUT` and
    /// `DELETE` are not methods of the path at all (405), whoever asks.
    pub fn may_be_written(&self, path: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.perm == Perm::Rw && covers(&r.path, path).is_some())
    }

    /// Whether `user` may read `path` (to filter listings and archives).
    pub fn may_read(&self, path: &str, user: Option<&str>) -> bool {
        self.decide(path, Access::Read, user) == Decision::Allow
    }
}

/// The user and password of an `Authorization: Basic` value (RFC 7617): the scheme is
/// case-insensitive, the credentials standard base64 (padding optional), UTF-8, split at
/// the first `:`. `None` when any of that fails or the user is empty.
pub fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let value = crate::syntax::trim_ows(value);
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64_decode(crate::syntax::trim_ows(rest))?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 (RFC 4648 §4) with optional `=` padding; `None` on anything else.
fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    fn value(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = match input {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        all => all,
    };
    if (input.len() != body.len() && !input.len().is_multiple_of(4)) || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            acc |= value(b)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The failures that make a peer wait: this many within [`FAILURE_WINDOW_MS`].
pub const MAX_FAILURES: u32 = 10;
/// The window that starts with a peer's first failure.
pub const FAILURE_WINDOW_MS: u64 = 60_000;

/// Failed authentications per peer address, bounded: ten within a minute, and that peer
/// gets 429 until the minute that started with its first failure is over. When the table
/// is full, the entry whose window started first makes room, so a spray of addresses
/// cannot grow it. Shared between connections (a mutex inside).
#[derive(Debug)]
pub struct FailureLimiter {
    capacity: usize,
    table: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(FailureLimiter::CAPACITY)
    }
}

impl FailureLimiter {
    /// The default number of addresses kept.
    pub const CAPACITY: usize = 4096;

    /// A table of at most `capacity` addresses (at least one).
    pub fn new(capacity: usize) -> FailureLimiter {
        FailureLimiter {
            capacity: capacity.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u64, u32)>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one failure from `addr` at `now_ms` (monotonic milliseconds).
    pub fn record_failure(&self, addr: IpAddr, now_ms: u64) {
        let mut table = self.lock();
        if let Some((start, count)) = table.get_mut(&addr) {
            if now_ms.saturating_sub(*start) < FAILURE_WINDOW_MS {
                *count = count.saturating_add(1);
            } else {
                (*start, *count) = (now_ms, 1);
            }
            return;
        }
        if table.len() >= self.capacity {
            table.retain(|_, (start, _)| now_ms.saturating_sub(*start) < FAILURE_WINDOW_MS);
        }
        if table.len() >= self.capacity {
            if let Some(oldest) = table
                .iter()
                .min_by_key(|(_, (start, _))| *start)
                .map(|(a, _)| *a)
            {
                table.remove(&oldest);
            }
        }
        table.insert(addr, (now_ms, 1));
    }

    /// `Some(seconds)` for the `Retry-After` of a 429 while `addr` has had
    /// [`MAX_FAILURES`] failures in its current window; `None` when it may try.
    pub fn retry_after(&self, addr: IpAddr, now_ms: u64) -> Option<u64> {
        let table = self.lock();
        let &(start, count) = table.get(&addr)?;
        let end = start.saturating_add(FAILURE_WINDOW_MS);
        if count < MAX_FAILURES || now_ms >= end {
            return None;
        }
        Some((end - now_ms).div_ceil(1000).max(1))
    }

    /// How many addresses the table holds now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The access rules of a running server: swapped whole when `--auth-file` is read again
/// (SIGHUP), each swap moving a generation (a credential verified under an older one is
/// not trusted any more); and the failure limiter all connections share.
#[derive(Debug)]
pub struct AccessControl {
    rules: std::sync::RwLock<std::sync::Arc<Rules>>,
    generation: std::sync::atomic::AtomicU64,
    limiter: FailureLimiter,
    /// The realm of `WWW-Authenticate`.
    pub realm: String,
}

impl AccessControl {
    /// Access control with `rules`; `realm` names the server in the browser's prompt.
    pub fn new(rules: Rules, realm: impl Into<String>) -> AccessControl {
        AccessControl {
            rules: std::sync::RwLock::new(std::sync::Arc::new(rules)),
            generation: std::sync::atomic::AtomicU64::new(0),
            limiter: FailureLimiter::default(),
            realm: realm.into(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> std::sync::Arc<Rules> {
        let guard = self
            .rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::sync::Arc::clone(&guard)
    }

    /// Puts new rules in force (a reload); what was verified before is forgotten.
    pub fn replace(&self, rules: Rules) {
        let mut guard = self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = std::sync::Arc::new(rules);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Moves on at every [`AccessControl::replace`].
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The failed attempts per peer address.
    pub fn limiter(&self) -> &FailureLimiter {
        &self.limiter
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;

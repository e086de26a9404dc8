//! Passwords for `--auth` (SPEC "Access control"): hashing for `--hash-password`,
//! verifying a password against a rule's PHC string, a dummy verification that costs
//! the same for unknown users, and the cache of recent successful checks.
//!
//! ```text
//! let phc = hash_password(&password)?;              // --hash-password prints this
//! let ok = match rules.hash_of(&user) {             // protocol::Rules
//!     _ if cache.get(&user, &pw, Instant::now()) => true,
//!     Some(phc) => verify(phc, &pw),                // tens of ms: a blocking job
//!     None => verify_dummy(&pw),                    // as long, always false
//! };
//! if ok { cache.insert(&user, &pw, Instant::now()) }
//! ```
//!
//! Hashes are argon2id with the OWASP minimum (m = 19456 KiB, t = 2, p = 1) and a
//! random 16-byte salt; verification also takes bcrypt (`$2a$`, `$2b$`, `$2y$`, what
//! `htpasswd -B` writes; passwords past 72 bytes are truncated, as htpasswd does).
//!
//! The [`CredentialCache`] keeps no password and no user name in clear: its keys are
//! SHA-256 of a per-process random salt, the user (length-prefixed) and the password.
//! It holds at most 1024 entries for at most 10 minutes each; a reload of the rules
//! calls [`CredentialCache::clear`].

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The argon2id memory cost in KiB (OWASP's minimum: 19 MiB).
pub const M_COST: u32 = 19_456;
/// The argon2id time cost (iterations).
pub const T_COST: u32 = 2;
/// The argon2id parallelism.
pub const P_COST: u32 = 1;

/// A hash of a random password with the parameters of [`hash_password`]: what an unknown
/// user's password is checked against, so that the answer takes the same time.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$9ccpFZ4ED/3QhCaXs/trSg$m2yCkz7W9+Z/IUrDWqDE5gLIpzDNOWYeoF9jm70JEsg";

/// Hashing failed (only a password longer than argon2 takes, 4 GiB, or an operating
/// system without a random source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashError(String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot hash the password: {}", self.0)
    }
}

impl std::error::Error for HashError {}

fn argon2id() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(M_COST, T_COST, P_COST, None).map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    let hash = argon2id()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches `phc` (argon2id or bcrypt). Anything that is not a valid
/// hash of either kind is `false`.
pub fn verify(phc: &str, password: &str) -> bool {
    if phc.starts_with("$2a$") || phc.starts_with("$2b$") || phc.starts_with("$2y$") {
        return bcrypt::verify(password, phc).unwrap_or(false);
    }
    if !phc.starts_with("$argon2id$") {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Verification takes the parameters from the PHC string itself.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// As long as a real argon2id verification with the parameters of [`hash_password`],
/// and always `false`: for a user that does not exist.
pub fn verify_dummy(password: &str) -> bool {
    let _ = verify(DUMMY_PHC, password);
    false
}

/// Successful checks, remembered for a while (see the module doc). Thread-safe.
#[derive(Debug)]
pub struct CredentialCache {
    salt: [u8; 32],
    capacity: usize,
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        CredentialCache::new(CredentialCache::CAPACITY, CredentialCache::TTL)
    }
}

impl CredentialCache {
    /// How many checks are remembered by default.
    pub const CAPACITY: usize = 1024;
    /// For how long a check is remembered by default.
    pub const TTL: Duration = Duration::from_secs(600);

    /// A cache of at most `capacity` entries (at least one), each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let mut salt = [0u8; 32];
        if getrandom::fill(&mut salt).is_err() {
            // No random source: a salt no one outside this process can predict anyway.
            use std::hash::{BuildHasher, Hasher};
            for (i, chunk) in salt.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        CredentialCache {
            salt,
            capacity: capacity.max(1),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update((user.len() as u64).to_be_bytes());
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this user and password were verified less than the TTL before `now`.
    pub fn get(&self, user: &str, password: &str, now: Instant) -> bool {
        let key = self.key(user, password);
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(&at) if now.saturating_duration_since(at) < self.ttl => true,
            Some(_) => {
                entries.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Remembers that this user and password were verified at `now`. When full, the
    /// expired entries go, then the oldest.
    pub fn insert(&self, user: &str, password: &str, now: Instant) {
        let key = self.key(user, password);
        let mut entries = self.lock();
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                if let Some(oldest) = entries.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, now);
    }

    /// Forgets everything (the rules were reloaded).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many checks are remembered.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hash_password("correct horse battery staple")`, once (also in protocol's tests).
    const ARGON: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$Qv7noOM/oJneoHxRjPDsNg$JSkNbc328iJYpz2aORrG51W/6OjasWah5lkgY3jedvI";

    #[test]
    fn hashes_verify() {
        let a = hash_password("s3cret pässword").unwrap();
        let b = hash_password("s3cret pässword").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify(&a, "s3cret pässword") && verify(&b, "s3cret pässword"));
        assert!(
            !verify(&a, "s3cret password") && !verify(&a, "") && !verify(&a, "s3cret pässword ")
        );
        // The rules accept what --hash-password prints.
        let rule = protocol::parse_rule(&format!("alice:{a}@/:rw")).unwrap();
        assert_eq!(rule.hash.as_deref(), Some(a.as_str()));
        assert!(verify(ARGON, "correct horse battery staple"));
        assert!(!verify(ARGON, "correct horse battery stapler"));
        let empty = hash_password("").unwrap();
        assert!(verify(&empty, "") && !verify(&empty, " "));
    }

    #[test]
    fn bcrypt_hashes_verify() {
        let table: &[(&str, &str)] = &[
            // `htpasswd -nbB user pass` and `htpasswd -nbB -C 5 alice 'correct horse'`.
            (
                "$2y$05$aQbLTEW1gK0RSKxae/gQF.jD6vDdlRW2wUbHdInzx/WaZJwAy4keu",
                "pass",
            ),
            (
                "$2y$05$8lPem.reVXwJRFkmsyqIY.XO3tLm/Mp8BS7ALwA4ELdHbM7WHxaGG",
                "correct horse",
            ),
            // PHP's password_verify documentation.
            (
                "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a",
                "rasmuslerdorf",
            ),
            // OpenBSD / Openwall test vectors ($2a$) and the same hash as $2b$.
            (
                "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                "U*U",
            ),
            (
                "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                "U*U",
            ),
        ];
        for &(phc, pw) in table {
            assert!(verify(phc, pw), "{phc}");
            assert!(!verify(phc, &format!("{pw}x")), "{phc}");
            assert!(protocol::parse_rule(&format!("bob:{phc}")).is_ok(), "{phc}");
        }
    }

    #[test]
    fn bad_hashes_are_false() {
        for phc in [
            "",
            "plain",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
            "$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$SqlVijFGiPG+935vDSGEsA",
            "$2y$05$tooshort",
            "$2y$99$aQbLTEW1gK0RSKxae/gQF.jD6vDdlRW2wUbHdInzx/WaZJwAy4keu",
            "$2x$05$aQbLTEW1gK0RSKxae/gQF.jD6vDdlRW2wUbHdInzx/WaZJwAy4keu",
        ] {
            assert!(!verify(phc, "pass"), "{phc:?}");
            assert!(!verify(phc, ""), "{phc:?}");
        }
    }

    #[test]
    fn dummy_costs_the_same() {
        // The dummy has exactly the parameters of a fresh hash.
        let fresh = hash_password("x").unwrap();
        let params = |phc: &str| phc.split('$').nth(3).map(str::to_string);
        assert_eq!(params(DUMMY_PHC), params(&fresh));
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
        assert!(!verify_dummy("x") && !verify_dummy(""));
        // Interleaved, so that a busy machine slows both alike; the median of nine.
        let time = |f: &dyn Fn() -> bool| {
            let t = Instant::now();
            assert!(!f());
            t.elapsed()
        };
        let (mut real, mut dummy) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            real.push(time(&|| verify(&fresh, "wrong")));
            dummy.push(time(&|| verify_dummy("wrong")));
        }
        real.sort();
        dummy.sort();
        let (real, dummy) = (real[4], dummy[4]);
        let ratio = real.as_secs_f64() / dummy.as_secs_f64();
        assert!(
            (0.5..=2.0).contains(&ratio),
            "real {real:?}, dummy {dummy:?}"
        );
    }

    #[test]
    fn cache_remembers_for_a_while() {
        let cache = CredentialCache::default();
        let t0 = Instant::now();
        assert!(cache.is_empty() && !cache.get("alice", "pw", t0));
        cache.insert("alice", "pw", t0);
        assert!(cache.get("alice", "pw", t0));
        assert!(cache.get("alice", "pw", t0 + Duration::from_secs(599)));
        assert!(!cache.get("alice", "pw2", t0), "another password");
        assert!(!cache.get("bob", "pw", t0), "another user");
        assert!(!cache.get("alicep", "w", t0) && !cache.get("alic", "epw", t0));
        // The separator cannot be forged from either side.
        cache.insert("a", "b\0c", t0);
        assert!(!cache.get("a\0b", "c", t0));
        // Expired after 10 minutes, and then forgotten.
        assert!(!cache.get("alice", "pw", t0 + Duration::from_secs(600)));
        assert!(!cache.get("alice", "pw", t0));
        cache.insert("alice", "pw", t0);
        cache.clear();
        assert!(cache.is_empty() && !cache.get("alice", "pw", t0));
        // Nothing in clear: the keys are digests, different in each process (salt).
        let other = CredentialCache::default();
        assert_ne!(cache.key("alice", "pw"), other.key("alice", "pw"));
        assert_eq!(cache.key("alice", "pw"), cache.key("alice", "pw"));
    }

    #[test]
    fn cache_is_bounded() {
        let cache = CredentialCache::new(8, Duration::from_secs(600));
        let t0 = Instant::now();
        for i in 0..100u64 {
            cache.insert(&format!("user{i}"), "pw", t0 + Duration::from_millis(i));
            assert!(cache.len() <= 8);
        }
        // The newest stay, the oldest went.
        assert!(cache.get("user99", "pw", t0 + Duration::from_secs(1)));
        assert!(cache.get("user92", "pw", t0 + Duration::from_secs(1)));
        assert!(!cache.get("user91", "pw", t0 + Duration::from_secs(1)));
        // Re-inserting a present entry evicts nothing.
        cache.insert("user99", "pw", t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 8);
        // Expired entries make room first.
        let late = t0 + Duration::from_secs(601);
        cache.insert("user99", "pw", late);
        cache.insert("new", "pw", late);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("user99", "pw", late) && cache.get("new", "pw", late));
    }

    #[test]
    fn cache_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<CredentialCache>();
        let cache = std::sync::Arc::new(CredentialCache::default());
        let t0 = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        cache.insert(&format!("u{n}-{i}"), "pw", t0);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(cache.len(), 400);
        assert!(cache.get("u3-99", "pw", t0));
    }
}

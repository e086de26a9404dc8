//! The process's file-descriptor limit. Every connection, cached large file, upload and
//! directory listing holds a descriptor; with Linux's default soft limit of 1,024, a
//! crawl of large files once made `accept` fail and every upload a 500. At start the
//! soft limit is raised to the hard one ([`raise_nofile`]); the open-file cache keeps at
//! most a quarter of it ([`fd_budget`]), and `--max-connections` is capped to what fits beside that ([`connections_that_fit`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Descriptors kept free for everything but connections and the cache: the listener,
/// logs, uploads being written, directories being listed, the blocking pool's files.
pub const RESERVE: u64 = 64;

static NOFILE: AtomicU64 = AtomicU64::new(0);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (Unix) and returns the soft limit
/// in force. Call once at start, before anything is sized from [`nofile`].
pub fn raise_nofile() -> u64 {
    let soft = sys::raise();
    NOFILE.store(soft, Ordering::Relaxed);
    soft
}

/// The soft descriptor limit ([`raise_nofile`] sets it; before that, it is read).
pub fn nofile() -> u64 {
    match NOFILE.load(Ordering::Relaxed) {
        0 => sys::soft(),
        n => n,
    }
}

/// The open-file cache's most entries (`crate::cache` holds at most this many).
pub const CACHE_ENTRIES: usize = 1024;

/// How many descriptors of large files the open-file cache may keep open: a quarter of
/// the process's limit (after [`raise_nofile`]), at most `entries`.
pub fn fd_budget(entries: usize) -> usize {
    (nofile() / 4).clamp(4, entries as u64) as usize
}

/// How many connections fit in the descriptor limit beside the cache and the reserve.
pub fn connections_that_fit() -> u64 {
    nofile()
        .saturating_sub(fd_budget(CACHE_ENTRIES) as u64)
        .saturating_sub(RESERVE)
        .max(16)
}

#[cfg(unix)]
mod sys {
    fn get() -> Option<libc::rlimit> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
    }

    pub(super) fn soft() -> u64 {
        #[allow(clippy::useless_conversion)] // rlim_t is u64 here, not everywhere
        get().map_or(1024, |l| u64::try_from(l.rlim_cur).unwrap_or(u64::MAX))
    }

    pub(super) fn raise() -> u64 {
        let Some(mut lim) = get() else {
            return 1024;
        };
        // macOS refuses more than OPEN_MAX for an unlimited hard limit.
        #[cfg(target_vendor = "apple")]
        let target = lim.rlim_max.min(10_240);
        #[cfg(not(target_vendor = "apple"))]
        let target = lim.rlim_max;
        if lim.rlim_cur < target {
            let old = lim.rlim_cur;
            lim.rlim_cur = target;
            // SAFETY: setrlimit reads one rlimit through a valid pointer.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
                log::info!("raised the open-file limit from {old} to {target}");
            }
        }
        soft()
    }
}

#[cfg(not(unix))]
mod sys {
    /// Windows has no per-process descriptor limit of this kind (handles are plenty).
    pub(super) fn soft() -> u64 {
        16_384
    }

    pub(super) fn raise() -> u64 {
        soft()
    }
}

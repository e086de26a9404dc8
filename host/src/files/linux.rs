//! The Linux fast path below the root: `openat2(RESOLVE_BENEATH)`, and its fallbacks
//! (see the [module doc](super)). Never used with `PORTABLE_IO=1`.

use std::os::fd::OwnedFd;

use protocol::FileError;
use rustix::fs::{Mode, ResolveFlags};
use rustix::io::Errno;

use super::unix::{open_error, DIR_FLAGS, OPEN_READ};

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// Whether `openat2` works here: old kernels say `ENOSYS`, some sandboxes `EPERM`.
pub(super) fn probe_openat2(dir: &OwnedFd) -> bool {
    let works = rustix::fs::openat2(dir, ".", DIR_FLAGS, Mode::empty(), BENEATH).is_ok();
    if !works {
        log::warn!("openat2 is not available: opening files by walking below the root");
    }
    works
}

/// Why the fast path gave up on a path.
pub(super) enum Fallback {
    /// The answer: not found, forbidden, or another error.
    Refused(FileError),
    /// `openat2` refused a symlink that leaves the root or is absolute (`EXDEV`), or
    /// kept answering `EAGAIN`: the walk decides.
    Walk,
}

/// `EAGAIN`s retried before the walk takes over.
const AGAIN_TRIES: u32 = 3;

/// Opens `rel` below the root directory `dir`.
pub(super) fn open(dir: &OwnedFd, rel: &str) -> Result<OwnedFd, Fallback> {
    for _ in 0..AGAIN_TRIES {
        match rustix::fs::openat2(dir, rel, OPEN_READ, Mode::empty(), BENEATH) {
            Ok(fd) => return Ok(fd),
            // An absolute symlink, or one climbing out: the walk decides by its target.
            Err(Errno::XDEV) => return Err(Fallback::Walk),
            // RESOLVE_BENEATH with `..`: any rename on the system meanwhile makes the
            // kernel answer EAGAIN (issue 13: it was a sporadic 500).
            Err(Errno::AGAIN) => continue,
            Err(e) => return Err(Fallback::Refused(open_error(e))),
        }
    }
    Err(Fallback::Walk)
}

//! Change notification for the open-file cache (Linux: inotify), so that a hit needs no
//! `fstatat`.
//!
//! Every event on a watched inode bumps one generation number; a cache entry remembers
//! the generation at which one `fstatat` last showed it unchanged, and while the number
//! has not moved it is answered with no system call at all. Which event it was does not
//! matter: any change near a cached file sends every entry back to one `fstatat`.
//!
//! What is watched for an entry `a/b/f`: the root, `a`, `a/b` (a rename or removal of
//! any of them, or a new entry in them) and `f` itself (written, truncated, its
//! attributes or link count changed; also through another hard link). A path with a
//! symbolic link in it is not covered (the link's target's parents are not watched) and
//! is always checked with `fstatat`.
//!
//! Watches are never removed (an evicted entry's watch only costs a wake-up when its
//! file changes); past the kernel's `max_user_watches` a new entry is simply not
//! covered, and keeps its `fstatat`.
//!
//! The runtime must read the events before it answers a request that came after them.
//! Two ways: runtime-smol calls [`Watch::changed`] when the inotify descriptor turns
//! readable, in the same reactor wait that brought the request, before the request's
//! task runs (see its reactor); runtime-std's blocking workers call
//! [`Watch::catch_up`] after a request arrived and before they look it up (one
//! `FIONREAD` that finds the queue empty: cheaper than the `fstatat` it replaces, no
//! path walk).
//! The kernel queues an event inside the system call that made the change, so a change
//! whose call returned before the client sent its request is in the queue by then.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::fs::{AtFlags, FileType};

/// The events that may change what a path names (never `ACCESS`, `OPEN` or
/// `CLOSE_NOWRITE`: the server's own reads would wake it). `DONT_FOLLOW`: a symbolic
/// link is watched as itself.
const EVENTS: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF);

pub(crate) struct Watch {
    fd: OwnedFd,
    generation: AtomicU64,
    /// Threads inside [`Watch::catch_up`]'s read (one of them may hold events it has
    /// not counted yet).
    reading: AtomicUsize,
}

impl Watch {
    pub(crate) fn new() -> std::io::Result<Watch> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(Watch {
            fd,
            generation: AtomicU64::new(0),
            reading: AtomicUsize::new(0),
        })
    }

    /// The descriptor that turns readable when something changed.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Something changed: every entry is checked again. The generation moves before the
    /// queue is read, so a thread that finds the queue already empty (another thread
    /// read it) finds the generation moved too.
    pub(crate) fn changed(&self) {
        let mut buf = [0u8; 4096];
        loop {
            self.generation.fetch_add(1, Ordering::SeqCst);
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    /// Reads what the queue holds now, from any thread: `true` if every change queued
    /// before this call is counted in the generation when it returns (then a hit
    /// confirmed at the current generation needs no `fstatat`). `false` when another
    /// thread was reading at the same time: it may have taken events it has not counted
    /// yet, so the caller checks with `fstatat` this once.
    pub(crate) fn catch_up(&self) -> bool {
        self.reading.fetch_add(1, Ordering::SeqCst);
        // Per request: one `FIONREAD` (no buffer to fill); the queue is read only when
        // it holds something.
        if rustix::io::ioctl_fionread(&self.fd).is_ok_and(|n| n > 0) {
            let mut buf = [0u8; 4096];
            while matches!(rustix::io::read(&self.fd, &mut buf), Ok(n) if n > 0) {}
            // Counted after the reads, before this thread leaves `reading`.
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.reading.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Watches every directory from the root down to `rel`, and `rel` itself; `false`
    /// if one of them could not be watched or is a symbolic link (the entry is then
    /// always checked with `fstatat`).
    pub(crate) fn cover(&self, root: &OwnedFd, rel: &str) -> bool {
        let base = format!("/proc/self/fd/{}", root.as_raw_fd());
        // The root through the magic link itself (followed: it is the root's inode).
        if inotify::add_watch(&self.fd, base.as_str(), EVENTS).is_err() {
            return false;
        }
        let mut end = 0;
        while end < rel.len() {
            end = rel[end..].find('/').map_or(rel.len(), |i| end + i);
            let prefix = &rel[..end];
            end += 1;
            let path = format!("{base}/{prefix}");
            if inotify::add_watch(&self.fd, path.as_str(), EVENTS | WatchFlags::DONT_FOLLOW)
                .is_err()
            {
                return false;
            }
            match rustix::fs::statat(root, prefix, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Symlink => {}
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_counts_what_was_queued_and_defers_to_a_concurrent_reader() {
        let dir = std::env::temp_dir().join(format!("watch-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/f.txt"), b"one").unwrap();
        let root: OwnedFd = std::fs::File::open(&dir).unwrap().into();
        let w = Watch::new().unwrap();
        assert!(w.cover(&root, "a/f.txt"));
        // Nothing changed: caught up, the generation stays.
        let g = w.generation();
        assert!(w.catch_up());
        assert_eq!(w.generation(), g);
        // A write that returned is counted by the next catch-up.
        std::fs::write(dir.join("a/f.txt"), b"two").unwrap();
        assert!(w.catch_up());
        assert!(w.generation() > g);
        // So is a new entry in a watched directory.
        let g = w.generation();
        std::fs::write(dir.join("a/g.txt"), b"new").unwrap();
        assert!(w.catch_up());
        assert!(w.generation() > g);
        // Another thread in the middle of its read: not caught up (it may hold events
        // it has not counted yet).
        w.reading.fetch_add(1, Ordering::SeqCst);
        assert!(!w.catch_up());
        w.reading.fetch_sub(1, Ordering::SeqCst);
        assert!(w.catch_up());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

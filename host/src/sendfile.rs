//! File → socket: each platform's zero-copy `sendfile`, a buffered copy everywhere
//! else, and corking.
//!
//! `std::io::copy` from a `File` to a `TcpStream` reads and writes through a user-space
//! buffer; `sendfile` lets the kernel move page-cache pages to the socket directly, so a
//! large download costs neither memory nor a copy. What each platform takes:
//!
//! | platform | body | cork |
//! |---|---|---|
//! | Linux | `sendfile(2)` (rustix) | `TCP_CORK` |
//! | Linux, `PORTABLE_IO=1` | buffered copy | none |
//! | macOS | `sendfile(2)` (libc; `off_t *len` in and out) | `TCP_NOPUSH` |
//! | FreeBSD | `sendfile(2)` (libc; `nbytes` in, `off_t *sbytes` out) | `TCP_NOPUSH` |
//! | Windows, others | buffered copy | none |
//!
//! The buffered copy is one positioned read (`pread`; `seek_read` on Windows) of at most
//! 64 KiB into a per-thread buffer, then one `write` to the socket; a `sendfile` that the
//! file system refuses falls back to it as well. On Linux, `PORTABLE_IO=1` selects it
//! ([`crate::portable_sockets`]), so that a Linux run can exercise the code Windows
//! runs: such a run makes no `sendfile` call. (macOS and FreeBSD always send with their
//! own `sendfile`, although [`crate::portable_io`] — which chooses the file-system
//! paths — is always true there.)
//!
//! Every path works on blocking sockets (it returns once something was sent, or after
//! `SO_SNDTIMEO` with `WouldBlock`/`TimedOut`) and on non-blocking ones (`WouldBlock`
//! when the socket buffer is full: wait for writability and call again; the buffered
//! copy then reads the same bytes again, as it keeps nothing between calls).

use crate::net::Stream;
use std::fs::File;
use std::io::{self, Write};

/// The most one call moves (Linux's limit for one `sendfile`).
const MAX_CHUNK: u64 = 0x7fff_f000;
/// The buffer of the buffered copy.
const COPY_CHUNK: usize = 64 * 1024;

/// Sends up to `len` bytes of `file`, starting at `*offset`, to the socket `sock`;
/// advances `*offset` by the count sent and returns it. `Ok(0)` with `len > 0` means
/// the file ended early (it was truncated). `WouldBlock` means the socket is not
/// writable now (non-blocking) or its send timeout passed (blocking; `TimedOut` on
/// Windows).
pub fn send_file(sock: &Stream, file: &File, offset: &mut u64, len: u64) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    let count = usize::try_from(len.min(MAX_CHUNK)).unwrap_or(usize::MAX);
    if zero_copy() {
        sys::send_file(sock, file, offset, count)
    } else {
        copy_chunk(sock, file, offset, count)
    }
}

/// Reads `len` bytes of `file` from `offset` into the page cache, blocking until they
/// are there (Linux `readahead`; a hint elsewhere), so that sending them next does not
/// wait for the disk. Meant for a thread that may block (runtime-smol's blocking pool).
pub fn prefetch(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), usize::try_from(len)) else {
            return;
        };
        // SAFETY: readahead only reads the descriptor's file into the page cache.
        unsafe {
            libc::readahead(file.as_raw_fd(), off, n);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Whether `len` bytes of `file` from `offset` are all in the page cache now (Linux
/// `cachestat`, 6.5 and later; `false` when it cannot tell): then sending them cannot
/// wait for the disk, and runtime-smol skips the [`prefetch`] of a step (a job in the
/// blocking pool: a wake-up of a pool thread and one back, per MiB of a download).
pub fn cached(file: &File, offset: u64, len: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        /// `cachestat(2)`: the same number on every Linux architecture (since 6.5).
        const SYS_CACHESTAT: libc::c_long = 451;
        #[repr(C)]
        struct Range {
            off: u64,
            len: u64,
        }
        #[repr(C)]
        #[derive(Default)]
        struct Stat {
            nr_cache: u64,
            nr_dirty: u64,
            nr_writeback: u64,
            nr_evicted: u64,
            nr_recently_evicted: u64,
        }
        if len == 0 {
            return true;
        }
        let range = Range { off: offset, len };
        let mut stat = Stat::default();
        // SAFETY: cachestat reads `range` and writes `stat`, both live for the call.
        let r = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file.as_raw_fd(),
                &range as *const Range,
                &mut stat as *mut Stat,
                0u32,
            )
        };
        // Pages the range touches (cachestat counts whole pages).
        const PAGE: u64 = 4096;
        let pages = (offset + len).div_ceil(PAGE) - offset / PAGE;
        r == 0 && stat.nr_cache >= pages
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        false
    }
}

/// Corks (or uncorks) a TCP socket (a Unix-domain one is left as it is): while corked,
/// the kernel sends only full segments, so a response head and its `sendfile` body leave
/// as large packets (nginx's `tcp_nopush`). Measured on Linux on a 64 MiB download with 4 clients: 1.45 GB/s
/// without, 1.7–1.9 GB/s with. `TCP_CORK` on Linux, `TCP_NOPUSH` on macOS and FreeBSD;
/// nothing where the body goes by the buffered copy. Errors are ignored (a socket that
/// cannot cork still works).
pub fn set_cork(sock: &Stream, on: bool) {
    if zero_copy() {
        sys::set_cork(sock, on);
    }
}

/// Whether this process sends with the platform's `sendfile` (else by the buffered
/// copy, which costs the sending thread more per byte).
pub(crate) fn zero_copy() -> bool {
    cfg!(any(
        target_os = "linux",
        target_os = "macos",
        target_os = "freebsd"
    )) && !crate::portable_sockets()
}

thread_local! {
    /// The buffer of the buffered copy, one per thread (runtime-smol's executor threads
    /// and runtime-std's workers each have one).
    static COPY_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; COPY_CHUNK].into_boxed_slice());
}

/// One positioned read of at most 64 KiB, then one `write` of what it read: the portable
/// path, and the fallback when `sendfile` cannot be used. `Ok(0)`: the file ended.
fn copy_chunk(sock: &Stream, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
    COPY_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let want = count.min(buf.len());
        let n = loop {
            match read_at(file, &mut buf[..want], *offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Ok(0);
        }
        let sent = loop {
            match (&*sock).write(&buf[..n]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        *offset += sent as u64;
        Ok(sent)
    })
}

/// A read at `offset` that leaves the file's cursor alone where the platform can (the
/// cache shares one `File` between connections).
#[cfg(unix)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Windows has no `pread`: `seek_read` reads at `offset` (and moves the cursor, which
/// nothing here uses).
#[cfg(windows)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(not(any(unix, windows)))]
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

#[cfg(target_os = "linux")]
mod sys {
    use crate::net::Stream;
    use std::fs::File;
    use std::io;

    use rustix::io::Errno;

    pub(super) fn send_file(
        sock: &Stream,
        file: &File,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<usize> {
        loop {
            match rustix::fs::sendfile(sock, file, Some(offset), count) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                // A file system without sendfile support: copy through the buffer.
                Err(Errno::INVAL | Errno::NOSYS) => {
                    return super::copy_chunk(sock, file, offset, count)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(super) fn set_cork(sock: &Stream, on: bool) {
        if let Some(tcp) = sock.tcp() {
            let _ = rustix::net::sockopt::set_tcp_cork(tcp, on);
        }
    }
}

/// macOS and FreeBSD: `sendfile` through libc. Both report how much went out even when
/// the call fails with `EAGAIN` (a non-blocking socket filled up, or `SO_SNDTIMEO`
/// passed) or `EINTR`: a partial count is a success here.
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod sys {
    use crate::net::Stream;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsFd, AsRawFd};

    pub(super) fn send_file(
        sock: &Stream,
        file: &File,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<usize> {
        let Ok(start) = libc::off_t::try_from(*offset) else {
            return Ok(0); // past any file's end
        };
        loop {
            let (result, sent) = raw_sendfile(sock, file, start, count);
            let sent = usize::try_from(sent).unwrap_or(0);
            if result == 0 || sent > 0 {
                *offset += sent as u64;
                return Ok(sent);
            }
            let err = io::Error::last_os_error();
            // The file (system) or the socket cannot do it: copy through the buffer.
            // (ENOTSUP and EOPNOTSUPP are one value on FreeBSD, two on macOS.)
            let unsupported = [
                libc::EINVAL,
                libc::ENOTSUP,
                libc::EOPNOTSUPP,
                libc::ENOTSOCK,
            ];
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(code) if unsupported.contains(&code) => {
                    return super::copy_chunk(sock, file, offset, count)
                }
                _ => return Err(err),
            }
        }
    }

    /// `int sendfile(int fd, int s, off_t offset, off_t *len, struct sf_hdtr *hdtr,
    /// int flags)`: `*len` is the count asked for (0 would mean "to the end") and, on
    /// return, the count sent.
    #[cfg(target_os = "macos")]
    fn raw_sendfile(
        sock: &Stream,
        file: &File,
        start: libc::off_t,
        count: usize,
    ) -> (libc::c_int, libc::off_t) {
        let mut len = libc::off_t::try_from(count).unwrap_or(libc::off_t::MAX);
        // SAFETY: both descriptors are open for the call; `len` outlives it; no
        // headers or trailers.
        let result = unsafe {
            libc::sendfile(
                file.as_raw_fd(),
                sock.as_fd().as_raw_fd(),
                start,
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (result, len)
    }

    /// `int sendfile(int fd, int s, off_t offset, size_t nbytes, struct sf_hdtr *hdtr,
    /// off_t *sbytes, int flags)`: `nbytes` is the count asked for (0 would mean "to the
    /// end"), `*sbytes` the count sent.
    #[cfg(target_os = "freebsd")]
    fn raw_sendfile(
        sock: &Stream,
        file: &File,
        start: libc::off_t,
        count: usize,
    ) -> (libc::c_int, libc::off_t) {
        let mut sent: libc::off_t = 0;
        // SAFETY: both descriptors are open for the call; `sent` outlives it; no
        // headers or trailers.
        let result = unsafe {
            libc::sendfile(
                file.as_raw_fd(),
                sock.as_fd().as_raw_fd(),
                start,
                count,
                std::ptr::null_mut(),
                &mut sent,
                0,
            )
        };
        (result, sent)
    }

    /// `TCP_NOPUSH`: like Linux's `TCP_CORK`, full segments only while set.
    pub(super) fn set_cork(sock: &Stream, on: bool) {
        let Some(sock) = sock.tcp() else { return };
        let value = libc::c_int::from(on);
        // SAFETY: the descriptor is open; the option value is a live `c_int` of the
        // size given.
        let _ = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOPUSH,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

/// Everywhere else (Windows among them) the body goes by the buffered copy, uncorked.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
mod sys {
    use crate::net::Stream;
    use std::fs::File;
    use std::io;

    pub(super) fn send_file(
        sock: &Stream,
        file: &File,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<usize> {
        super::copy_chunk(sock, file, offset, count)
    }

    pub(super) fn set_cork(_sock: &Stream, _on: bool) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn file_of(data: &[u8]) -> File {
        let mut tmp = tempfile::tempfile().expect("tempfile");
        tmp.write_all(data).expect("write");
        tmp
    }

    /// Sends `file[from..to]` through `send` over a fresh connection; returns what the
    /// peer received and what one call past the file's end returned.
    fn send_range(
        file: &File,
        from: u64,
        to: u64,
        send: fn(&Stream, &File, &mut u64, u64) -> io::Result<usize>,
    ) -> (Vec<u8>, usize) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read");
            got
        });
        let sock = Stream::from(TcpStream::connect(addr).expect("connect"));
        set_cork(&sock, true);
        let mut offset = from;
        while offset < to {
            let left = to - offset;
            let n = send(&sock, file, &mut offset, left).expect("send");
            assert!(n > 0);
        }
        assert_eq!(offset, to);
        set_cork(&sock, false);
        // Past the end of the file: 0, the truncation signal.
        let mut past = file.metadata().expect("meta").len();
        let eof = send(&sock, file, &mut past, 10).expect("eof");
        drop(sock);
        (reader.join().expect("reader"), eof)
    }

    fn data() -> Vec<u8> {
        (0..300_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn sends_a_file_range_over_a_socket() {
        let data = data();
        let (got, eof) = send_range(&file_of(&data), 1000, 250_000, send_file);
        assert_eq!(eof, 0);
        assert_eq!(got, &data[1000..250_000]);
    }

    #[test]
    fn the_buffered_copy_sends_a_file_range_too() {
        fn copy(sock: &Stream, file: &File, offset: &mut u64, len: u64) -> io::Result<usize> {
            copy_chunk(sock, file, offset, len as usize)
        }
        let data = data();
        let (got, eof) = send_range(&file_of(&data), 7, 299_999, copy);
        assert_eq!(eof, 0);
        assert_eq!(got, &data[7..299_999]);
    }

    #[test]
    fn a_full_nonblocking_socket_says_would_block() {
        let tmp = file_of(&vec![7u8; 8 << 20]);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let sock = Stream::from(
            TcpStream::connect(listener.local_addr().expect("addr")).expect("connect"),
        );
        let _peer = listener.accept().expect("accept"); // never reads
        sock.set_nonblocking(true).expect("nonblocking");
        type Send = fn(&Stream, &File, &mut u64, u64) -> io::Result<usize>;
        let copy: Send = |s, f, o, l| copy_chunk(s, f, o, l as usize);
        for send in [send_file as Send, copy] {
            let mut offset = 0;
            let mut saw_would_block = false;
            for _ in 0..1000 {
                let left = (8 << 20) - offset;
                match send(&sock, &tmp, &mut offset, left) {
                    Ok(n) => assert!(n > 0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        saw_would_block = true;
                        break;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            assert!(saw_would_block, "sent {offset} bytes without blocking");
        }
    }
}

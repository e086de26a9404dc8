//! Sockets both runtimes use the same way: a [`Listener`] (TCP, or on Unix a Unix-domain
//! stream socket), what it accepts ([`Stream`], from a [`Peer`]), and [`accept`] for a
//! bare `TcpListener`. Where listeners come from (`--listen`, PORT/HOST, systemd) is
//! [`crate::listen`]'s.
//!
//! A runtime treats every listener alike: it polls it (`AsFd`, `AsSocket` on Windows),
//! calls [`Listener::accept`], and drives a session over the [`Stream`] (read, write,
//! `sendfile`, shut down); only `TCP_NODELAY` and corking are TCP's alone. When the
//! server drains, a runtime drops its listeners at once: new connections are refused
//! (a balancer moves on) instead of accepted and then reset, and a Unix socket file the
//! server made is removed ([`Listener`]'s `Drop`).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;

/// Accepts one connection, its socket non-blocking and with `TCP_NODELAY` (an answer's
/// head and small body go out in one segment at once): on Linux `accept4` with
/// `SOCK_NONBLOCK`, elsewhere with one more call. An IPv4-mapped peer address
/// (`::ffff:a.b.c.d`, on a dual-stack listener) is given as the IPv4 address.
pub fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    #[cfg(target_os = "linux")]
    let (stream, peer) = {
        use rustix::net::SocketFlags;
        let (fd, peer) =
            rustix::net::acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        let peer = peer
            .and_then(|p| SocketAddr::try_from(p).ok())
            .ok_or_else(|| io::Error::other("accepted a connection with no address"))?;
        (TcpStream::from(fd), peer)
    };
    #[cfg(not(target_os = "linux"))]
    let (stream, peer) = {
        let (stream, peer) = listener.accept()?;
        stream.set_nonblocking(true)?;
        (stream, peer)
    };
    let _ = stream.set_nodelay(true);
    // An IPv4 client of a dual-stack `[::]` listener is logged (and limited) by its IPv4
    // address.
    let peer = match peer {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::new(ip.into(), v6.port()),
            None => peer,
        },
        v4 => v4,
    };
    Ok((stream, peer))
}

/// One accepted connection: TCP, or a Unix-domain stream socket.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Shuts down one or both halves (as `TcpStream::shutdown`).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// Moves the socket in or out of non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// The TCP socket, if it is one (for what only TCP has: `TCP_NODELAY`, corking).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for Stream {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        match self {
            Stream::Tcp(s) => s.as_socket(),
        }
    }
}

/// Who is at the other end, for logs and for `--auth`'s failure limiter: a TCP peer's
/// address, or a Unix socket's client, named by the listener (`unix:PATH`; its peers
/// have no address of their own, so they share one limiter entry, as clients behind a
/// proxy share its address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Ip(SocketAddr),
    Local(Arc<str>),
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        Peer::Ip(addr)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Ip(a) => a.fmt(f),
            Peer::Local(name) => f.write_str(name),
        }
    }
}

/// What a listener is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// A TCP address; `host` is the name it was asked for (`localhost`, `0.0.0.0`,
    /// `::1`, …), from which its `Host` rules come.
    Tcp { addr: SocketAddr, host: String },
    /// A Unix-domain socket: `unix:PATH` (`unix:@NAME` for an abstract one, `unix:` for
    /// an unnamed one), and its path, if it has one.
    #[cfg(unix)]
    Unix {
        name: Arc<str>,
        path: Option<PathBuf>,
    },
}

impl Local {
    /// The host a TCP listener was asked for (`None` for a Unix socket).
    pub fn tcp_host(&self) -> Option<&str> {
        match self {
            Local::Tcp { host, .. } => Some(host),
            #[cfg(unix)]
            Local::Unix { .. } => None,
        }
    }
}

impl fmt::Display for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Local::Tcp { addr, .. } => addr.fmt(f),
            #[cfg(unix)]
            Local::Unix { name, .. } => f.write_str(name),
        }
    }
}

/// A listening socket (see the module documentation).
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    local: Local,
    /// A Unix socket file this process made (its device and inode): removed when the
    /// listener closes, unless another file has taken its path meanwhile.
    #[cfg(unix)]
    made: Option<(PathBuf, u64, u64)>,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

impl Listener {
    /// A TCP listener; `host` is the name it was asked for (its `Host` rules).
    pub fn tcp(listener: TcpListener, host: impl Into<String>) -> io::Result<Listener> {
        let addr = listener.local_addr()?;
        Ok(Listener {
            socket: Socket::Tcp(listener),
            local: Local::Tcp {
                addr,
                host: host.into(),
            },
            #[cfg(unix)]
            made: None,
        })
    }

    /// A Unix-domain listener. `made`: this process created the socket file at that
    /// path (it is then removed when the listener closes; a socket inherited from
    /// systemd is never removed).
    #[cfg(unix)]
    pub fn unix(listener: UnixListener, made: bool) -> io::Result<Listener> {
        use std::os::unix::fs::MetadataExt;
        let addr = listener.local_addr()?;
        let path = addr.as_pathname().map(PathBuf::from);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let abstract_name = {
            use std::os::linux::net::SocketAddrExt;
            addr.as_abstract_name()
                .map(|n| format!("@{}", String::from_utf8_lossy(n)))
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let abstract_name: Option<String> = None;
        let name = match (&path, abstract_name) {
            (Some(p), _) => format!("unix:{}", p.display()),
            (None, Some(n)) => format!("unix:{n}"),
            (None, None) => "unix:".to_string(),
        };
        let made = match (&path, made) {
            (Some(p), true) => {
                let meta = std::fs::symlink_metadata(p)?;
                Some((p.clone(), meta.dev(), meta.ino()))
            }
            _ => None,
        };
        Ok(Listener {
            socket: Socket::Unix(listener),
            local: Local::Unix {
                name: name.into(),
                path,
            },
            made,
        })
    }

    /// What it is bound to.
    pub fn local(&self) -> &Local {
        &self.local
    }

    /// The TCP address, if it is a TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match &self.local {
            Local::Tcp { addr, .. } => Some(*addr),
            #[cfg(unix)]
            Local::Unix { .. } => None,
        }
    }

    /// Accepts one connection, non-blocking (TCP: with `TCP_NODELAY`, see [`accept`]).
    pub fn accept(&self) -> io::Result<(Stream, Peer)> {
        match &self.socket {
            Socket::Tcp(l) => accept(l).map(|(s, a)| (Stream::Tcp(s), Peer::Ip(a))),
            #[cfg(unix)]
            Socket::Unix(l) => {
                #[cfg(target_os = "linux")]
                let stream = {
                    use rustix::net::SocketFlags;
                    let fd =
                        rustix::net::accept_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
                    UnixStream::from(fd)
                };
                #[cfg(not(target_os = "linux"))]
                let stream = {
                    let (stream, _) = l.accept()?;
                    stream.set_nonblocking(true)?;
                    stream
                };
                let name = match &self.local {
                    Local::Unix { name, .. } => Arc::clone(name),
                    Local::Tcp { .. } => Arc::from("unix:"),
                };
                Ok((Stream::Unix(stream), Peer::Local(name)))
            }
        }
    }

    /// Moves the listening socket in or out of non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(l) => l.set_nonblocking(on),
            #[cfg(unix)]
            Socket::Unix(l) => l.set_nonblocking(on),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(l) => l.as_fd(),
            Socket::Unix(l) => l.as_fd(),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for Listener {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        match &self.socket {
            Socket::Tcp(l) => l.as_socket(),
        }
    }
}

#[cfg(unix)]
impl Drop for Listener {
    /// Removes the socket file this process made, if the path still holds that very
    /// file (a successor may have bound the path once this listener stopped accepting;
    /// its socket is left alone).
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Some((path, dev, ino)) = self.made.take() {
            let ours =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
            if ours {
                match std::fs::remove_file(&path) {
                    Ok(()) => log::debug!("removed the socket file {}", path.display()),
                    Err(e) => log::warn!("cannot remove the socket file {}: {e}", path.display()),
                }
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_unix_listener_accepts_and_removes_its_file_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let listener =
            Listener::unix(UnixListener::bind(&path).expect("bind"), true).expect("listener");
        assert_eq!(
            listener.local().to_string(),
            format!("unix:{}", path.display())
        );
        let mut client = UnixStream::connect(&path).expect("connect");
        let (stream, peer) = listener.accept().expect("accept");
        assert_eq!(peer.to_string(), format!("unix:{}", path.display()));
        client.write_all(b"ping").expect("write");
        let mut buf = [0u8; 4];
        // Non-blocking: the bytes are there already, or come within a moment.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let n = loop {
            match (&stream).read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < until, "no bytes");
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("read: {e}"),
            }
        };
        assert_eq!(&buf[..n], b"ping");
        drop(listener);
        assert!(
            !path.exists(),
            "the socket file is removed with its listener"
        );
    }

    #[test]
    fn a_replaced_socket_file_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let first = Listener::unix(UnixListener::bind(&path).expect("bind"), true).expect("first");
        // Another process took the path (after removing ours): not ours to remove.
        std::fs::remove_file(&path).expect("rm");
        let _second = UnixListener::bind(&path).expect("bind again");
        drop(first);
        assert!(path.exists(), "the successor's socket file stays");
    }
}

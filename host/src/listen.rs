//! Where the server listens (SPEC "Operations"): the addresses of `--listen ADDR`
//! ([`ListenAddr`]: `HOST:PORT`, `[IPV6]:PORT`, `unix:PATH`), else PORT and HOST; or,
//! when systemd started the process with sockets of its own ([`inherited`], the
//! `sd_listen_fds` protocol), those sockets, and then nothing else.
//!
//! Decisions (also in the README, "Operating it"):
//!
//! - `[::]` (any IPv6 wildcard) is bound with `IPV6_V6ONLY` off, so it takes IPv4 too
//!   (as IPv4-mapped addresses; the peer is logged as the IPv4 address), where the system
//!   allows it; where it does not, a warning says so and it takes IPv6 only.
//! - `unix:PATH`: an existing socket file that a live server answers on is refused (exit
//!   1, like a port in use); one nobody answers on (left by a crash) is removed and bound
//!   again; any other file there is refused. The file is made `0660` (owner and group: put
//!   the proxy in the server's group; the directory's permissions are the operator's), and
//!   removed when the server stops accepting, if the path still holds that very file.
//! - Sockets inherited from systemd (`LISTEN_PID` is this process, `LISTEN_FDS` sockets
//!   from descriptor 3) replace `--listen` and PORT/HOST, which are then ignored (logged):
//!   a unit can keep one command line whether or not its `.socket` is used. Each must be
//!   a listening stream socket (TCP or Unix), else start-up fails (exit 1). The
//!   variables are removed from the environment and the descriptors made close-on-exec;
//!   systemd's socket files are never removed.
//!
//! Every TCP listener gets the listen backlog [`BACKLOG`] (the kernel caps it at
//! `somaxconn`), `SO_REUSEADDR` on Unix (as std does), and `SO_REUSEPORT` with
//! `--reuse-port`.

use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;

use crate::net::Listener;

/// The listen backlog asked for: 4,096 on Unix (std's 128 is smaller than a burst of
/// connects: the rest would wait a SYN retransmit, 1 s and more); std's 128 elsewhere.
#[cfg(unix)]
pub const BACKLOG: i32 = 4096;
/// The listen backlog asked for: 4,096 on Unix; std's 128 elsewhere.
#[cfg(not(unix))]
pub const BACKLOG: i32 = 128;

/// One `--listen` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// `HOST:PORT` or `[IPV6]:PORT` (`host` without brackets; a name is resolved, and
    /// the first of its addresses that can be bound is taken).
    Tcp { host: String, port: u16 },
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ListenAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    /// `HOST:PORT`, `[IPV6]:PORT` or `unix:PATH` (clap's value parser of `--listen`).
    fn from_str(s: &str) -> Result<ListenAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, as in unix:/run/rust-file-server.sock".into());
            }
            if !cfg!(unix) {
                return Err("Unix-domain sockets need a Unix platform".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| "an IPv6 address needs its closing ]: [::1]:8080".to_string())?;
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{ip:?} is not an IPv6 address"));
            }
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| "expected [IPV6]:PORT, as in [::1]:8080".to_string())?;
            (ip, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(|| {
                "expected HOST:PORT, [IPV6]:PORT or unix:PATH (e.g. 0.0.0.0:8080)".to_string()
            })?;
            if host.contains(':') {
                return Err("an IPv6 address goes in brackets: [::]:8080, [::1]:8080".into());
            }
            if host.is_empty() {
                return Err("expected HOST:PORT (0.0.0.0:8080 for every IPv4 address)".into());
            }
            (host, port)
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{port:?} is not a port (0-65535; 0: any free port)"))?;
        Ok(ListenAddr::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

/// Binds `host:port` (a name is resolved; the first of its addresses that binds is
/// taken), or says in one line why not.
pub fn bind_tcp(host: &str, port: u16, reuse_port: bool) -> Result<Listener, String> {
    // `[::1]` and `::1` both mean the IPv6 loopback.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host {host}: {e}"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match bind_socket(*addr, reuse_port) {
            Ok(l) => {
                return Listener::tcp(l, bare)
                    .map_err(|e| format!("cannot read the bound address of {addr}: {e}"))
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
            format!("cannot listen on {addr}: the port is already in use")
        }
        Some((addr, e)) => format!("cannot listen on {addr}: {e}"),
        None => format!("cannot resolve host {host}: no address"),
    })
}

/// One TCP listening socket with the options of the module documentation.
fn bind_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std does on Unix: a restarted server binds its port again at once, beside the
    // previous one's connections in TIME_WAIT. (On Windows it would let another process
    // take the port.)
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if reuse_port {
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        #[cfg(not(unix))]
        return Err(std::io::Error::other("--reuse-port needs a Unix platform"));
    }
    // `[::]` takes IPv4 too where the system allows it.
    let wildcard6 = addr.is_ipv6() && addr.ip().is_unspecified();
    let only_v6 = wildcard6.then(|| socket.set_only_v6(false).and_then(|()| socket.only_v6()));
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    // What the system reports, with the port it gave.
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(addr.port(), |a| a.port());
    match only_v6 {
        None => {}
        Some(Ok(false)) => log::info!("[::]:{port} takes IPv4 too (IPV6_V6ONLY off)"),
        Some(Ok(true)) => log::warn!("[::]:{port} takes IPv6 only here"),
        Some(Err(e)) => {
            log::warn!("[::]:{port} takes IPv6 only here (IPV6_V6ONLY cannot be turned off: {e})")
        }
    }
    Ok(socket.into())
}

/// Binds a Unix-domain socket at `path` (see the module documentation for an existing
/// file, the permissions and the removal), or says in one line why not.
#[cfg(unix)]
pub fn bind_unix(path: &std::path::Path) -> Result<Listener, String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let shown = path.display();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "cannot listen on unix:{shown}: a file that is not a socket is there"
            ));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "cannot listen on unix:{shown}: another server is listening there"
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .map_err(|e| format!("cannot remove the stale socket unix:{shown}: {e}"))?;
                log::info!("removed the stale socket file {shown} (nobody listened on it)");
            }
            Err(e) => return Err(format!("cannot listen on unix:{shown}: {e}")),
        }
    }
    let bind = || -> std::io::Result<std::os::unix::net::UnixListener> {
        use socket2::{Domain, SockAddr, Socket, Type};
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        // Before it listens: nobody connects while the file has the umask's mode.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        socket.listen(BACKLOG)?;
        Ok(std::os::unix::net::UnixListener::from(
            std::os::fd::OwnedFd::from(socket),
        ))
    };
    let listener = bind().map_err(|e| {
        let _ = std::fs::remove_file(path);
        format!("cannot listen on unix:{shown}: {e}")
    })?;
    Listener::unix(listener, true).map_err(|e| format!("cannot listen on unix:{shown}: {e}"))
}

/// Binds one `--listen` address.
pub fn bind(addr: &ListenAddr, reuse_port: bool) -> Result<Listener, String> {
    match addr {
        ListenAddr::Tcp { host, port } => bind_tcp(host, *port, reuse_port),
        #[cfg(unix)]
        ListenAddr::Unix(path) => bind_unix(path),
        #[cfg(not(unix))]
        ListenAddr::Unix(path) => Err(format!(
            "cannot listen on unix:{}: Unix-domain sockets need a Unix platform",
            path.display()
        )),
    }
}

/// The sockets systemd passed to this process (`LISTEN_PID` = our PID, `LISTEN_FDS` =
/// how many, from descriptor 3), each checked and made close-on-exec; `Ok(None)` when
/// none were passed to this process. `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` are
/// removed from the environment either way (as `sd_listen_fds(1)` does).
///
/// Call it first thing, before the process opens a descriptor or starts a thread: it
/// takes ownership of descriptors 3 to 3 + N − 1 and changes the environment.
#[cfg(unix)]
pub fn inherited() -> Result<Option<Vec<Listener>>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        // Meant for another process (our parent, say): not ours to take.
        return Ok(None);
    }
    let n: i32 = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| format!("LISTEN_FDS={fds:?} is not a count of descriptors"))?;
    (0..n)
        .map(|i| adopt(3 + i))
        .collect::<Result<Vec<_>, _>>()
        .map(|l| (!l.is_empty()).then_some(l))
}

/// Takes descriptor `fd` (passed by systemd) as a listener, or says why it cannot be one.
#[cfg(unix)]
fn adopt(fd: i32) -> Result<Listener, String> {
    use std::os::fd::FromRawFd;
    // An open descriptor? (`fcntl` on a closed one is EBADF; nothing else may own it
    // yet: no descriptor was opened before this.)
    // SAFETY: F_GETFD only reads the descriptor flags of `fd`, open or not.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!(
            "LISTEN_FDS: descriptor {fd} is not open ({})",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is open (checked above) and, by the sd_listen_fds protocol, passed to
    // this process for it to own; nothing else in the process refers to it.
    let socket = socket2::Socket::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let bad = |what: &str| format!("LISTEN_FDS: descriptor {fd} {what}");
    socket
        .set_cloexec(true)
        .map_err(|e| bad(&format!("cannot be made close-on-exec: {e}")))?;
    match socket.r#type() {
        Ok(socket2::Type::STREAM) => {}
        Ok(_) => {
            return Err(bad(
                "is not a stream socket (ListenStream= in the .socket unit)",
            ))
        }
        Err(e) => return Err(bad(&format!("is not a socket: {e}"))),
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    if !socket.is_listener().unwrap_or(true) {
        return Err(bad("is not listening (Accept=no in the .socket unit)"));
    }
    let local = socket
        .local_addr()
        .map_err(|e| bad(&format!("has no address: {e}")))?;
    let fd = std::os::fd::OwnedFd::from(socket);
    if let Some(addr) = local.as_socket() {
        Listener::tcp(TcpListener::from(fd), addr.ip().to_string())
            .map_err(|e| bad(&format!("has no address: {e}")))
    } else if local.is_unix() {
        Listener::unix(std::os::unix::net::UnixListener::from(fd), false)
            .map_err(|e| bad(&format!("has no address: {e}")))
    } else {
        Err(bad("is neither a TCP nor a Unix-domain socket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ListenAddr, String> {
        s.parse()
    }

    #[test]
    fn listen_addresses_parse() {
        let tcp = |h: &str, p| ListenAddr::Tcp {
            host: h.into(),
            port: p,
        };
        assert_eq!(parse("127.0.0.1:8080"), Ok(tcp("127.0.0.1", 8080)));
        assert_eq!(parse("0.0.0.0:0"), Ok(tcp("0.0.0.0", 0)));
        assert_eq!(parse("localhost:80"), Ok(tcp("localhost", 80)));
        assert_eq!(parse("[::1]:8080"), Ok(tcp("::1", 8080)));
        assert_eq!(parse("[::]:443"), Ok(tcp("::", 443)));
        #[cfg(unix)]
        assert_eq!(
            parse("unix:/run/rfs.sock"),
            Ok(ListenAddr::Unix("/run/rfs.sock".into()))
        );
        for shown in ["127.0.0.1:8080", "[::1]:8080", "unix:/run/rfs.sock"] {
            if let Ok(a) = parse(shown) {
                assert_eq!(a.to_string(), shown);
            }
        }
        for bad in [
            "8080",
            ":8080",
            "::1:8080",
            "[::1]",
            "[::1:8080",
            "[nothex]:80",
            "host:port",
            "host:70000",
            "unix:",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ipv6_wildcard_takes_ipv4_too_where_the_system_allows() {
        let l = bind_tcp("::", 0, false).expect("bind [::]:0");
        let port = l.tcp_addr().expect("tcp").port();
        let v6 = std::net::TcpStream::connect(("::1", port));
        assert!(v6.is_ok(), "[::1]: {v6:?}");
        // What the system reports for this socket decides what IPv4 must do.
        let only_v6 = socket2::SockRef::from(&l).only_v6().expect("IPV6_V6ONLY");
        let v4 = std::net::TcpStream::connect(("127.0.0.1", port));
        assert_eq!(
            v4.is_ok(),
            !only_v6,
            "127.0.0.1 with IPV6_V6ONLY={only_v6}: {v4:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_unix_socket_path_live_stale_or_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let first = bind_unix(&path).expect("bind");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        // Live: refused.
        let e = bind_unix(&path).expect_err("a live socket is not replaced");
        assert!(e.contains("another server is listening"), "{e}");
        // Stale (its listener closed without removing it): removed and bound again.
        let stale =
            std::os::unix::net::UnixListener::bind(dir.path().join("t.sock")).expect("bind plain");
        drop(stale);
        assert!(dir.path().join("t.sock").exists());
        let again = bind_unix(&dir.path().join("t.sock")).expect("a stale socket is replaced");
        drop(again);
        assert!(!dir.path().join("t.sock").exists(), "removed at close");
        // Not a socket: refused, left alone.
        let file = dir.path().join("file");
        std::fs::write(&file, b"data").expect("write");
        let e = bind_unix(&file).expect_err("a plain file is not replaced");
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&file).expect("still there"), b"data");
        drop(first);
        assert!(!path.exists());
    }
}

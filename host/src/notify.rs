//! systemd's readiness protocol (`sd_notify`, for `Type=notify` units): when
//! `NOTIFY_SOCKET` names a Unix datagram socket (a path, or `@NAME` for an abstract
//! one on Linux), the server sends it `READY=1` once it accepts connections and
//! `STOPPING=1` as soon as it starts draining (Ctrl-C / SIGTERM), each with a `STATUS=`
//! line for `systemctl status`. No crate: it is one datagram written to one address.
//!
//! A datagram that cannot be sent is logged at `warn` and otherwise ignored: serving never
//! depends on the service manager listening. Elsewhere than Unix there is nothing to
//! notify.

/// Where notifications go: the value of `NOTIFY_SOCKET` when the process started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Path(std::path::PathBuf),
    /// An abstract socket (Linux), the name without its `@`.
    Abstract(Vec<u8>),
}

impl Notify {
    /// From `NOTIFY_SOCKET` (`None` when unset or empty, or of a kind this server does
    /// not speak, which is logged).
    pub fn from_env() -> Option<Notify> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let value = value.to_string_lossy();
        let notify = Notify::parse(&value);
        if notify.is_none() && !value.is_empty() {
            log::warn!("NOTIFY_SOCKET={value:?} is not a Unix socket address: not notifying");
        }
        notify
    }

    /// `/PATH` or `@NAME` (abstract, Linux only).
    fn parse(value: &str) -> Option<Notify> {
        let target = if let Some(name) = value.strip_prefix('@') {
            if !cfg!(any(target_os = "linux", target_os = "android")) || name.is_empty() {
                return None;
            }
            Target::Abstract(name.as_bytes().to_vec())
        } else if value.starts_with('/') {
            Target::Path(value.into())
        } else {
            return None;
        };
        Some(Notify { target })
    }

    /// Sends one notification (`READY=1`, …; lines separated by `\n`).
    pub fn send(&self, state: &str) {
        if let Err(e) = self.try_send(state) {
            let first = state.lines().next().unwrap_or_default();
            log::warn!("cannot notify the service manager ({first}): {e}");
        }
    }

    #[cfg(unix)]
    fn try_send(&self, state: &str) -> std::io::Result<()> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let sent = match &self.target {
            Target::Path(path) => socket.send_to(state.as_bytes(), path)?,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Target::Abstract(name) => {
                #[cfg(target_os = "android")]
                use std::os::android::net::SocketAddrExt;
                #[cfg(target_os = "linux")]
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)?
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Target::Abstract(_) => return Err(std::io::Error::other("no abstract sockets here")),
        };
        if sent == state.len() {
            Ok(())
        } else {
            Err(std::io::Error::other("the datagram was cut"))
        }
    }

    #[cfg(not(unix))]
    fn try_send(&self, _state: &str) -> std::io::Result<()> {
        Err(std::io::Error::other("no Unix datagram sockets here"))
    }

    /// Sends `STOPPING=1` as soon as `shutdown` is requested (a small thread waits for
    /// it).
    pub fn stopping_on(self, shutdown: crate::shutdown::Shutdown) {
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                shutdown.wait();
                self.send("STOPPING=1\nSTATUS=draining: no new connections");
            });
        if let Err(e) = spawned {
            log::warn!("STOPPING=1 will not be sent: {e}");
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_values() {
        assert!(Notify::parse("").is_none());
        assert!(Notify::parse("relative/path").is_none());
        assert!(Notify::parse("vsock:2:1234").is_none());
        assert_eq!(
            Notify::parse("/run/systemd/notify"),
            Some(Notify {
                target: Target::Path("/run/systemd/notify".into())
            })
        );
        let abstract_ok = cfg!(any(target_os = "linux", target_os = "android"));
        assert_eq!(Notify::parse("@name").is_some(), abstract_ok);
        assert!(Notify::parse("@").is_none());
    }

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        Notify::parse(path.to_str().expect("utf-8"))
            .expect("a path")
            .send("READY=1");
        let mut buf = [0u8; 64];
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let n = listener.recv(&mut buf).expect("a datagram");
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_datagram_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("rfs-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let listener = std::os::unix::net::UnixDatagram::bind_addr(&addr).expect("bind");
        Notify::parse(&format!("@{name}"))
            .expect("abstract")
            .send("STOPPING=1");
        let mut buf = [0u8; 64];
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let n = listener.recv(&mut buf).expect("a datagram");
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}

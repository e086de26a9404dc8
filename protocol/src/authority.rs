//! The `Host` rules of SPEC "Security": syntax (`host[:port]`) and whether the name is
//! this server's.

use crate::Refusal;

/// Which `Host` values name this server.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    port: u16,
    /// Names accepted with the right port (lower case; IPv6 in brackets).
    names: Vec<String>,
    /// Bound to a wildcard address and no `--allow-host`: any name with the port.
    any_name: bool,
    /// A listener with no port of its own (a Unix-domain socket): any port.
    any_port: bool,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host == "[::1]"
        || (host.starts_with("127.") && host.split('.').count() == 4)
}

fn normalize(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.contains(':') && !name.starts_with('[') {
        format!("[{name}]")
    } else {
        name
    }
}

impl HostPolicy {
    /// The policy for a server bound to `bind_host:port`, widened by `allow`.
    pub fn new(bind_host: &str, port: u16, allow: &[String]) -> Self {
        let wildcard = matches!(bind_host, "0.0.0.0" | "::" | "[::]");
        let mut names: Vec<String> = allow.iter().map(|n| normalize(n)).collect();
        if !wildcard {
            names.push(normalize(bind_host));
            if is_loopback(bind_host) {
                names.extend(LOOPBACK_NAMES.iter().map(|n| n.to_string()));
            }
        }
        HostPolicy {
            port,
            any_name: wildcard && allow.is_empty(),
            any_port: false,
            names,
        }
    }

    /// The policy of a listener that no `Host` can name, a Unix-domain socket: any valid
    /// `host[:port]` is accepted (an invalid one is still 400). Who may connect is
    /// decided by the socket file's permissions, not by `Host`.
    pub fn any() -> Self {
        HostPolicy {
            port: 0,
            names: Vec::new(),
            any_name: true,
            any_port: true,
        }
    }

    /// Checks one `Host` value (or an absolute-form authority): 400 when it is not a
    /// valid `host[:port]`, 403 when it names another server.
    pub fn check(&self, value: &[u8]) -> Result<(), Refusal> {
        let (name, port) = split_host(value).ok_or(Refusal::close(400, "invalid Host header"))?;
        if !self.any_port && port.unwrap_or(80) != self.port {
            return Err(Refusal::close(403, "Host names another port"));
        }
        if self.any_name
            || self
                .names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        {
            Ok(())
        } else {
            Err(Refusal::close(403, "Host names another server"))
        }
    }
}

/// Splits `host[:port]` into the name and the port; `None` when it is not valid:
/// empty, userinfo, a path, a list, bad characters, a bad port.
pub fn split_host(value: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (name, rest) = if value.first() == Some(&b'[') {
        let end = value.iter().position(|&b| b == b']')?;
        let inner = &value[1..end];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        (&value[..=end], &value[end + 1..])
    } else {
        let colon = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        let name = &value[..colon];
        if name.is_empty()
            || !name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return None;
        }
        (name, &value[colon..])
    };
    let port = match rest {
        [] => None,
        [b':', digits @ ..] => Some(parse_port(digits)?),
        _ => return None,
    };
    Some((name, port))
}

fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|&p| p != 0)
}

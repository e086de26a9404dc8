//! The access log's line formats (see the parent module's documentation). A line is
//! formatted per request, on the thread that served it: numbers, dates and addresses
//! are written by hand rather than through `core::fmt` (a profile put that at about
//! half of the cost of a line).

use std::io::Write;
use std::net::IpAddr;

use super::{Entry, Format};

/// One line of `format`, with its line end.
pub(crate) fn format_line(out: &mut Vec<u8>, e: &Entry, format: Format) {
    match format {
        Format::Common => clf(out, e, false),
        Format::Combined => clf(out, e, true),
        Format::Json => json(out, e),
    }
    out.push(b'\n');
}

/// A client's address as the log shows it: the IP address, or `unix:` for a client of
/// a Unix-domain socket (nginx's `$remote_addr` there).
pub(super) fn remote(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        Some(IpAddr::V4(v4)) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(octet));
            }
        }
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => out.extend_from_slice(b"unix:"),
    }
}

/// `n` in decimal (by hand: see the module documentation).
pub(super) fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `n` in decimal, at least `width` digits (zeros in front).
pub(super) fn padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut len = 1;
    let mut rest = n;
    while rest >= 10 {
        rest /= 10;
        len += 1;
    }
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(len)));
    number(out, n);
}

/// The Common (and, `combined`, the Combined) Log Format.
pub(super) fn clf(out: &mut Vec<u8>, e: &Entry, combined: bool) {
    let r = &e.record;
    remote(out, e.ip);
    out.extend_from_slice(b" - ");
    match r.user.as_deref() {
        Some(user) if !user.is_empty() => escape(out, user, true),
        _ => out.push(b'-'),
    }
    out.extend_from_slice(b" [");
    clf_time(out, e.unix_ms / 1000);
    out.extend_from_slice(b"] \"");
    if r.parsed() {
        escape(out, &r.method, false);
        out.push(b' ');
        escape(out, &r.target, false);
        out.push(b' ');
        out.extend_from_slice(r.version.as_str().as_bytes());
    } else {
        out.push(b'-');
    }
    out.extend_from_slice(b"\" ");
    number(out, u64::from(r.status));
    out.push(b' ');
    number(out, e.bytes);
    if combined {
        for field in [&r.referer, &r.user_agent] {
            out.extend_from_slice(b" \"");
            match field.as_deref() {
                Some(v) if !v.is_empty() => escape(out, v, false),
                _ => out.push(b'-'),
            }
            out.push(b'"');
        }
    }
}

/// Client text in a log field: printable ASCII kept, `"`, `\` (and in an unquoted
/// field, a space), control and non-ASCII bytes as `\xHH` (as nginx writes them).
pub(super) fn escape(out: &mut Vec<u8>, s: &str, unquoted: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let kept =
        |b: u8| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' || b == b' ' && !unquoted;
    if s.bytes().all(kept) {
        return out.extend_from_slice(s.as_bytes());
    }
    for b in s.bytes() {
        if kept(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
}

/// One JSON object (a string with anything to escape goes through serde_json).
pub(super) fn json(out: &mut Vec<u8>, e: &Entry) {
    let r = &e.record;
    let string = |out: &mut Vec<u8>, s: Option<&str>| match s {
        Some(s) if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        Some(s) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"time\":\"");
    rfc3339(out, e.unix_ms);
    out.extend_from_slice(b"\",\"remote_addr\":\"");
    remote(out, e.ip);
    out.extend_from_slice(b"\",\"user\":");
    string(out, r.user.as_deref());
    out.extend_from_slice(b",\"method\":");
    let parsed = r.parsed();
    string(out, parsed.then_some(&*r.method));
    out.extend_from_slice(b",\"target\":");
    string(out, parsed.then_some(r.target.as_str()));
    out.extend_from_slice(b",\"protocol\":");
    string(out, parsed.then_some(r.version.as_str()));
    out.extend_from_slice(b",\"status\":");
    number(out, u64::from(r.status));
    out.extend_from_slice(b",\"bytes\":");
    number(out, e.bytes);
    out.extend_from_slice(b",\"duration_ms\":");
    number(out, r.duration_ms());
    out.extend_from_slice(b",\"referer\":");
    string(out, r.referer.as_deref());
    out.extend_from_slice(b",\"user_agent\":");
    string(out, r.user_agent.as_deref());
    out.extend_from_slice(if e.tls {
        b",\"tls\":true}"
    } else {
        b",\"tls\":false}"
    });
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub(super) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `03/Dec/2026:10:00:00 +0000`.
pub(super) fn clf_time(out: &mut Vec<u8>, secs: u64) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let secs = i64::try_from(secs).unwrap_or(0);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400) as u64;
    padded(out, u64::from(d), 2);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(m as usize).saturating_sub(1) % 12]);
    out.push(b'/');
    padded(out, y.max(0) as u64, 4);
    for (sep, n) in [(b':', t / 3600), (b':', t / 60 % 60), (b':', t % 60)] {
        out.push(sep);
        padded(out, n, 2);
    }
    out.extend_from_slice(b" +0000");
}

/// `2026-12-03T10:00:00.123Z`.
pub(super) fn rfc3339(out: &mut Vec<u8>, ms: u64) {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400) as u64;
    padded(out, y.max(0) as u64, 4);
    out.push(b'-');
    padded(out, u64::from(m), 2);
    out.push(b'-');
    padded(out, u64::from(d), 2);
    out.push(b'T');
    padded(out, t / 3600, 2);
    out.push(b':');
    padded(out, t / 60 % 60, 2);
    out.push(b':');
    padded(out, t % 60, 2);
    out.push(b'.');
    padded(out, ms % 1000, 3);
    out.push(b'Z');
}

//! The drain of a session at shutdown: a request in progress is answered with
//! `Connection: close`; a connection waiting between requests gets [`DRAIN_GRACE`] for
//! a request already on its way (see [`Session::drain`]).

use protocol::{Connection, Input, Now, Wait};

use super::h2::Proto;
use super::{Phase, Session};
use crate::shutdown::DRAIN_GRACE;

impl Session {
    /// The server is shutting down: a request in progress is answered with
    /// `Connection: close`, a lingering connection closes now, and one waiting between
    /// requests waits [`DRAIN_GRACE`] more for a request already on its way — bytes
    /// that wait unread in its socket, or that a balancer sent on it just before it saw
    /// the server go: such a request is served (with `Connection: close`) instead of
    /// being lost to a reset. Without one by then, it closes.
    pub fn drain(&mut self, now: Now) {
        self.now = now;
        self.just_answered = false;
        if matches!(self.phase, Phase::Lingering { .. }) {
            self.phase = Phase::Closed;
        }
        if !self.drained {
            self.drained = true;
            if self.waits_between_requests() {
                self.grace = Some(now.mono_ms.saturating_add(DRAIN_GRACE.as_millis() as u64));
            } else {
                self.give(Input::Drain);
            }
        }
    }

    /// Whether nothing of a request is in progress (between requests, or closing): a
    /// shutdown may close it without losing anything. (Not during the drain's grace:
    /// the session closes it itself once the grace is over.)
    ///
    /// An HTTP/2 connection that lingers is not idle: its linger (bounded) lets the
    /// client read the last DATA and the GOAWAY before the close (see `Phase::Closing`).
    pub fn is_idle(&self) -> bool {
        match self.phase {
            Phase::Serving => match &self.proto {
                Proto::H2(h2) => self.out.is_empty() && h2.server.is_idle(),
                _ => self.grace.is_none() && self.waits_between_requests(),
            },
            Phase::Lingering { .. } => !matches!(self.proto, Proto::H2(_)),
            _ => true,
        }
    }

    /// Serving HTTP/1.x, every answer written, nothing of a next request received. (An
    /// HTTP/2 connection gets no grace: its `GOAWAY` names the last stream it will
    /// serve, and a client retries the others elsewhere.)
    fn waits_between_requests(&self) -> bool {
        self.phase == Phase::Serving
            && !matches!(self.proto, Proto::H2(_))
            && self.out.is_empty()
            && matches!(self.conn.wait(), Wait::Read { idle: true, .. })
    }

    /// Bytes of HTTP/1.x for the core, through the drain's grace (see [`receive`]).
    pub(super) fn h1_in(&mut self, now: Now, bytes: &[u8]) {
        if self.phase == Phase::Serving {
            receive(&mut self.conn, now, bytes, &mut self.grace);
        }
    }
}

/// Hands bytes the client sent to the core. During the drain's grace (see
/// [`Session::drain`]), the core has not heard of the drain yet (it would close a
/// connection that waits between requests at once): the first byte of a request is
/// handed in alone, then the drain, then the rest, so that the core sees a request in
/// progress at the drain and answers it with `Connection: close`. Empty lines before a
/// request line are idle time (RFC 9112 §2.2) and do not end the grace.
pub(super) fn receive(conn: &mut Connection, now: Now, bytes: &[u8], grace: &mut Option<u64>) {
    let start = match grace {
        Some(_) => bytes.iter().position(|&b| b != b'\r' && b != b'\n'),
        None => None,
    };
    let Some(at) = start else {
        return conn.handle(now, Input::Received(bytes));
    };
    *grace = None;
    conn.handle(now, Input::Received(&bytes[..=at]));
    conn.handle(now, Input::Drain);
    if at + 1 < bytes.len() {
        conn.handle(now, Input::Received(&bytes[at + 1..]));
    }
}

//! The `503` of a full server ([`Session::refusal`]). Over plain HTTP it is written at
//! once. Under TLS it waits for the handshake, whose ALPN says what the client speaks:
//! HTTP/1.1 gets the answer as it is; HTTP/2 gets the server's preface, then the same
//! answer on the stream of its first request and a GOAWAY naming that stream
//! ([`protocol::H2Refusal`]): a client that chose h2 cannot read an HTTP/1.1 answer.

use std::sync::Arc;

use log::warn;
use protocol::Now;

use super::{Phase, Refused, Service, Session, Step};
use crate::linger::LINGER;
use crate::net::Peer;

/// A refusal's answer, held until the TLS handshake says how to send it.
#[cfg(feature = "tls")]
pub(super) struct Held {
    answer: Vec<u8>,
    h2: Option<protocol::H2Refusal>,
}

impl Session {
    /// A session that answers `503 Service Unavailable` (after the TLS handshake, under
    /// TLS, within [`LINGER`]) and closes: the server is full. `why` is logged and
    /// counted.
    pub fn refusal(
        service: &Arc<Service>,
        now: Now,
        peer: impl Into<Peer>,
        why: Refused,
    ) -> Option<Session> {
        let peer = peer.into();
        warn!("{peer} refused (503): {why}");
        why.count();
        let mut session = Session::make(service, now, peer)?;
        let answer = protocol::overload_response(now.unix_secs, &service.config.server_name);
        session.phase = Phase::Refusing;
        session.proto = super::h2::Proto::H1;
        if session.handshake_until.is_some() {
            session.handshake_until = Some(now.mono_ms.saturating_add(LINGER.as_millis() as u64));
        }
        #[cfg(feature = "tls")]
        if session.tls.is_some() {
            session.held = Some(Held { answer, h2: None });
            return Some(session);
        }
        session.push_out(answer);
        Some(session)
    }

    /// [`Phase::Refusing`] with the handshake done: the wait for an HTTP/2 client's
    /// first request, or `None` to go round (the answer is out, or the preface to write).
    pub(super) fn refusing(&mut self) -> Option<Step> {
        #[cfg(feature = "tls")]
        if self.held.is_some() {
            self.refusing_in(&[]);
            if self.held.is_some() && self.out.len() <= self.at {
                return Some(Step::Read(self.handshake_until.unwrap_or(self.now.mono_ms)));
            }
            return None;
        }
        self.phase = Phase::Closing { linger: true };
        None
    }

    /// Plaintext that came while refusing under TLS (and the handshake's end: `plain`
    /// empty): the held answer goes out as the client's protocol wants it.
    #[cfg(feature = "tls")]
    pub(super) fn refusing_in(&mut self, plain: &[u8]) {
        if self.handshaking() {
            return;
        }
        let h2 = self.tls.as_ref().is_some_and(|t| t.h2());
        let Some(held) = self.held.as_mut() else {
            return;
        };
        if !h2 {
            let answer = std::mem::take(&mut held.answer);
            self.held = None;
            return self.push_out(answer);
        }
        let first = held.h2.is_none();
        let refusal = held.h2.get_or_insert_with(protocol::H2Refusal::new);
        let end = refusal.received(plain, &held.answer);
        if first {
            self.push_out(protocol::H2Refusal::preface());
        }
        if let Some(end) = end {
            self.held = None;
            self.push_out(end);
        }
    }

    /// A wake while refusing: past the deadline, an HTTP/2 client that sent no request
    /// gets GOAWAY naming no stream (nothing was processed: it may retry), and the
    /// connection closes.
    pub(super) fn refusal_timeout(&mut self) {
        if self.handshake_until.is_none_or(|t| self.now.mono_ms < t) {
            return;
        }
        #[cfg(feature = "tls")]
        if let Some(held) = self.held.take() {
            if let Some(mut h2) = held.h2 {
                self.push_out(h2.give_up());
            }
        }
        self.phase = Phase::Closing { linger: false };
    }
}

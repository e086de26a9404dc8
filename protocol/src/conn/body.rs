//! Reading request bodies from the input buffer: `Content-Length` or chunked, stored
//! (an upload) or discarded (any other request that has a body), with `--max-body`
//! counted across reads.

use std::sync::Arc;

use super::Connection;
use crate::config::BodyBudget;
use crate::framing::ChunkedDecoder;
use crate::Refusal;

/// The refusal when the bodies in flight would exceed the shared budget.
pub(super) const OVER_BUDGET: Refusal = Refusal::close(
    503,
    "the server holds too many uploads in memory, try again shortly",
);

/// Bytes of the shared [`BodyBudget`] held by one stored body; given back when dropped
/// (the upload written, refused, or the connection gone).
#[derive(Debug)]
pub(super) struct Held {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

impl Held {
    /// Takes `n` bytes of `budget`, or `None` if they do not fit.
    pub(super) fn take(budget: &Arc<BodyBudget>, n: u64) -> Option<Held> {
        budget.take(n).then(|| Held {
            budget: Arc::clone(budget),
            bytes: n,
        })
    }

    fn grow(&mut self, n: u64) -> bool {
        let ok = self.budget.take(n);
        if ok {
            self.bytes += n;
        }
        ok
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[derive(Debug)]
pub(super) enum BodyReader {
    Length(u64),
    /// The decoder, and the body bytes decoded so far (stored or not: a discarded body
    /// counts against `max_body` too).
    Chunked(ChunkedDecoder, u64),
}

impl BodyReader {
    /// A reader for a body of `len` bytes, or a chunked one (`None`).
    pub(super) fn new(len: Option<u64>) -> Self {
        match len {
            Some(n) => BodyReader::Length(n),
            None => BodyReader::Chunked(ChunkedDecoder::default(), 0),
        }
    }
}

impl Connection {
    /// Moves body bytes from the input buffer; `Ok(true)` when the body is complete. A
    /// body is stored when it holds budget (`held`), else read and dropped.
    pub(super) fn read_body(
        &mut self,
        reader: &mut BodyReader,
        body: &mut Vec<u8>,
        held: &mut Option<Held>,
    ) -> Result<bool, Refusal> {
        let store = held.is_some();
        let avail = &self.input[self.pos..];
        let max = self.config.max_body;
        match reader {
            BodyReader::Length(remaining) => {
                let take = avail
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if store {
                    body.extend_from_slice(&avail[..take]);
                }
                *remaining -= take as u64;
                self.pos += take;
                Ok(*remaining == 0)
            }
            BodyReader::Chunked(dec, seen) => {
                let mut total = *seen;
                let used = dec.decode(avail, |data| {
                    total = total.saturating_add(data.len() as u64);
                    if total > max {
                        return Err(Refusal::close(413, "request body too large"));
                    }
                    if let Some(held) = held.as_mut() {
                        if !held.grow(data.len() as u64) {
                            return Err(OVER_BUDGET);
                        }
                        body.extend_from_slice(data);
                    }
                    Ok(())
                })?;
                // Across calls, so that the limit does not depend on how the body arrives
                // (found by the split fuzz target).
                *seen = total;
                self.pos += used;
                Ok(dec.is_done())
            }
        }
    }
}

//! Reading request bodies from the input buffer: `Content-Length` or chunked, stored
//! (an upload) or discarded (any other request that has a body), with `--max-body`
//! counted across reads.

use super::Connection;
use crate::framing::ChunkedDecoder;
use crate::Refusal;

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
    /// Moves body bytes from the input buffer; `Ok(true)` when the body is complete.
    pub(super) fn read_body(
        &mut self,
        reader: &mut BodyReader,
        body: &mut Vec<u8>,
        store: bool,
    ) -> Result<bool, Refusal> {
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
                    if store {
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

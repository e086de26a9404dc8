//! Message framing (RFC 9112 §6): which of `Content-Length` / `Transfer-Encoding`
//! delimits the body, with the refusals that stop request smuggling, and an incremental
//! decoder for chunked bodies.

use crate::syntax::{is_tchar, trim_ows};
use crate::Refusal;

/// How a request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Collects the `Content-Length` and `Transfer-Encoding` fields of one head.
#[derive(Default, Debug)]
pub struct LengthFields {
    content_length: Option<u64>,
    te_seen: bool,
    chunked_count: u32,
    last_is_chunked: bool,
    other_coding: bool,
}

const BAD_LENGTH: Refusal = Refusal::close(400, "invalid Content-Length");

impl LengthFields {
    /// One `Content-Length` field: a single run of digits that fits in a u64, sent once.
    pub fn content_length(&mut self, value: &[u8]) -> Result<(), Refusal> {
        if self.content_length.is_some() {
            return Err(Refusal::close(400, "duplicate Content-Length"));
        }
        if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
            return Err(BAD_LENGTH);
        }
        let n = value
            .iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or(BAD_LENGTH)?;
        self.content_length = Some(n);
        Ok(())
    }

    /// One `Transfer-Encoding` field: a list of tokens (several fields form one list).
    pub fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), Refusal> {
        self.te_seen = true;
        for item in value.split(|&b| b == b',') {
            let coding = trim_ows(item);
            if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
                return Err(Refusal::close(400, "malformed Transfer-Encoding"));
            }
            self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if self.last_is_chunked {
                self.chunked_count += 1;
            } else {
                self.other_coding = true;
            }
        }
        Ok(())
    }

    /// The framing these fields give, or the refusal of SPEC "Security".
    pub fn finish(self, minor: u8) -> Result<Framing, Refusal> {
        if self.te_seen {
            if minor == 0 {
                return Err(Refusal::close(400, "Transfer-Encoding in HTTP/1.0"));
            }
            if self.content_length.is_some() {
                return Err(Refusal::close(
                    400,
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if !self.last_is_chunked || self.chunked_count > 1 {
                return Err(Refusal::close(
                    400,
                    "Transfer-Encoding does not end in one chunked",
                ));
            }
            if self.other_coding {
                return Err(Refusal::close(501, "transfer coding not implemented"));
            }
            return Ok(Framing::Chunked);
        }
        Ok(match self.content_length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

/// The longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer bytes accepted.
const MAX_TRAILERS: usize = 8192;

/// Where we are inside `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ext {
    /// Before the `;` (only whitespace allowed).
    BeforeSemi,
    /// After `;`, before the name.
    BeforeName,
    Name,
    /// After the name: whitespace, `=`, `;` or the line end.
    AfterName,
    /// After `=`, before the value.
    BeforeValue,
    Token,
    Quoted,
    QuotedEscape,
    /// After a value: whitespace, `;` or the line end.
    AfterValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size.
    Size {
        digits: u32,
    },
    /// Reading extensions after the size.
    Ext(Ext),
    /// Saw CR after a size line.
    SizeLf,
    /// Reading chunk data.
    Data,
    /// Expecting CRLF after data.
    DataCr,
    DataLf,
    /// Reading trailer lines; `line` bytes of the current one so far.
    Trailer {
        line: usize,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// An incremental chunked-body decoder (RFC 9112 §7.1).
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: Chunk,
    /// The size being read, or the data left in the current chunk.
    size: u64,
    line_len: usize,
    trailer_total: usize,
}

const BAD_CHUNK: Refusal = Refusal::close(400, "malformed chunked body");

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: Chunk::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_total: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes from `input`, handing data bytes to `out`; returns how many input bytes
    /// were consumed. Stops at the end of the body (the rest belongs to the next request).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), Refusal>,
    ) -> Result<usize, Refusal> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                Chunk::Data => {
                    let take =
                        (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    out(&input[i..i + take])?;
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = Chunk::DataCr;
                    }
                    continue;
                }
                Chunk::Done => return Ok(i),
                Chunk::Size { digits } => {
                    self.line_len += 1;
                    if let Some(d) = (b as char).to_digit(16) {
                        if digits >= 16 {
                            return Err(Refusal::close(400, "chunk size overflows"));
                        }
                        self.size = (self.size << 4) | u64::from(d);
                        self.state = Chunk::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(BAD_CHUNK);
                    } else if b == b'\r' {
                        self.state = Chunk::SizeLf;
                    } else if b == b';' {
                        self.state = Chunk::Ext(Ext::BeforeName);
                    } else if b == b' ' || b == b'\t' {
                        self.state = Chunk::Ext(Ext::BeforeSemi);
                    } else {
                        return Err(BAD_CHUNK);
                    }
                }
                Chunk::Ext(ext) => {
                    self.line_len += 1;
                    if self.line_len > MAX_CHUNK_LINE {
                        return Err(Refusal::close(400, "chunk extension too long"));
                    }
                    self.state = match (ext, b) {
                        (Ext::Quoted, b'"') => Chunk::Ext(Ext::AfterValue),
                        (Ext::Quoted, b'\\') => Chunk::Ext(Ext::QuotedEscape),
                        (Ext::Quoted, b)
                            if b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80 =>
                        {
                            Chunk::Ext(Ext::Quoted)
                        }
                        (Ext::QuotedEscape, b)
                            if b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80 =>
                        {
                            Chunk::Ext(Ext::Quoted)
                        }
                        (Ext::Quoted | Ext::QuotedEscape, _) => return Err(BAD_CHUNK),
                        (Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue, b'\r') => {
                            Chunk::SizeLf
                        }
                        (
                            Ext::Name
                            | Ext::AfterName
                            | Ext::Token
                            | Ext::AfterValue
                            | Ext::BeforeSemi,
                            b';',
                        ) => Chunk::Ext(Ext::BeforeName),
                        (_, b' ' | b'\t') => Chunk::Ext(match ext {
                            Ext::Name => Ext::AfterName,
                            Ext::Token => Ext::AfterValue,
                            other => other,
                        }),
                        (Ext::BeforeName | Ext::Name, b) if is_tchar(b) => Chunk::Ext(Ext::Name),
                        (Ext::Name | Ext::AfterName, b'=') => Chunk::Ext(Ext::BeforeValue),
                        (Ext::BeforeValue, b'"') => Chunk::Ext(Ext::Quoted),
                        (Ext::BeforeValue | Ext::Token, b) if is_tchar(b) => Chunk::Ext(Ext::Token),
                        _ => return Err(Refusal::close(400, "malformed chunk extension")),
                    };
                }
                Chunk::SizeLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    self.line_len = 0;
                    self.state = if self.size == 0 {
                        Chunk::Trailer { line: 0 }
                    } else {
                        Chunk::Data
                    };
                }
                Chunk::DataCr => {
                    if b != b'\r' {
                        return Err(BAD_CHUNK);
                    }
                    self.state = Chunk::DataLf;
                }
                Chunk::DataLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    self.size = 0;
                    self.state = Chunk::Size { digits: 0 };
                }
                Chunk::Trailer { line } => {
                    self.trailer_total += 1;
                    if self.trailer_total > MAX_TRAILERS {
                        return Err(Refusal::close(431, "trailer section too large"));
                    }
                    if b == b'\r' {
                        self.state = Chunk::TrailerLf { empty: line == 0 };
                    } else if b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80 {
                        if line == 0 && (b == b' ' || b == b'\t') {
                            return Err(Refusal::close(400, "obsolete line folding in trailer"));
                        }
                        self.state = Chunk::Trailer { line: line + 1 };
                    } else {
                        return Err(BAD_CHUNK);
                    }
                }
                Chunk::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    self.state = if empty {
                        Chunk::Done
                    } else {
                        Chunk::Trailer { line: 0 }
                    };
                }
            }
            i += 1;
            if self.state == Chunk::Done {
                return Ok(i);
            }
        }
        Ok(i)
    }
}

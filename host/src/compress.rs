//! Compression on the fly (`--compress`, the `compress` feature): what the session does
//! with [`protocol::Action::Compress`].
//!
//! - A file up to [`WHOLE`] is compressed whole, once per version and coding: the result
//!   is kept beside the opened file in the open-file cache ([`Variants`]), so it lives
//!   exactly as long as that version of the file is the one served, and the next
//!   request's answer costs what an identity answer does. All variants together hold at
//!   most [`VARIANT_BYTES`]; past it a variant is made for its request and not kept.
//! - A larger file is compressed as it is sent, a chunk at a time on the blocking side
//!   ([`Encoder`]), in `Transfer-Encoding: chunked` (HTTP/1.1 only; to HTTP/1.0 it goes
//!   as it is).
//! - At most [`max_busy`] compressions run at once (the machine's cores); past that, and
//!   when anything fails, the answer is the identity one, at once: compression saves
//!   bandwidth, it must never cost a client its answer.
//!
//! The levels: a variant that is kept is made once, so it gets a slower, tighter level
//! than a stream, which must keep up with the network.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use protocol::Coding;

/// Files up to this size are compressed whole, and the result kept.
pub const WHOLE: u64 = 1 << 20;
/// All kept variants together hold at most this many bytes.
pub const VARIANT_BYTES: usize = 64 << 20;
/// A streamed answer reads the file in chunks of this size.
pub const STREAM_CHUNK: usize = 128 << 10;

static VARIANT_TOTAL: AtomicUsize = AtomicUsize::new(0);
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// How many compressions may run at once: the machine's cores.
pub fn max_busy() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A compression in progress, counted against [`max_busy`] until dropped.
pub struct Busy(());

impl Busy {
    /// `None`: as many compressions as cores already run.
    pub fn take() -> Option<Busy> {
        let max = max_busy();
        BUSY.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Busy(()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The compressed variants of one opened file (zstd, br, gzip), made on demand.
#[derive(Debug, Default)]
pub struct Variants(Mutex<[Option<Arc<[u8]>>; 3]>);

fn slot(coding: Coding) -> Option<usize> {
    match coding {
        Coding::Zstd => Some(0),
        Coding::Br => Some(1),
        Coding::Gzip => Some(2),
        Coding::Identity => None,
    }
}

impl Variants {
    pub fn get(&self, coding: Coding) -> Option<Arc<[u8]>> {
        let i = slot(coding)?;
        self.0.lock().unwrap_or_else(|e| e.into_inner())[i].clone()
    }

    /// Keeps a variant, if the total allows.
    pub fn keep(&self, coding: Coding, bytes: &Arc<[u8]>) {
        let Some(i) = slot(coding) else { return };
        let len = bytes.len();
        let reserved = VARIANT_TOTAL.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
            (t + len <= VARIANT_BYTES).then_some(t + len)
        });
        if reserved.is_err() {
            return;
        }
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slots[i].replace(Arc::clone(bytes)) {
            VARIANT_TOTAL.fetch_sub(old.len(), Ordering::AcqRel);
        }
    }
}

impl Drop for Variants {
    fn drop(&mut self) {
        let slots = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        let held: usize = slots.iter().flatten().map(|v| v.len()).sum();
        VARIANT_TOTAL.fetch_sub(held, Ordering::AcqRel);
    }
}

/// The bytes all kept variants hold now.
#[cfg(all(test, feature = "compress"))]
pub fn variant_bytes() -> usize {
    VARIANT_TOTAL.load(Ordering::Acquire)
}

/// How hard to compress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    /// Once, kept: tighter.
    Kept,
    /// As it is sent: fast.
    Stream,
}

/// Compresses `data` whole.
pub fn compress(coding: Coding, data: &[u8], effort: Effort) -> io::Result<Vec<u8>> {
    let mut e = Encoder::new(coding, effort)?;
    let mut out = e.feed(data)?;
    out.extend_from_slice(&e.finish()?);
    Ok(out)
}

/// A compressor fed a piece at a time: each piece gives what it compressed to so far.
pub struct Encoder(Inner);

/// Built without the `compress` feature it has no variant: no encoder exists.
enum Inner {
    #[cfg(feature = "compress")]
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    #[cfg(feature = "compress")]
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    #[cfg(feature = "compress")]
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    #[cfg(feature = "compress")]
    pub fn new(coding: Coding, effort: Effort) -> io::Result<Encoder> {
        let kept = effort == Effort::Kept;
        Ok(Encoder(match coding {
            Coding::Gzip => {
                let level = flate2::Compression::new(if kept { 9 } else { 4 });
                Inner::Gzip(flate2::write::GzEncoder::new(Vec::new(), level))
            }
            // Quality 9 is brotli's best level before its slow "large window" search
            // (10, 11: a second per megabyte); a window of 2^22 bytes.
            Coding::Br => Inner::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                32 << 10,
                if kept { 9 } else { 4 },
                22,
            ))),
            Coding::Zstd => Inner::Zstd(zstd::stream::write::Encoder::new(
                Vec::new(),
                if kept { 12 } else { 3 },
            )?),
            Coding::Identity => return Err(io::Error::other("identity is not a compression")),
        }))
    }

    #[cfg(not(feature = "compress"))]
    pub fn new(_coding: Coding, _effort: Effort) -> io::Result<Encoder> {
        Err(io::Error::other("built without the compress feature"))
    }

    /// Compresses `data`; returns the compressed bytes ready so far (maybe none).
    pub fn feed(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        #[cfg(not(feature = "compress"))]
        {
            let _ = data;
            match self.0 {}
        }
        #[cfg(feature = "compress")]
        match &mut self.0 {
            #[cfg(feature = "compress")]
            Inner::Gzip(e) => {
                e.write_all(data)?;
                Ok(std::mem::take(e.get_mut()))
            }
            #[cfg(feature = "compress")]
            Inner::Br(e) => {
                e.write_all(data)?;
                Ok(std::mem::take(e.get_mut()))
            }
            #[cfg(feature = "compress")]
            Inner::Zstd(e) => {
                e.write_all(data)?;
                Ok(std::mem::take(e.get_mut()))
            }
        }
    }

    /// Ends the stream: the last compressed bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        #[cfg(not(feature = "compress"))]
        match self.0 {}
        #[cfg(feature = "compress")]
        match self.0 {
            #[cfg(feature = "compress")]
            Inner::Gzip(e) => e.finish(),
            #[cfg(feature = "compress")]
            Inner::Br(mut e) => {
                e.flush()?;
                Ok(e.into_inner())
            }
            #[cfg(feature = "compress")]
            Inner::Zstd(e) => e.finish(),
        }
    }
}

/// One chunk of `Transfer-Encoding: chunked` around `data` (never empty: an empty
/// chunk ends the body).
pub fn frame_chunk(data: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!data.is_empty());
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(all(test, feature = "compress"))]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        let mut s = Vec::new();
        for i in 0..20_000 {
            let _ = writeln!(s, "{{\"id\": {i}, \"name\": \"item {}\"}},", i % 97);
        }
        s
    }

    fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Br => {
                brotli::Decompressor::new(bytes, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Zstd => out = zstd::decode_all(bytes).unwrap(),
            Coding::Identity => unreachable!(),
        }
        out
    }

    #[test]
    fn whole_and_streamed_round_trip_in_each_coding() {
        let data = sample();
        for coding in [Coding::Zstd, Coding::Br, Coding::Gzip] {
            let whole = compress(coding, &data, Effort::Kept).unwrap();
            assert!(whole.len() < data.len() / 4, "{coding:?}: {}", whole.len());
            assert_eq!(decode(coding, &whole), data, "{coding:?} whole");
            let mut e = Encoder::new(coding, Effort::Stream).unwrap();
            let mut streamed = Vec::new();
            for piece in data.chunks(STREAM_CHUNK / 3) {
                streamed.extend(e.feed(piece).unwrap());
            }
            streamed.extend(e.finish().unwrap());
            assert_eq!(decode(coding, &streamed), data, "{coding:?} streamed");
        }
        assert!(Encoder::new(Coding::Identity, Effort::Kept).is_err());
    }

    #[test]
    fn variants_are_bounded_and_released() {
        let before = variant_bytes();
        let v = Variants::default();
        let bytes: Arc<[u8]> = Arc::from(vec![1u8; 1000]);
        v.keep(Coding::Br, &bytes);
        assert_eq!(v.get(Coding::Br).as_deref(), Some(&bytes[..]));
        assert!(v.get(Coding::Gzip).is_none());
        assert!(variant_bytes() >= before + 1000);
        let huge: Arc<[u8]> = Arc::from(vec![0u8; VARIANT_BYTES + 1]);
        v.keep(Coding::Gzip, &huge);
        assert!(v.get(Coding::Gzip).is_none(), "over the total: not kept");
        drop(v);
        // Other tests may keep variants meanwhile: only what this one added is gone.
        assert!(variant_bytes() < before + 1000 || variant_bytes() == before);
    }

    #[test]
    fn busy_is_bounded_by_the_cores() {
        let held: Vec<Busy> = std::iter::from_fn(Busy::take).take(1000).collect();
        assert!(held.len() <= max_busy());
        assert!(Busy::take().is_none());
        drop(held);
        assert!(Busy::take().is_some());
    }

    #[test]
    fn chunks_are_framed_in_hex() {
        let mut out = Vec::new();
        frame_chunk(&[7u8; 300], &mut out);
        assert!(out.starts_with(b"12c\r\n"));
        assert!(out.ends_with(b"\r\n"));
        assert_eq!(out.len(), 5 + 300 + 2);
    }
}

//! Compression on the fly (`--compress`, SPEC "Compression and archives"): a
//! compressible file of 1 KiB or more, asked for without a range, is sent in the
//! client's preferred coding among zstd, br and gzip (q-values honoured, `identity;q=0`
//! too) when no precompressed sibling was found. Each coding has its own strong entity
//! tag (the file's, with the coding's name: `"len-mtime.nanos-br"`), so a `304` and a
//! `412` are decided per representation before anything is compressed. The runtime
//! compresses ([`Action::Compress`]): a small file from a cache or on the blocking side,
//! a large one as it is sent (`Transfer-Encoding: chunked`); when it cannot (saturated),
//! the identity answer goes out at once.

use std::sync::Arc;

use super::{Action, Compressed, Connection, FileMeta, Request, State};
use crate::conditional::{self, Precondition};
use crate::encoding::{negotiate, Coding};
use crate::mime::{self, ContentType};
use crate::parse::Method;
use crate::response::write_http_date;
use crate::target::SafePath;
use crate::Refusal;

/// The smallest file worth compressing.
pub(super) const MIN_SIZE: u64 = 1024;
/// The codings offered, in the server's order of preference (see [`negotiate`]).
const OFFERED: [Coding; 4] = [Coding::Zstd, Coding::Br, Coding::Gzip, Coding::Identity];

/// What a compressed answer waits with.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) req: Request,
    path: SafePath,
    ct: ContentType,
    meta: FileMeta,
    coding: Coding,
    etag: String,
}

impl Connection {
    /// The identity answer of a file, or (compressible, and the client prefers a coding)
    /// its compressed representation.
    pub(super) fn identity_or_compressed(
        &mut self,
        req: Request,
        path: SafePath,
        ct: ContentType,
        meta: FileMeta,
    ) {
        let head = &req.head;
        let eligible = self.config.compress
            && ct.compressible
            && !ct.attachment
            && head.range.is_none()
            && matches!(head.method, Method::Get | Method::Head);
        if !eligible {
            return self.answer_file(&req, &path, Coding::Identity, &ct, meta);
        }
        let accept = head.accept_encoding.as_deref().map(str::as_bytes);
        let identity_refused = negotiate(accept, &[Coding::Identity]).is_none();
        let coding = match negotiate(accept, &OFFERED) {
            // Nothing the client accepts (identity;q=0 and no coding it names).
            None => return self.refuse(&req, Refusal::keep(406, "no acceptable content coding")),
            Some(Coding::Identity) => None,
            Some(c) if meta.len >= MIN_SIZE || identity_refused => Some(c),
            Some(_) => None,
        };
        let Some(coding) = coding else {
            return self.answer_file(&req, &path, Coding::Identity, &ct, meta);
        };
        let mut etag = String::new();
        conditional::write_etag(&mut etag, meta.len, meta.mtime_secs, meta.mtime_nanos);
        etag.pop();
        etag.push('-');
        etag.push_str(coding.token());
        etag.push('"');
        let modified = meta.mtime_secs.min(self.now.unix_secs);
        let pending = Pending {
            req,
            path,
            ct,
            meta,
            coding,
            etag,
        };
        match conditional::evaluate(&pending.req.head, &pending.etag, modified) {
            Precondition::Failed => {
                let r = Refusal::keep(412, "a precondition failed");
                let etag = pending.etag.clone();
                self.refuse_with(&pending.req, r, |w| {
                    w.field("ETag", &etag).field("Vary", "Accept-Encoding");
                });
            }
            Precondition::NotModified => self.compressed_head(pending, 304, None),
            Precondition::Proceed => {
                // A body of unknown length needs chunked framing: HTTP/1.1 only.
                let stream = pending.req.head.minor == 1;
                self.out.push_back(Action::Compress { coding, stream });
                self.state = State::AwaitCompressed(Box::new(pending));
            }
        }
    }

    /// What the runtime says of the compression asked for.
    pub(super) fn compressed_result(&mut self, result: Compressed) {
        let State::AwaitCompressed(pending) = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        // No length where chunked framing is not allowed: as good as a refusal.
        let unframed = result == Compressed::Stream && pending.req.head.minor != 1;
        match result {
            Compressed::Len(n) => self.compressed_head(*pending, 200, Some(Some(n))),
            Compressed::Stream if !unframed => self.compressed_head(*pending, 200, Some(None)),
            // Not compressed: the identity answer, at once.
            _ => {
                let Pending {
                    req,
                    path,
                    ct,
                    meta,
                    ..
                } = *pending;
                self.answer_file(&req, &path, Coding::Identity, &ct, meta);
            }
        }
    }

    /// The head of a compressed answer (`len`: `Some(Some(n))` a length, `Some(None)`
    /// chunked; `None`: a `304`), then its body.
    fn compressed_head(&mut self, p: Pending, status: u16, len: Option<Option<u64>>) {
        let modified = p.meta.mtime_secs.min(self.now.unix_secs);
        let mut last_modified = String::new();
        write_http_date(&mut last_modified, modified);
        let config = Arc::clone(&self.config);
        let disposition =
            p.ct.attachment
                .then(|| mime::attachment(p.path.file_name()));
        let content_length = len.flatten();
        self.respond_head(&p.req, status, content_length, |w| {
            w.field("Content-Type", &p.ct.value)
                .field("Content-Encoding", p.coding.token())
                .field("Vary", "Accept-Encoding")
                .field("ETag", &p.etag)
                .field("Last-Modified", &last_modified);
            if let Some(d) = &disposition {
                w.field("Content-Disposition", d);
            }
            if !config.cache_control.is_empty() {
                w.field("Cache-Control", &config.cache_control);
            }
            if matches!(len, Some(None)) {
                w.field("Transfer-Encoding", "chunked");
            }
        });
        if status == 200 && p.req.head.method == Method::Get {
            let body_len = content_length.unwrap_or(p.meta.len);
            if body_len > 0 {
                self.out.push_back(Action::SendFile {
                    offset: 0,
                    len: body_len,
                });
            }
        }
    }
}

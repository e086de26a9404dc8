//! Answering a file: which precompressed variant to open, then the preconditions
//! (RFC 9110 §13.2.2: 412 or 304), ranges (206, 416) and the head of a 200. A file's
//! bytes never pass through the core: the answer is a head plus [`Action::SendFile`].

use std::sync::Arc;

use log::error;

use super::{Action, Connection, FileError, FileMeta, Request, State};
use crate::conditional::{self, Precondition, RangeAnswer};
use crate::mime::{self, ContentType};
use crate::parse::{Method, RequestHead};
use crate::response::{write_http_date, HeadWriter};
use crate::target::SafePath;
use crate::Refusal;

/// Precompressed variants, tried in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    Br,
    Gzip,
    Identity,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Gzip => ".gz",
            Encoding::Identity => "",
        }
    }
}

/// Which open a file request is waiting for. The file itself is opened first, so a
/// precompressed sibling is only served beside an existing `NAME`; when no sibling
/// opens, the file is opened again (the runtime holds one open file at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    First,
    Variant(Encoding),
    Reopen,
}

/// What a file request waits with.
type Awaiting = (Request, SafePath, Stage, Option<ContentType>);

impl Connection {
    /// A GET or HEAD of a path below the root (`dir`: the target named a directory).
    pub(super) fn open_file(&mut self, mut req: Request, path: SafePath, dir: bool) {
        req.dir = dir;
        let content_type = mime::content_type(path.file_name());
        self.open(req, path, Stage::First, content_type);
    }

    /// Leaves the AwaitFile state, or `None` when the connection is not waiting for a
    /// file.
    pub(super) fn take_await_file(&mut self) -> Option<Awaiting> {
        if !matches!(self.state, State::AwaitFile { .. }) {
            return None;
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::AwaitFile {
                req,
                path,
                stage,
                content_type,
            } => Some((req, path, stage, content_type)),
            _ => None,
        }
    }

    /// What the runtime found when it opened the file (or a variant of it).
    pub(super) fn file_result(
        &mut self,
        req: Request,
        path: SafePath,
        stage: Stage,
        content_type: Option<ContentType>,
        result: Result<FileMeta, FileError>,
    ) {
        let meta = match (stage, result) {
            // A sibling that is missing, refused, unreadable or a directory: the file
            // itself serves.
            (Stage::Variant(enc), Err(_)) => {
                return self.next_variant(req, path, enc, content_type)
            }
            (Stage::Variant(enc), Ok(m)) if m.is_dir => {
                return self.next_variant(req, path, enc, content_type)
            }
            // `/docs/` without an index.html: its listing, when listings are on.
            (_, Err(FileError::NotFound)) if req.dir && self.config.dir_listing => {
                let dir = path.parent();
                self.out.push_back(Action::ListDir(dir.clone()));
                self.state = State::AwaitListing { req, dir };
                return;
            }
            (_, Err(FileError::NotFound)) => {
                return self.refuse(&req, Refusal::keep(404, "no such file"))
            }
            (_, Err(FileError::Forbidden)) => {
                return self.refuse(
                    &req,
                    Refusal::keep(403, "file resolves outside the web root"),
                )
            }
            (_, Err(FileError::Other)) => {
                error!("{} could not open {}", self.peer, path.as_str());
                return self.refuse(&req, Refusal::keep(500, "the file could not be read"));
            }
            (_, Ok(m)) => m,
        };
        match (stage, content_type) {
            (Stage::Variant(enc), Some(ct)) => self.answer_file(&req, &path, enc, &ct, meta),
            // `/docs` names a directory: with listings on, its URL ends in a slash.
            _ if meta.is_dir && self.config.dir_listing && !req.dir => {
                self.redirect_to_dir(&req, &path)
            }
            _ if meta.is_dir => self.refuse(&req, Refusal::keep(404, "a directory is not a file")),
            (_, None) => self.refuse(&req, Refusal::keep(415, "unknown file type")),
            (Stage::First, Some(ct)) => match first_variant(&req.head, &ct) {
                Some(enc) => self.open(req, path, Stage::Variant(enc), Some(ct)),
                None => self.answer_file(&req, &path, Encoding::Identity, &ct, meta),
            },
            (_, Some(ct)) => self.answer_file(&req, &path, Encoding::Identity, &ct, meta),
        }
    }

    fn open(
        &mut self,
        req: Request,
        path: SafePath,
        stage: Stage,
        content_type: Option<ContentType>,
    ) {
        let open = match stage {
            Stage::Variant(enc) => path.with_suffix(enc.suffix()),
            Stage::First | Stage::Reopen => path.clone(),
        };
        self.out.push_back(Action::OpenFile(open));
        self.state = State::AwaitFile {
            req,
            path,
            stage,
            content_type,
        };
    }

    /// After sibling `tried` did not open: the next sibling, or the file itself again.
    fn next_variant(
        &mut self,
        req: Request,
        path: SafePath,
        tried: Encoding,
        content_type: Option<ContentType>,
    ) {
        let next = match tried {
            Encoding::Br if req.head.accept_gzip => Stage::Variant(Encoding::Gzip),
            _ => Stage::Reopen,
        };
        self.open(req, path, next, content_type);
    }

    fn answer_file(
        &mut self,
        req: &Request,
        path: &SafePath,
        encoding: Encoding,
        ct: &ContentType,
        meta: FileMeta,
    ) {
        // RFC 9110 §8.8.2.1: a Last-Modified later than Date (a file dated in the future)
        // is sent as Date; every date validator works on that same value.
        let now = self.now.unix_secs;
        let modified = meta.mtime_secs.min(now);
        // Both strings are kept in the connection and rewritten only when they change.
        let version = EtagOf(meta.len, meta.mtime_secs, meta.mtime_nanos);
        let (etag_of, mut etag) = std::mem::take(&mut self.etag);
        if etag.is_empty() || etag_of != version {
            etag.clear();
            conditional::write_etag(&mut etag, meta.len, meta.mtime_secs, meta.mtime_nanos);
        }
        let (lm_secs, mut last_modified) = std::mem::take(&mut self.last_modified);
        if last_modified.is_empty() || lm_secs != modified {
            last_modified.clear();
            write_http_date(&mut last_modified, modified);
        }
        let config = Arc::clone(&self.config);
        let cache_control = config.cache_control.as_str();
        let validators = |w: &mut HeadWriter<'_>| {
            w.field("ETag", &etag)
                .field("Last-Modified", &last_modified);
            if !cache_control.is_empty() {
                w.field("Cache-Control", cache_control);
            }
            if ct.compressible {
                w.field("Vary", "Accept-Encoding");
            }
        };
        match conditional::evaluate(&req.head, &etag, modified) {
            Precondition::Failed => {
                self.refuse_with(req, Refusal::keep(412, "a precondition failed"), validators)
            }
            Precondition::NotModified => self.respond_head(req, 304, None, validators),
            Precondition::Proceed => {
                let answer = if encoding == Encoding::Identity {
                    // A date validator is strong only if at least a second before Date.
                    let strong_date = modified < now;
                    conditional::range(&req.head, &etag, &last_modified, strong_date, meta.len)
                } else {
                    RangeAnswer::Full
                };
                let (status, offset, len) = match answer {
                    RangeAnswer::Full => (200, 0, meta.len),
                    RangeAnswer::Partial { start, len } => (206, start, len),
                    RangeAnswer::Unsatisfiable => {
                        let content_range = format!("bytes */{}", meta.len);
                        let r = Refusal::keep(416, "the range is outside the file");
                        self.refuse_with(req, r, |w| {
                            w.field("Content-Range", &content_range);
                        });
                        self.etag = (version, etag);
                        self.last_modified = (modified, last_modified);
                        return;
                    }
                };
                let disposition = ct.attachment.then(|| mime::attachment(path.file_name()));
                self.respond_head(req, status, Some(len), |w| {
                    w.field("Content-Type", &ct.value);
                    if let Some(d) = &disposition {
                        w.field("Content-Disposition", d);
                    }
                    match encoding {
                        Encoding::Br => w.field("Content-Encoding", "br"),
                        Encoding::Gzip => w.field("Content-Encoding", "gzip"),
                        Encoding::Identity => w,
                    };
                    validators(w);
                    w.field("Accept-Ranges", "bytes");
                    if status == 206 {
                        let end = offset + len - 1;
                        w.field(
                            "Content-Range",
                            &format!("bytes {offset}-{end}/{}", meta.len),
                        );
                    }
                });
                if req.head.method == Method::Get && len > 0 {
                    self.out.push_back(Action::SendFile { offset, len });
                }
            }
        }
        self.etag = (version, etag);
        self.last_modified = (modified, last_modified);
    }
}

/// The first precompressed sibling worth trying for this request, if any: only for
/// compressible types, never for range requests (ranges address the file itself).
fn first_variant(head: &RequestHead, ct: &ContentType) -> Option<Encoding> {
    if !ct.compressible || head.range.is_some() {
        None
    } else if head.accept_br {
        Some(Encoding::Br)
    } else if head.accept_gzip {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// The file version an entity tag was written for (size, modification seconds and
/// nanoseconds): the tag is rewritten only when it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct EtagOf(u64, u64, u32);

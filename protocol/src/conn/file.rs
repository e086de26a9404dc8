//! Answering a file: which precompressed variant to open, then the preconditions
//! (RFC 9110 §13.2.2: 412 or 304), ranges (206, 416) and the head of a 200. A file's
//! bytes never pass through the core: the answer is a head plus [`Action::SendFile`].

use std::sync::Arc;

use log::error;

use super::{Action, Connection, FileError, FileMeta, Request, State};
use crate::conditional::{self, Precondition, RangeAnswer};
use crate::encoding::{negotiate, Coding};
use crate::mime::{self, ContentType};
use crate::parse::{Method, RequestHead};
use crate::response::{write_http_date, HeadWriter};
use crate::target::SafePath;
use crate::Refusal;

/// The page of a single-page application (`--spa`).
const INDEX: &str = "/index.html";
/// The body of every `404` to a GET, when the root has it.
const NOT_FOUND_PAGE: &str = "/404.html";

/// The precompressed siblings a client may get (`NAME.zst`, `NAME.br`, `NAME.gz`), in
/// the server's order of preference; the client's q-values choose first.
const SIBLINGS: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

/// The codings of [`SIBLINGS`] as bits (which ones were tried).
fn bit(c: Coding) -> u8 {
    1 << (c as u8)
}

/// Which open a file request is waiting for. The file itself is opened first, so a
/// precompressed sibling is only served beside an existing `NAME`; when no sibling
/// opens, the file is opened again (the runtime holds one open file at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    First,
    /// A precompressed sibling in this coding; `tried`: the codings whose sibling did
    /// not open (bits of [`bit`]).
    Variant {
        coding: Coding,
        tried: u8,
    },
    Reopen,
    /// The root's `404.html`, the body of a `404` to a GET.
    NotFoundPage,
}

/// What a file request waits with.
type Awaiting = (Request, SafePath, Stage, Option<ContentType>);

impl Connection {
    /// A GET or HEAD of a path below the root (`dir`: the target named a directory).
    pub(super) fn open_file(&mut self, mut req: Request, path: SafePath, dir: bool) {
        if dir && self.config.dir_listing && super::archive::wants_zip(&req.head.target) {
            return self.archive(req, path.parent());
        }
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
            (Stage::NotFoundPage, result) => return self.not_found_page(req, result),
            // A sibling that is missing, refused, unreadable or a directory: the file
            // itself serves.
            (Stage::Variant { coding, tried }, Err(_)) => {
                return self.next_variant(req, path, tried | bit(coding), content_type)
            }
            (Stage::Variant { coding, tried }, Ok(m)) if m.is_dir => {
                return self.next_variant(req, path, tried | bit(coding), content_type)
            }
            // `/docs/` without an index.html: its listing, when listings are on.
            (_, Err(FileError::NotFound)) if req.dir && self.config.dir_listing => {
                let dir = path.parent();
                self.out.push_back(Action::ListDir(dir.clone()));
                self.state = State::AwaitListing { req, dir };
                return;
            }
            (_, Err(FileError::NotFound)) => return self.missing(req, path),
            (_, Err(FileError::Forbidden)) => {
                return self.refuse(
                    &req,
                    Refusal::keep(403, "file resolves outside the web root"),
                )
            }
            (_, Err(FileError::Unavailable)) => {
                error!(
                    "{} could not open {}: the store is unavailable",
                    self.peer,
                    path.as_str()
                );
                let r = Refusal::keep(503, "the upload store is unavailable, try again shortly");
                return self.refuse(&req, r);
            }
            (_, Err(FileError::Other)) => {
                error!("{} could not open {}", self.peer, path.as_str());
                return self.refuse(&req, Refusal::keep(500, "the file could not be read"));
            }
            (_, Ok(m)) => m,
        };
        match (stage, content_type) {
            (Stage::Variant { coding, .. }, Some(ct)) => {
                self.answer_file(&req, &path, coding, &ct, meta)
            }
            // `/docs` names a directory: with listings on, its URL ends in a slash.
            _ if meta.is_dir && self.config.dir_listing && !req.dir => {
                self.redirect_to_dir(&req, &path)
            }
            _ if meta.is_dir => self.not_found(req, "a directory is not a file"),
            (_, None) => self.refuse(&req, Refusal::keep(415, "unknown file type")),
            (Stage::First, Some(ct)) => match sibling(&req.head, &ct, 0) {
                Some(coding) => {
                    let stage = Stage::Variant { coding, tried: 0 };
                    self.open(req, path, stage, Some(ct))
                }
                None => self.identity_or_compressed(req, path, ct, meta),
            },
            (_, Some(ct)) => self.identity_or_compressed(req, path, ct, meta),
        }
    }

    /// No such file: with `--spa`, a page route of the client (a GET or HEAD from a
    /// client that accepts `text/html`, its last segment without an extension) gets
    /// `/index.html`; anything else is a `404`.
    fn missing(&mut self, req: Request, path: SafePath) {
        let page_route = self.config.spa
            && req.head.accept_html
            && !path.file_name().contains('.')
            && path.as_str() != &INDEX[1..];
        match SafePath::from_request_path(INDEX).filter(|_| page_route) {
            Some(index) => {
                let ct = mime::content_type(INDEX);
                self.open(req, index, Stage::First, ct);
            }
            None => self.not_found(req, "no such file"),
        }
    }

    /// A `404`: to a GET or HEAD, the root's `404.html` is its body when there is one.
    pub(super) fn not_found(&mut self, req: Request, reason: &'static str) {
        match SafePath::from_request_path(NOT_FOUND_PAGE) {
            Some(page) if matches!(req.head.method, Method::Get | Method::Head) => {
                self.open(req, page, Stage::NotFoundPage, None)
            }
            _ => self.refuse(&req, Refusal::keep(404, reason)),
        }
    }

    /// The root's `404.html` opened (or not: the usual error page then).
    fn not_found_page(&mut self, req: Request, result: Result<FileMeta, FileError>) {
        let len = match result {
            Ok(meta) if !meta.is_dir => meta.len,
            _ => return self.refuse(&req, Refusal::keep(404, "no such file")),
        };
        self.respond_head(&req, 404, Some(len), |w| {
            w.field("Content-Type", "text/html; charset=utf-8")
                .field("Cache-Control", "no-cache");
        });
        if req.head.method == Method::Get && len > 0 {
            self.out.push_back(Action::SendFile { offset: 0, len });
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
            Stage::Variant { coding, .. } => path.with_suffix(coding.suffix().unwrap_or("")),
            Stage::First | Stage::Reopen | Stage::NotFoundPage => path.clone(),
        };
        self.out.push_back(Action::OpenFile(open));
        self.state = State::AwaitFile {
            req,
            path,
            stage,
            content_type,
        };
    }

    /// After the siblings `tried` did not open: the next one, or the file itself again.
    fn next_variant(
        &mut self,
        req: Request,
        path: SafePath,
        tried: u8,
        content_type: Option<ContentType>,
    ) {
        let next = match content_type
            .as_ref()
            .and_then(|ct| sibling(&req.head, ct, tried))
        {
            Some(coding) => Stage::Variant { coding, tried },
            None => Stage::Reopen,
        };
        self.open(req, path, next, content_type);
    }

    pub(super) fn answer_file(
        &mut self,
        req: &Request,
        path: &SafePath,
        encoding: Coding,
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
                let answer = if encoding == Coding::Identity {
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
                    if encoding != Coding::Identity {
                        w.field("Content-Encoding", encoding.token());
                    }
                    validators(w);
                    // A precompressed sibling is sent whole: no ranges offered.
                    if encoding == Coding::Identity {
                        w.field("Accept-Ranges", "bytes");
                    }
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
/// The precompressed sibling to try next (none tried yet: `tried` 0): the coding the
/// client prefers among those not tried, unless it prefers identity to all of them.
fn sibling(head: &RequestHead, ct: &ContentType, tried: u8) -> Option<Coding> {
    if !ct.compressible || head.range.is_some() {
        return None;
    }
    let accept = head.accept_encoding.as_deref()?.as_bytes();
    let mut offered = [Coding::Identity; 4];
    let mut n = 0;
    for c in SIBLINGS.into_iter().filter(|&c| tried & bit(c) == 0) {
        offered[n] = c;
        n += 1;
    }
    offered[n] = Coding::Identity;
    negotiate(Some(accept), &offered[..=n]).filter(|&c| c != Coding::Identity)
}

/// The file version an entity tag was written for (size, modification seconds and
/// nanoseconds): the tag is rewritten only when it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct EtagOf(u64, u64, u32);

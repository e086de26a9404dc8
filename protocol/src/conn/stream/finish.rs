//! How a streamed upload ends: each operation's result, the commit and its answer, a
//! timeout, a failure or an abort (nothing partial is left).

use log::error;

use super::*;

impl Connection {
    /// The result of the operation handed out last.
    pub(in crate::conn) fn stream_result(&mut self, result: Result<Option<FileMeta>, UploadError>) {
        let State::Stream(mut st) = std::mem::replace(&mut self.state, State::Head) else {
            return;
        };
        let Some(owed) = st.owed.take() else {
            self.state = State::Stream(st);
            return;
        };
        match (owed, result) {
            (Owed::Begin, Ok(_)) => st.open = true,
            (Owed::Chunk, Ok(_)) => {}
            (Owed::Commit, Ok(meta)) => {
                st.open = false;
                st.meta = meta;
                let location = match st.committing.take() {
                    Some(p) => uploads_url(&numbered(&p)),
                    None => {
                        let target = st.req.head.target.split(['?', '#']).next().unwrap_or("/");
                        target.to_string()
                    }
                };
                st.saved.push(location);
            }
            // A file of a form whose name is taken: the next numbered name.
            (Owed::Commit, Err(UploadError::AlreadyExists { .. }))
                if st.committing.as_ref().is_some_and(|p| p.tried < NAME_TRIES) =>
            {
                let mut part = st.committing.take();
                if let Some(p) = part.as_mut() {
                    p.tried += 1;
                }
                st.ops.push_front(Op::Commit(part));
            }
            (Owed::Commit, Err(UploadError::AlreadyExists { .. })) => {
                // A PUT without a precondition found a file created meanwhile.
                let r = match st.kind {
                    Kind::Put { .. } => Refusal::keep(412, "a file was created meanwhile"),
                    Kind::Form { .. } => Refusal::keep(500, "no free name for the file"),
                };
                return self.stream_failed(st, r);
            }
            (owed, Err(e)) => {
                // A begin that failed made no file; a commit that failed (but for a name
                // taken) ended it. A chunk that failed leaves it begun: it is aborted.
                if owed != Owed::Chunk {
                    st.open = false;
                }
                let r = upload_refusal(e);
                if r.status >= 500 {
                    error!(
                        "{} upload {:?} failed: {e:?}",
                        self.peer, st.req.head.target
                    );
                }
                return self.stream_failed(st, r);
            }
        }
        self.state = State::Stream(st);
    }

    /// The rate window ended: enough came, or the upload is a `408`.
    pub(in crate::conn) fn stream_timeout(&mut self, mut st: Box<Stream>) {
        let window = self.config.idle_timeout_ms.max(1000);
        let needed = MIN_RATE.saturating_mul(window / 1000);
        if st.window_bytes < needed {
            return self.stream_failed(st, Refusal::close(408, "the upload body stalled"));
        }
        st.window_start = self.now.mono_ms;
        st.window_bytes = 0;
        self.state = State::Stream(st);
    }

    /// Stops an upload: the file begun is removed, the refusal answered; a body not read
    /// to its end closes the connection.
    pub(super) fn stream_failed(&mut self, mut st: Box<Stream>, r: Refusal) {
        self.abort(&mut st);
        let close = r.close || !st.complete;
        self.refuse(&st.req, Refusal { close, ..r });
    }

    pub(super) fn abort(&mut self, st: &mut Stream) {
        if st.open {
            st.open = false;
            self.out.push_back(Action::AbortUpload);
        }
        st.ops.clear();
        st.buf = Vec::new();
        st.held = 0;
    }

    /// Everything is written and committed: the answer.
    pub(super) fn stream_done(&mut self, st: Box<Stream>) {
        let Stream {
            req,
            kind,
            saved,
            meta,
            ..
        } = *st;
        match kind {
            Kind::Put { replace, .. } => {
                let mut etag = String::new();
                if let Some(m) = meta {
                    write_etag(&mut etag, m.len, m.mtime_secs, m.mtime_nanos);
                }
                let location = saved.first().cloned().unwrap_or_default();
                let status = if replace { 204 } else { 201 };
                self.respond(&req, status, &[], |w| {
                    if !etag.is_empty() {
                        w.field("ETag", &etag);
                    }
                    if status == 201 {
                        w.field("Location", &location);
                    }
                });
            }
            Kind::Form { .. } if saved.is_empty() => {
                self.refuse(&req, Refusal::keep(400, "the form holds no file"));
            }
            Kind::Form { .. } => {
                let paths: Vec<String> = saved.iter().map(|p| json_string(p)).collect();
                let body = format!(
                    "{{\"status\":\"created\",\"path\":{},\"paths\":[{}]}}",
                    paths[0],
                    paths.join(",")
                );
                self.respond(&req, 201, body.as_bytes(), |w| {
                    w.field("Content-Type", "application/json")
                        .field("Location", &saved[0]);
                });
            }
        }
    }
}

/// The `CommitUpload` of the file being streamed.
pub(super) fn commit_action(st: &Stream) -> Action {
    match &st.kind {
        Kind::Put { path, replace } => Action::CommitUpload {
            target: UploadTarget::Path(path.clone()),
            replace: *replace,
        },
        Kind::Form { .. } => Action::CommitUpload {
            target: UploadTarget::Uploads(st.committing.as_ref().map(numbered).unwrap_or_default()),
            replace: false,
        },
    }
}

/// The name a form's file is committed under now: its own, then `name-1.ext`, ….
pub(super) fn numbered(p: &Part) -> String {
    crate::filename::numbered(&p.name, p.tried)
}

/// How a failed upload is answered.
pub(super) fn upload_refusal(e: UploadError) -> Refusal {
    match e {
        UploadError::NoSpace => Refusal::keep(507, "the disk is full"),
        UploadError::NoParent => Refusal::keep(409, "the directory of the target does not exist"),
        UploadError::Unavailable => {
            Refusal::keep(503, "the upload store is unavailable, try again shortly")
        }
        UploadError::AlreadyExists { .. } => Refusal::keep(412, "the file exists"),
        UploadError::Other => Refusal::keep(500, "the upload could not be saved"),
    }
}

/// `/uploads/NAME` with the name percent-encoded where a URL needs it.
pub(super) fn uploads_url(name: &str) -> String {
    let mut url = String::from("/uploads/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// A JSON string literal.
pub(super) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A parser event, owned (the parser's borrow ends with each call).
pub(super) enum FormEvent {
    Start(Option<String>),
    Data(Vec<u8>),
    End,
    Done,
}

impl FormEvent {
    pub(super) fn of(e: Event<'_>) -> FormEvent {
        match e {
            Event::PartStart { filename, .. } => FormEvent::Start(filename),
            Event::Data(d) => FormEvent::Data(d.to_vec()),
            Event::PartEnd => FormEvent::End,
            Event::End => FormEvent::Done,
        }
    }
}

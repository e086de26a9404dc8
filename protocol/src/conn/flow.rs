//! How a request moves through the core: heads parsed in turn (`advance`), a request
//! begun (Host, access, routing), its body read or refused (`proceed`), and handed to
//! its handler (`dispatch`).

use super::*;

impl Connection {
    /// Parses and answers whatever the input buffer holds, until it needs more bytes, a
    /// result from the runtime, or the end of writing an answer.
    pub(super) fn advance(&mut self) {
        while !self.unwritten && !self.close_pending {
            match std::mem::replace(&mut self.state, State::Head) {
                State::Head => {
                    let buf = &self.input[self.pos..];
                    // Only a byte other than CR or LF starts a request (and its deadline).
                    if buf.iter().any(|&b| b != b'\r' && b != b'\n') {
                        self.head_started_ms.get_or_insert(self.now.mono_ms);
                    } else {
                        self.head_started_ms = None;
                    }
                    if buf.is_empty() {
                        if self.eof {
                            self.close();
                        }
                        break;
                    }
                    match parse_head_for(buf, self.config.records) {
                        Ok(Parsed::Partial) => {
                            if self.eof {
                                self.close();
                            }
                            break;
                        }
                        Err(r) => {
                            self.refuse_unparsed(r);
                            break;
                        }
                        Ok(Parsed::Complete(head, n)) => {
                            self.pos += n;
                            self.head_started_ms = None;
                            self.begin(head);
                        }
                    }
                }
                State::Body {
                    req,
                    mut reader,
                    mut body,
                    mut held,
                    started_ms,
                } => match self.read_body(&mut reader, &mut body, &mut held) {
                    Err(r) => {
                        self.refuse(&req, r);
                        break;
                    }
                    Ok(true) => self.dispatch(req, body, held),
                    Ok(false) => {
                        self.state = State::Body {
                            req,
                            reader,
                            body,
                            held,
                            started_ms,
                        };
                        if self.eof {
                            self.close();
                        }
                        break;
                    }
                },
                State::Stream(st) => {
                    if !self.stream(st) {
                        break;
                    }
                }
                other => {
                    self.state = other;
                    break;
                }
            }
        }
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 16 * 1024 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// A whole head has been read: check it, route it, and start on its body.
    pub(super) fn begin(&mut self, head: Box<RequestHead>) {
        let mut req = Request {
            head,
            route: Route::Options,
            started_ms: self.now.mono_ms,
            dir: false,
            user: None,
            auth_failed: false,
            upload: false,
            upload_bytes: 0,
        };
        let path = match self.check_host(&req.head) {
            Ok(path) => path,
            Err(r) => return self.refuse(&req, r),
        };
        req.route = route::route(&req.head, path, &self.config);
        // An upload for the record: a PUT, or a POST to /upload (415 for another type).
        req.upload = match (&req.head.method, &req.route) {
            (Method::Put, _) => true,
            (Method::Post, Route::Upload | Route::Multipart { .. }) => true,
            (Method::Post, Route::Refuse(r)) => r.status == 415,
            _ => false,
        };
        // A streamed upload may be larger than a body held in memory.
        let streamed = matches!(req.route, Route::Put { .. } | Route::Multipart { .. });
        let limit = if streamed {
            self.config.max_upload
        } else {
            self.config.max_body
        };
        let body_len = match req.head.framing {
            Framing::Length(n) if n > limit => {
                return self.refuse(&req, Refusal::close(413, "request body too large"));
            }
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
            Framing::None => Some(0),
        };
        if self.config.access.is_some() {
            if let Some(user) = self.authorize(&mut req) {
                // The password is being verified: the body waits.
                self.state = State::AwaitAuth {
                    req,
                    user,
                    body_len,
                };
                return;
            }
        }
        self.proceed(req, body_len);
    }

    /// A request allowed through (or to be refused once its body is read): its body,
    /// then [`Connection::dispatch`].
    pub(super) fn proceed(&mut self, req: Request, body_len: Option<u64>) {
        match req.route {
            Route::Put { .. } => return self.check_target(req, body_len),
            Route::Multipart { .. } => return self.start_form(req, body_len),
            _ => {}
        }
        if body_len == Some(0) {
            return self.dispatch(req, Vec::new(), None);
        }
        // An upload body is held in memory until written: it needs room in the budget
        // all connections share (a chunked one takes its room as it grows).
        let held = match req.route {
            Route::Upload => match Held::take(&self.config.body_budget, body_len.unwrap_or(0)) {
                Some(held) => Some(held),
                None => return self.refuse(&req, body::OVER_BUDGET),
            },
            _ => None,
        };
        if req.head.expect_continue {
            if let Route::Refuse(r) = req.route {
                // The client waits before sending the body: refuse now and close rather
                // than read a body we would throw away.
                return self.refuse(&req, Refusal { close: true, ..r });
            }
            // Whatever the method, a client that waits is told to go on (RFC 9110 §10.1.1).
            self.out.push_back(Action::Continue);
            self.unwritten = true;
        }
        let capacity = if held.is_some() {
            body_len.unwrap_or(0).min(1 << 20) as usize
        } else {
            0
        };
        self.state = State::Body {
            req,
            reader: BodyReader::new(body_len),
            body: Vec::with_capacity(capacity),
            held,
            started_ms: self.now.mono_ms,
        };
    }

    /// The request is complete: act on it.
    pub(super) fn dispatch(&mut self, mut req: Request, body: Vec<u8>, held: Option<Held>) {
        match std::mem::replace(&mut req.route, Route::Options) {
            Route::Refuse(r) if r.status == 404 => self.not_found(req, r.reason),
            Route::Refuse(r) => self.refuse(&req, r),
            Route::Options => self.options(&req),
            Route::Upload => self.upload(req, body, held),
            Route::File { path, dir } => self.open_file(req, path, dir),
            // A DELETE's body (if any) is read and dropped first.
            route @ Route::Delete { .. } => {
                req.route = route;
                self.check_target(req, Some(0));
            }
            // Streamed before their body was read: not dispatched.
            Route::Put { .. } | Route::Multipart { .. } => {}
        }
    }
}

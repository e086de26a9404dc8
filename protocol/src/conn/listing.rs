//! Directory listings (`--dir-listing`): `/docs` redirects to `/docs/`, and `/docs/`
//! without an `index.html` is listed from what the runtime read ([`Input::DirListed`]):
//! HTML for browsers, JSON when `Accept` asks for `application/json`.

use log::error;

use super::{Connection, FileError, Request, State};
use crate::listing::{self, Listing};
use crate::target::SafePath;
use crate::Refusal;

impl Connection {
    /// `301` to the directory's URL with its slash (the query kept).
    pub(super) fn redirect_to_dir(&mut self, req: &Request, path: &SafePath) {
        let mut location = path.dir_url();
        if let Some(i) = req.head.target.find('?') {
            location.push_str(&req.head.target[i..]);
        }
        let r = Refusal::keep(301, "this is a directory; its address ends with a slash");
        self.refuse_with(req, r, |w| {
            w.field("Location", &location);
        });
    }

    /// What the runtime read of the directory asked for by `ListDir`.
    pub(super) fn listing_result(&mut self, result: Result<Listing<'_>, FileError>) {
        let State::AwaitListing { req, dir } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        // With `--auth`, only what the requester may read is listed.
        let readable: Vec<crate::DirEntry>;
        let result = match result {
            Ok(all) if self.config.access.is_some() => {
                let prefix = match dir.as_str() {
                    "" => String::new(),
                    d => format!("{d}/"),
                };
                readable = all
                    .entries
                    .iter()
                    .filter(|e| self.may_read(&req, &format!("{prefix}{}", e.name)))
                    .cloned()
                    .collect();
                Ok(Listing {
                    entries: &readable,
                    unread: all.unread,
                })
            }
            other => other,
        };
        match result {
            Ok(entries) => {
                let (body, content_type) = if req.head.accept_json {
                    (listing::json(&entries), "application/json")
                } else {
                    let title = match dir.as_str() {
                        "" => "/".to_string(),
                        d => format!("/{d}/"),
                    };
                    (listing::html(&title, &entries), "text/html; charset=utf-8")
                };
                self.respond(&req, 200, &body, |w| {
                    w.field("Content-Type", content_type)
                        .field("Cache-Control", "no-cache")
                        .field("Vary", "Accept");
                });
            }
            Err(FileError::NotFound) => self.not_found(req, "no such directory"),
            Err(FileError::Forbidden) => {
                self.refuse(&req, Refusal::keep(403, "directory outside the web root"))
            }
            Err(FileError::Unavailable) => {
                error!(
                    "{} could not list {:?}: the store is unavailable",
                    self.peer,
                    dir.as_str()
                );
                let r = Refusal::keep(503, "the store is unavailable, try again shortly");
                self.refuse(&req, r);
            }
            Err(FileError::Other) => {
                error!("{} could not list {:?}", self.peer, dir.as_str());
                self.refuse(&req, Refusal::keep(500, "the directory could not be read"));
            }
        }
    }
}

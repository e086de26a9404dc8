//! Folders as zip archives (`--dir-listing`, SPEC "Compression and archives"):
//! `GET /DIR/?zip` (any query with a `zip` parameter) is the directory tree as a zip
//! archive, streamed. The runtime makes it ([`Action::Archive`]): it reports whether the
//! directory could be read at all ([`Input::Archived`]) before anything is sent, so a
//! missing or refused directory is a `404` or `403` like any other; then the core sends
//! the head and a `SendFile` of the archive. The body has no length: chunked in
//! HTTP/1.1, delimited by the close in HTTP/1.0. What the requester may not read (with
//! `--auth`) is left out by the runtime, as it walks, with the rules of the core.

use super::{Action, Connection, FileError, Request, State};
use crate::parse::Method;
use crate::target::SafePath;
use crate::Refusal;

/// Whether a request target asks for the archive: a `zip` parameter in its query.
pub(super) fn wants_zip(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .any(|p| p == "zip" || p.starts_with("zip="))
}

impl Connection {
    /// `GET /DIR/?zip`: asks the runtime for the archive of `dir`.
    pub(super) fn archive(&mut self, mut req: Request, dir: SafePath) {
        // A body without a length: chunked in HTTP/1.1; in HTTP/1.0 the close ends it.
        let chunked = req.head.minor == 1;
        if !chunked {
            req.head.keep_alive = false;
        }
        self.out.push_back(Action::Archive {
            dir: dir.clone(),
            user: req.user.clone(),
            chunked,
        });
        self.state = State::AwaitArchive { req, dir };
    }

    /// What the runtime found when it began the archive.
    pub(super) fn archive_result(&mut self, result: Result<(), FileError>) {
        let State::AwaitArchive { req, dir } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        match result {
            Ok(()) => {}
            Err(FileError::NotFound) => return self.not_found(req, "no such directory"),
            Err(FileError::Forbidden) => {
                return self.refuse(&req, Refusal::keep(403, "directory outside the web root"))
            }
            Err(FileError::Unavailable) => {
                let r = Refusal::keep(503, "the store is unavailable, try again shortly");
                return self.refuse(&req, r);
            }
            Err(FileError::Other) => {
                log::error!("{} could not archive {:?}", self.peer, dir.as_str());
                return self.refuse(&req, Refusal::keep(500, "the directory could not be read"));
            }
        }
        let name = match dir.as_str().rsplit('/').next() {
            Some(last) if !last.is_empty() => format!("{last}.zip"),
            _ => "root.zip".to_string(),
        };
        let disposition = crate::mime::attachment(&name);
        let chunked = req.head.minor == 1;
        self.respond_head(&req, 200, None, |w| {
            w.field("Content-Type", "application/zip")
                .field("Content-Disposition", &disposition)
                .field("Cache-Control", "no-store");
            if chunked {
                w.field("Transfer-Encoding", "chunked");
            }
        });
        if req.head.method == Method::Get {
            // The archive's length is unknown: the runtime sends it to its end.
            self.out.push_back(Action::SendFile {
                offset: 0,
                len: u64::MAX,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wants_zip;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn the_zip_parameter() {
        for yes in ["/d/?zip", "/?zip", "/d/?a=1&zip", "/d/?zip=1", "/d/?zip#x"] {
            assert!(wants_zip(yes), "{yes}");
        }
        for no in ["/d/", "/d/?zipper", "/d/?a=zip", "/d/?", "/zip/"] {
            assert!(!wants_zip(no), "{no}");
        }
    }
}

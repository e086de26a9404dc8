//! Paths: every path handed to the runtime (`OpenFile`, `ListDir`), the directory a
//! `ListDir` reads, the `Location` of a redirect, and upload names.

use protocol::target::{resolve_path, split_absolute};
use protocol::PathRules;

use super::response::Head;
use super::{Checker, Pending, Step};
use crate::shadow::{Shadow, ShadowRequest};

/// No path the core hands the runtime may climb or be absolute (SPEC "Security").
/// Control characters other than NUL are legal in names (since issue 15: a name with a
/// newline must round-trip from a listing).
pub fn check_path(p: &str) {
    assert!(!p.is_empty(), "empty path");
    assert!(!p.starts_with('/'), "absolute path {p:?}");
    assert!(!p.contains('\0'), "NUL in path {p:?}");
    assert!(!p.contains('\\'), "backslash in path {p:?}");
    for seg in p.split('/') {
        assert!(seg != ".." && seg != ".", "dot segment in path {p:?}");
        assert!(!seg.is_empty(), "empty segment in path {p:?}");
        assert!(!seg.starts_with('.'), "hidden segment in path {p:?}");
    }
}

/// Upload names are `UUID.json`, lower-case hex.
pub(super) fn check_upload_name(name: &str) {
    let stem = name
        .strip_suffix(".json")
        .unwrap_or_else(|| panic!("upload name {name:?}"));
    assert_eq!(stem.len(), 36, "upload name {name:?}");
    assert!(
        stem.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'),
        "upload name {name:?}"
    );
}

/// The path part of a request target (origin or absolute form), without query or
/// fragment.
pub fn target_path(target: &str) -> &str {
    let path = if target.starts_with('/') {
        target
    } else {
        split_absolute(target).map_or(target, |(_, path)| path)
    };
    path.split(['?', '#']).next().unwrap_or("")
}

impl Checker {
    /// A `ListDir` comes only with listings on, right after the `FileOpened` of the
    /// missing `DIR/index.html` of a `GET`/`HEAD` whose target's path ends in `/`, and
    /// names exactly that directory (empty for the root).
    pub(super) fn on_list_dir(&mut self, step: Step, dir: &str, shadow: &Shadow) {
        assert!(self.dir_listing, "ListDir({dir:?}) with listings off");
        assert_eq!(
            step,
            Step::FileOpened,
            "ListDir({dir:?}) not right after a missing index.html"
        );
        if !dir.is_empty() {
            check_path(dir);
        }
        let req = shadow
            .requests
            .get(self.finals as usize)
            .expect("a ListDir for a request never sent");
        assert!(req.is_get_or_head, "ListDir for {:?}", req.target);
        let path_part = target_path(&req.target);
        assert!(
            path_part.ends_with('/'),
            "ListDir({dir:?}) for a target not ending in '/': {:?}",
            req.target
        );
        // The very directory the target names: its index.html was missing.
        let index = resolve_path(path_part, PathRules::Posix)
            .unwrap_or_else(|r| panic!("ListDir for a refused target: {r:?}"));
        let expected = index.as_str().strip_suffix("index.html").unwrap_or("");
        assert_eq!(
            dir,
            expected.trim_end_matches('/'),
            "ListDir of another directory than {:?} names",
            req.target
        );
        assert_eq!(
            self.last_open,
            index.as_str(),
            "ListDir({dir:?}) though index.html was not the file missing"
        );
        self.last_list.clear();
        self.last_list.push_str(dir);
        self.pending = Some(Pending::List);
    }

    /// A `301` comes only with listings on, for a `GET`/`HEAD` of a directory named
    /// without its slash: one `Location`, a path on this site (`/`, never `//`: a
    /// protocol-relative URL would send the client to another host), no raw control or
    /// space byte, and a request for it opens that directory's index.html.
    pub(super) fn check_redirect(&self, head: &Head, req: Option<&ShadowRequest>) {
        assert!(self.dir_listing, "a 301 with listings off");
        let req = req.expect("a 301 for a request never sent");
        assert!(req.is_get_or_head, "a 301 for {:?}", req.target);
        let path_part = target_path(&req.target);
        assert!(
            !path_part.ends_with('/'),
            "a 301 for a target that ends in '/': {:?}",
            req.target
        );
        let [location] = head.locations.as_slice() else {
            panic!("a 301 with Location fields {:?}", head.locations);
        };
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "Location {location:?} (for {:?}) is not a path on this site",
            req.target
        );
        assert!(
            location.bytes().all(|b| (0x21..0x7f).contains(&b)),
            "Location {location:?} has a raw control, space or non-ASCII byte"
        );
        let loc_path = target_path(location);
        assert!(
            loc_path.ends_with('/'),
            "Location {location:?} without its slash"
        );
        let resolved = resolve_path(loc_path, PathRules::Posix)
            .unwrap_or_else(|r| panic!("Location {location:?} would be refused: {r:?}"));
        assert_eq!(
            resolved.as_str(),
            format!("{}/index.html", self.last_open),
            "Location {location:?} is not the directory {:?} that was opened",
            self.last_open
        );
        // The query is kept.
        if let Some(i) = req.target.find('?') {
            assert!(
                location.ends_with(&req.target[i..]),
                "Location {location:?} lost the query of {:?}",
                req.target
            );
        }
    }
}

//! A streamed upload into the object store (a `PUT /uploads/NAME`, a file of a form,
//! with `--upload-store s3://`): the body is kept in memory up to [`PART`]; a body that
//! stays below it is one `PUT` at the commit, a larger one becomes an S3 multipart
//! upload whose parts go out as they fill, under a hidden temporary key
//! (`.tmp-RANDOM-NAME`, never served or listed).
//!
//! The commit completes the multipart upload, then copies the object to its name
//! (server-side, `x-amz-copy-source`) and deletes the temporary: the name appears whole
//! or not at all, and a name taken meanwhile is found before anything is written over
//! it (the core then tries the next name, as with a file on disk). A failure anywhere,
//! and an upload dropped before its commit (the client went away, a limit, the server
//! shutting down), aborts the multipart upload (or deletes the temporary object), so
//! no orphaned parts are left in the bucket.
//!
//! Memory: at most one part ([`PART`]) per upload. A single copy is limited to 5 GiB by
//! S3: past that the commit fails (`500`), which `--max-upload` (1 GiB by default)
//! keeps away unless raised.

use std::sync::Arc;

use log::{error, warn};
use protocol::{FileMeta, UploadError};

use rusty_s3::S3Action;

use super::{Down, S3Store, SIGNED_FOR};

/// A part of a multipart upload (S3 wants at least 5 MiB for every part but the last).
pub const PART: usize = 8 << 20;

/// A multipart upload under way.
#[derive(Debug)]
struct Multipart {
    /// The temporary name (without the store's prefix).
    tmp: String,
    upload_id: String,
    etags: Vec<String>,
    /// Completed: the temporary object exists (delete it, rather than abort).
    completed: bool,
}

/// See the module documentation.
pub struct S3Upload {
    store: Arc<S3Store>,
    buf: Vec<u8>,
    multipart: Option<Multipart>,
    /// Bytes taken so far.
    len: u64,
    /// The name it was begun for (the temporary's suffix, the logs).
    name: String,
}

impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Upload({}, {} bytes)", self.name, self.len)
    }
}

impl S3Upload {
    pub fn begin(store: Arc<S3Store>, name: &str) -> S3Upload {
        S3Upload {
            store,
            buf: Vec::new(),
            multipart: None,
            len: 0,
            name: name.to_string(),
        }
    }

    /// Takes a chunk of the body; a full part is sent (blocks on the network).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        self.len += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = PART - self.buf.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            rest = later;
            if self.buf.len() == PART {
                self.send_part()?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered as the next part (beginning the multipart upload first).
    fn send_part(&mut self) -> Result<(), UploadError> {
        if self.multipart.is_none() {
            let tmp = format!(
                "{}{:08x}-{}",
                crate::files::TMP_PREFIX,
                u32::from_le_bytes(crate::clock::seed()[..4].try_into().unwrap_or_default()),
                self.name
            );
            let upload_id = self.store.create_multipart(&tmp)?;
            self.multipart = Some(Multipart {
                tmp,
                upload_id,
                etags: Vec::new(),
                completed: false,
            });
        }
        let Some(m) = self.multipart.as_mut() else {
            return Err(UploadError::Other);
        };
        let number = u16::try_from(m.etags.len() + 1).map_err(|_| UploadError::Other)?;
        let etag = self
            .store
            .upload_part(&m.tmp, &m.upload_id, number, &self.buf)?;
        m.etags.push(etag);
        self.buf.clear();
        Ok(())
    }

    /// Stores the upload as `name` (over an existing object only if `replace`): see the
    /// module documentation. A name taken gives the upload back for another name.
    #[allow(clippy::type_complexity)]
    pub fn commit(
        mut self: Box<Self>,
        name: &str,
        replace: bool,
    ) -> Result<FileMeta, (UploadError, Option<Box<Self>>)> {
        if !replace {
            match self.store.head(name) {
                Ok(_) => {
                    let taken = UploadError::AlreadyExists {
                        reseed: crate::clock::seed(),
                    };
                    return Err((taken, Some(self)));
                }
                Err(protocol::FileError::NotFound) => {}
                Err(protocol::FileError::Unavailable) => {
                    return Err((UploadError::Unavailable, None))
                }
                Err(_) => return Err((UploadError::Other, None)),
            }
        }
        let written = match self.multipart.as_ref().map(|m| m.completed) {
            // Small: one PUT of the buffered body.
            None => self.store.put_object(name, &self.buf, !replace),
            Some(false) => {
                let last = if self.buf.is_empty() {
                    Ok(())
                } else {
                    self.send_part()
                };
                let done = last.and_then(|()| {
                    let m = self.multipart.as_mut().ok_or(UploadError::Other)?;
                    self.store
                        .complete_multipart(&m.tmp, &m.upload_id, &m.etags)?;
                    m.completed = true;
                    Ok(())
                });
                done.and_then(|()| self.copy_to(name, replace))
            }
            // Completed by an earlier try whose name was taken.
            Some(true) => self.copy_to(name, replace),
        };
        match written {
            Ok(()) => {}
            Err(UploadError::AlreadyExists { .. }) => {
                let taken = UploadError::AlreadyExists {
                    reseed: crate::clock::seed(),
                };
                return Err((taken, Some(self)));
            }
            Err(e) => return Err((e, None)),
        }
        // Done: what is left to clean is the temporary object (if any).
        if let Some(m) = self.multipart.take() {
            let _ = self.store.delete(&m.tmp);
        }
        self.store.head(name).map_err(|e| {
            error!("upload {name}: stored, but the store does not show it: {e:?}");
            (UploadError::Unavailable, None)
        })
    }

    fn copy_to(&self, name: &str, replace: bool) -> Result<(), UploadError> {
        let m = self.multipart.as_ref().ok_or(UploadError::Other)?;
        self.store.copy(&m.tmp, name, !replace)
    }
}

impl Drop for S3Upload {
    /// Not committed: abort the multipart upload, or delete its temporary object, on a
    /// thread of its own (a drop may happen where blocking is not allowed).
    fn drop(&mut self) {
        let Some(m) = self.multipart.take() else {
            return;
        };
        let store = Arc::clone(&self.store);
        let spawned = std::thread::Builder::new()
            .name("s3-abort".into())
            .spawn(move || {
                let result = if m.completed {
                    store.delete(&m.tmp)
                } else {
                    store.abort_multipart(&m.tmp, &m.upload_id)
                };
                if let Err(e) = result {
                    warn!("an unfinished upload's parts could not be removed from the store ({}): {e:?}", m.tmp);
                }
            });
        if let Err(e) = spawned {
            warn!("no thread to abort an unfinished upload in the store: {e}");
        }
    }
}

/// What an answer below 500 that is not a success means for a write.
fn refused(what: &str, name: &str, status: u16) -> UploadError {
    if status == 412 {
        return UploadError::AlreadyExists { reseed: [0; 16] };
    }
    error!("upload {name}: the store answered {status} to {what}");
    UploadError::Unavailable
}

fn down(what: &str, name: &str, Down(why): Down) -> UploadError {
    error!("upload {name}: the store did not take {what}: {why}");
    UploadError::Unavailable
}

impl S3Store {
    /// `PUT` of a whole object; `create_only`: `If-None-Match: *` (a name taken
    /// meanwhile is `AlreadyExists`, where the store checks it).
    pub fn put_object(
        &self,
        name: &str,
        body: &[u8],
        create_only: bool,
    ) -> Result<(), UploadError> {
        let key = self.key(name);
        let answer = self.call("PUT", |bucket, left| {
            let url = bucket
                .put_object(Some(&self.credentials), &key)
                .sign(SIGNED_FOR);
            let mut r = Self::timeouts(self.agent.put(url.as_str()), left)
                .header("Content-Type", "application/octet-stream");
            if create_only {
                r = r.header("If-None-Match", "*");
            }
            r.send(body)
        });
        match answer {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(refused("PUT", name, r.status().as_u16())),
            Err(d) => Err(down("PUT", name, d)),
        }
    }

    fn create_multipart(&self, tmp: &str) -> Result<String, UploadError> {
        let key = self.key(tmp);
        let answer = self.call("CreateMultipartUpload", |bucket, left| {
            let url = bucket
                .create_multipart_upload(Some(&self.credentials), &key)
                .sign(SIGNED_FOR);
            Self::timeouts(self.agent.post(url.as_str()), left)
                .header("Content-Type", "application/octet-stream")
                .send_empty()
        });
        match answer {
            Ok(r) if r.status().is_success() => {
                let body = r
                    .into_body()
                    .read_to_string()
                    .map_err(|e| down("CreateMultipartUpload", tmp, Down(e.to_string())))?;
                rusty_s3::actions::CreateMultipartUpload::parse_response(&body)
                    .map(|p| p.upload_id().to_string())
                    .map_err(|e| {
                        error!("upload {tmp}: CreateMultipartUpload answer unreadable: {e}");
                        UploadError::Unavailable
                    })
            }
            Ok(r) => Err(refused("CreateMultipartUpload", tmp, r.status().as_u16())),
            Err(d) => Err(down("CreateMultipartUpload", tmp, d)),
        }
    }

    fn upload_part(
        &self,
        tmp: &str,
        upload_id: &str,
        number: u16,
        body: &[u8],
    ) -> Result<String, UploadError> {
        let key = self.key(tmp);
        let answer = self.call("UploadPart", |bucket, left| {
            let url = bucket
                .upload_part(Some(&self.credentials), &key, number, upload_id)
                .sign(SIGNED_FOR);
            Self::timeouts(self.agent.put(url.as_str()), left).send(body)
        });
        match answer {
            Ok(r) if r.status().is_success() => r
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| {
                    error!("upload {tmp}: part {number} acknowledged without an ETag");
                    UploadError::Unavailable
                }),
            Ok(r) => Err(refused("UploadPart", tmp, r.status().as_u16())),
            Err(d) => Err(down("UploadPart", tmp, d)),
        }
    }

    fn complete_multipart(
        &self,
        tmp: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), UploadError> {
        let key = self.key(tmp);
        let answer = self.call("CompleteMultipartUpload", |bucket, left| {
            let action = bucket.complete_multipart_upload(
                Some(&self.credentials),
                &key,
                upload_id,
                etags.iter().map(String::as_str),
            );
            let url = action.sign(SIGNED_FOR);
            let body = action.body();
            Self::timeouts(self.agent.post(url.as_str()), left).send(body.as_bytes())
        });
        match answer {
            // S3 may answer 200 with an error document in the body.
            Ok(r) if r.status().is_success() => {
                let body = r.into_body().read_to_string().unwrap_or_default();
                if body.contains("<Error>") {
                    error!("upload {tmp}: CompleteMultipartUpload failed: {body}");
                    return Err(UploadError::Unavailable);
                }
                Ok(())
            }
            Ok(r) => Err(refused("CompleteMultipartUpload", tmp, r.status().as_u16())),
            Err(d) => Err(down("CompleteMultipartUpload", tmp, d)),
        }
    }

    fn abort_multipart(&self, tmp: &str, upload_id: &str) -> Result<(), UploadError> {
        let key = self.key(tmp);
        let answer = self.call("AbortMultipartUpload", |bucket, left| {
            let url = bucket
                .abort_multipart_upload(Some(&self.credentials), &key, upload_id)
                .sign(SIGNED_FOR);
            Self::timeouts(self.agent.delete(url.as_str()), left).call()
        });
        match answer {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => Ok(()),
            Ok(r) => Err(refused("AbortMultipartUpload", tmp, r.status().as_u16())),
            Err(d) => Err(down("AbortMultipartUpload", tmp, d)),
        }
    }

    /// Copies `from` to `to` inside the bucket (server-side); `create_only`: not over an
    /// existing `to`.
    fn copy(&self, from: &str, to: &str, create_only: bool) -> Result<(), UploadError> {
        let key = self.key(to);
        let source = format!(
            "/{}/{}",
            self.buckets[0].name(),
            encode_key(&self.key(from))
        );
        let answer = self.call("CopyObject", |bucket, left| {
            let mut action = bucket.put_object(Some(&self.credentials), &key);
            action
                .headers_mut()
                .insert("x-amz-copy-source", source.clone());
            let url = action.sign(SIGNED_FOR);
            let mut r = Self::timeouts(self.agent.put(url.as_str()), left)
                .header("x-amz-copy-source", &source);
            if create_only {
                r = r.header("If-None-Match", "*");
            }
            r.send_empty()
        });
        match answer {
            Ok(r) if r.status().is_success() => {
                let body = r.into_body().read_to_string().unwrap_or_default();
                if body.contains("<Error>") {
                    error!("upload {to}: CopyObject failed: {body}");
                    return Err(UploadError::Unavailable);
                }
                Ok(())
            }
            Ok(r) => Err(refused("CopyObject", to, r.status().as_u16())),
            Err(d) => Err(down("CopyObject", to, d)),
        }
    }

    /// Deletes `name` (gone already is fine).
    pub fn delete(&self, name: &str) -> Result<(), UploadError> {
        let key = self.key(name);
        let answer = self.call("DELETE", |bucket, left| {
            let url = bucket
                .delete_object(Some(&self.credentials), &key)
                .sign(SIGNED_FOR);
            Self::timeouts(self.agent.delete(url.as_str()), left).call()
        });
        match answer {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => Ok(()),
            Ok(r) => Err(refused("DELETE", name, r.status().as_u16())),
            Err(d) => Err(down("DELETE", name, d)),
        }
    }
}

/// A key as `x-amz-copy-source` wants it: percent-encoded but for the unreserved
/// characters and `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(super::encode_key("up/a b+é.txt"), "up/a%20b%2B%C3%A9.txt");
    }
}

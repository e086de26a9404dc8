//! Uploads: the body must be JSON (UTF-8, RFC 8259 §8.1), the name is a fresh UUID, and
//! the 201 goes out only once the runtime says the file is written. A name that exists
//! already is never overwritten: the core draws a new one from new random bytes.

use std::sync::Arc;

use log::error;

use super::body::Held;
use super::{Action, Connection, Request, State, UploadError};
use crate::Refusal;

/// Names tried for one upload before it is a 500.
const NAME_TRIES: u32 = 4;

impl Connection {
    /// A complete `POST /upload` body.
    pub(super) fn upload(&mut self, mut req: Request, body: Vec<u8>, held: Option<Held>) {
        // serde_json does not check the UTF-8 of strings it skips: check it first.
        if std::str::from_utf8(&body).is_err()
            || serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err()
        {
            return self.refuse(&req, Refusal::keep(400, "the body is not valid JSON"));
        }
        req.upload_bytes = body.len() as u64;
        self.write_upload(req, Arc::new(body), 1, held);
    }

    fn write_upload(&mut self, req: Request, body: Arc<Vec<u8>>, tries: u32, held: Option<Held>) {
        let name = self.next_upload_name();
        // The body is shared until the write is confirmed, for a retry under a new name.
        self.out.push_back(Action::WriteUpload {
            name: name.clone(),
            body: Arc::clone(&body),
        });
        self.state = State::AwaitUpload {
            req,
            name,
            body,
            tries,
            held,
        };
    }

    /// What the runtime reports of the last `WriteUpload`.
    pub(super) fn upload_result(&mut self, result: Result<(), UploadError>) {
        let State::AwaitUpload {
            req,
            name,
            body,
            tries,
            held,
        } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        match result {
            Ok(()) => {
                drop(held);
                let location = format!("/uploads/{name}");
                let answer = format!("{{\"status\":\"created\",\"path\":\"{location}\"}}");
                self.respond(&req, 201, answer.as_bytes(), |w| {
                    w.field("Content-Type", "application/json")
                        .field("Location", &location);
                });
            }
            Err(UploadError::AlreadyExists { reseed }) if tries < NAME_TRIES => {
                self.seed = reseed;
                self.write_upload(req, body, tries + 1, held);
            }
            Err(UploadError::NoSpace) => {
                error!("{} upload {name} not written: the disk is full", self.peer);
                self.refuse(&req, Refusal::keep(507, "the disk is full"));
            }
            Err(UploadError::Unavailable) => {
                error!(
                    "{} upload {name} not written: the store is unavailable",
                    self.peer
                );
                let r = Refusal::keep(503, "the upload store is unavailable, try again shortly");
                self.refuse(&req, r);
            }
            Err(e) => {
                error!("{} upload {name} not written: {e:?}", self.peer);
                self.refuse(&req, Refusal::keep(500, "the upload could not be saved"));
            }
        }
    }

    /// A UUID (version 4 layout) from the runtime's random bytes and a counter.
    fn next_upload_name(&mut self) -> String {
        self.uploads += 1;
        let lo = u64::from_le_bytes(self.seed[..8].try_into().unwrap_or([0; 8]));
        let hi = u64::from_le_bytes(self.seed[8..].try_into().unwrap_or([0; 8]));
        let a = splitmix64(lo ^ self.uploads.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = splitmix64(hi ^ a);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        format!("{}.json", id.hyphenated())
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

//! Where uploads are kept (`--upload-store`): the default, a directory below the root
//! (`dir:`, written atomically by [`crate::files::Root::write_upload`]), or an
//! S3-compatible object store (`s3://BUCKET[/PREFIX]`: Garage, MinIO, Ceph, AWS), so that
//! several server instances behind a load balancer see each other's uploads.
//!
//! The S3 side signs requests with `rusty-s3` (sans-IO: it only builds presigned URLs)
//! and sends them with `ureq`, a small blocking client, on the thread that may block
//! (a runtime-std worker, runtime-smol's blocking pool). Settings come from the usual
//! environment: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`. A `PUT` is answered `201` only once the store acknowledged
//! the whole object; a failed or timed-out store is `UploadError::Unavailable` for a
//! write and `FileError::Unavailable` for a read (both `503` with `Retry-After`), never
//! a `500`. Objects are read back streamed (`GET`, with a `Range` for a range request),
//! never held whole in memory.
//!
//! `AWS_ENDPOINT_URL` may name several endpoints of one store, comma-separated (the
//! nodes of a Garage cluster, say): a request goes to the endpoint that answered last,
//! and to the next one in the list when that one cannot be reached or answers `5xx`,
//! all within one [`TIMEOUT`] (each connect within [`CONNECT_TIMEOUT`]). Every request
//! made to the store is safe to repeat: a `PUT` of a new name is idempotent (the same
//! bytes under the same key), `HEAD` and `GET` read.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use log::{error, warn};
use protocol::{FileError, FileMeta, UploadError};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

mod upload;
pub use upload::S3Upload;

/// How long one request to the store may take (connect, send, answer), whichever
/// endpoints it tries.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection to one endpoint may take before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a presigned URL is valid (it is used at once).
const SIGNED_FOR: Duration = Duration::from_secs(60);

/// An S3-compatible bucket (and key prefix) holding the uploads, reached through one
/// or more endpoints of the same store.
pub struct S3Store {
    /// The bucket as each endpoint names it, in the order of `AWS_ENDPOINT_URL`.
    buckets: Vec<Bucket>,
    /// The endpoint tried first: the last one that answered.
    first: AtomicUsize,
    credentials: Credentials,
    prefix: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.buckets[0].name())
            .field("endpoints", &self.buckets.len())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// What `--upload-store` names.
#[derive(Debug)]
pub enum UploadStore {
    /// `uploads/` below the root (the default, or `dir:` naming it).
    Dir,
    /// An S3-compatible bucket.
    S3(Box<S3Store>),
}

impl UploadStore {
    /// Parses `--upload-store` (`None`: the default); `root` is the canonical web root.
    pub fn from_flag(flag: Option<&str>, root: &std::path::Path) -> Result<UploadStore, String> {
        let Some(flag) = flag else {
            return Ok(UploadStore::Dir);
        };
        if let Some(path) = flag.strip_prefix("dir:") {
            let wanted = root.join(crate::files::UPLOADS);
            let given = std::path::Path::new(path);
            let given = if given.is_absolute() {
                given.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| format!("--upload-store {flag}: {e}"))?
                    .join(given)
            };
            let same = given.canonicalize().ok() == wanted.canonicalize().ok() || given == wanted;
            return if same {
                Ok(UploadStore::Dir)
            } else {
                Err(format!(
                    "--upload-store {flag}: only the root's uploads/ ({}) can be a dir: store",
                    wanted.display()
                ))
            };
        }
        if let Some(rest) = flag.strip_prefix("s3://") {
            return S3Store::from_env(rest).map(|s| UploadStore::S3(Box::new(s)));
        }
        Err(format!(
            "--upload-store {flag}: expected dir:PATH or s3://BUCKET[/PREFIX]"
        ))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Why the store gave no usable answer: it could not be reached, timed out or answered
/// `5xx` at every endpoint tried.
struct Down(String);

impl S3Store {
    /// `BUCKET[/PREFIX]` with the endpoints, region and credentials from the environment.
    pub fn from_env(bucket_and_prefix: &str) -> Result<S3Store, String> {
        let (name, prefix) = match bucket_and_prefix.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (bucket_and_prefix, ""),
        };
        if name.is_empty() {
            return Err("--upload-store s3://: no bucket named".into());
        }
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoints =
            env("AWS_ENDPOINT_URL").unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "--upload-store s3://: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            );
        };
        // Path style works with every S3-compatible store (Garage, MinIO) and AWS.
        let buckets = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|endpoint| {
                let url = endpoint
                    .parse()
                    .map_err(|e| format!("AWS_ENDPOINT_URL {endpoint:?}: {e}"))?;
                Bucket::new(url, UrlStyle::Path, name.to_string(), region.clone())
                    .map_err(|e| format!("--upload-store s3://{name} at {endpoint}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if buckets.is_empty() {
            return Err(format!("AWS_ENDPOINT_URL {endpoints:?}: no endpoint"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(S3Store {
            buckets,
            first: AtomicUsize::new(0),
            credentials: Credentials::new(key, secret),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            agent,
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Sends one request (`send` builds it for an endpoint's bucket and sends it with
    /// the agent's configuration narrowed to the time left) to the endpoint that
    /// answered last, then to the next ones in order while the store cannot be reached
    /// or answers `5xx`, all within [`TIMEOUT`]. The first answer below `500` is the
    /// store's answer.
    fn call(
        &self,
        what: &str,
        send: impl Fn(&Bucket, Duration) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, Down> {
        let n = self.buckets.len();
        let until = Instant::now() + TIMEOUT;
        let first = self.first.load(Ordering::Relaxed) % n;
        let mut why = String::new();
        for i in 0..n {
            let at = (first + i) % n;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let bucket = &self.buckets[at];
            why = match send(bucket, left) {
                Ok(r) if r.status().as_u16() < 500 => {
                    if at != first {
                        self.first.store(at, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                Ok(r) => format!("{} answered {} to {what}", bucket.base_url(), r.status()),
                Err(e) => format!("{} failed {what}: {e}", bucket.base_url()),
            };
            if n > 1 {
                warn!("the store at {why}; trying the next endpoint");
                // The next request starts at the next endpoint, unless another request
                // moved on already.
                let _ = self.first.compare_exchange(
                    at,
                    (at + 1) % n,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        Err(Down(why))
    }

    /// The per-request configuration: at most `left` in all, each connect within
    /// [`CONNECT_TIMEOUT`].
    fn timeouts<A>(r: ureq::RequestBuilder<A>, left: Duration) -> ureq::RequestBuilder<A> {
        r.config()
            .timeout_global(Some(left))
            .timeout_connect(Some(CONNECT_TIMEOUT.min(left)))
            .build()
    }

    /// Stores `name` (blocks: call where that is allowed). `Ok` once the store has
    /// acknowledged the whole object.
    pub fn put(&self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        let key = self.key(name);
        let answer = self.call("PUT", |bucket, left| {
            let url = bucket
                .put_object(Some(&self.credentials), &key)
                .sign(SIGNED_FOR);
            Self::timeouts(self.agent.put(url.as_str()), left)
                .header("Content-Type", "application/json")
                .send(body)
        });
        match answer {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                error!("upload {name}: the store answered {} to PUT", r.status());
                Err(UploadError::Unavailable)
            }
            Err(Down(why)) => {
                error!("upload {name}: the store did not take it: {why}");
                Err(UploadError::Unavailable)
            }
        }
    }

    /// What the store holds under `name`: its length and modification time.
    pub fn head(&self, name: &str) -> Result<FileMeta, FileError> {
        let key = self.key(name);
        let answer = self.call("HEAD", |bucket, left| {
            let url = bucket
                .head_object(Some(&self.credentials), &key)
                .sign(SIGNED_FOR);
            Self::timeouts(self.agent.head(url.as_str()), left).call()
        });
        match answer {
            Ok(r) if r.status().is_success() => {
                let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok());
                let len = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mtime = header("last-modified")
                    .and_then(|v| httpdate::parse_http_date(v).ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .unwrap_or_default();
                Ok(FileMeta {
                    len,
                    mtime_secs: mtime.as_secs(),
                    mtime_nanos: 0,
                    is_dir: false,
                })
            }
            Ok(r) if r.status().as_u16() == 404 => Err(FileError::NotFound),
            // A refusal below 500 (credentials, a bucket that is not there): the
            // server's own configuration is wrong, not the store down.
            Ok(r) => {
                error!("upload {name}: the store answered {} to HEAD", r.status());
                Err(FileError::Other)
            }
            Err(Down(why)) => {
                error!("upload {name}: the store is unavailable: {why}");
                Err(FileError::Unavailable)
            }
        }
    }

    /// A reader of `len` bytes of `name` from `offset`, streamed from the store.
    pub fn get(&self, name: &str, offset: u64, len: u64) -> std::io::Result<Box<dyn Read + Send>> {
        let key = self.key(name);
        let end = offset.saturating_add(len).saturating_sub(1);
        let range = format!("bytes={offset}-{end}");
        let r = self
            .call("GET", |bucket, left| {
                let url = bucket
                    .get_object(Some(&self.credentials), &key)
                    .sign(SIGNED_FOR);
                Self::timeouts(self.agent.get(url.as_str()), left)
                    .header("Range", &range)
                    .call()
            })
            .map_err(|Down(why)| std::io::Error::other(why))?;
        if !r.status().is_success() {
            return Err(std::io::Error::other(format!(
                "the store answered {} to GET",
                r.status()
            )));
        }
        Ok(Box::new(r.into_body().into_reader().take(len)))
    }
}

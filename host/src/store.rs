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
//! the whole object; a failed or timed-out store is `UploadError::Unavailable` (`503`
//! with `Retry-After`). Objects are read back streamed (`GET`, with a `Range` for a
//! range request), never held whole in memory.

use std::io::Read;
use std::time::{Duration, UNIX_EPOCH};

use log::error;
use protocol::{FileError, FileMeta, UploadError};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// How long one request to the store may take (connect, send, answer).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a presigned URL is valid (it is used at once).
const SIGNED_FOR: Duration = Duration::from_secs(60);

/// An S3-compatible bucket (and key prefix) holding the uploads.
pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket.name())
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

impl S3Store {
    /// `BUCKET[/PREFIX]` with the endpoint, region and credentials from the environment.
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
        let endpoint =
            env("AWS_ENDPOINT_URL").unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("AWS_ENDPOINT_URL {endpoint:?}: {e}"))?;
        let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "--upload-store s3://: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            );
        };
        // Path style works with every S3-compatible store (Garage, MinIO) and AWS.
        let bucket = Bucket::new(endpoint, UrlStyle::Path, name.to_string(), region)
            .map_err(|e| format!("--upload-store s3://{name}: {e}"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(S3Store {
            bucket,
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

    /// Stores `name` (blocks: call where that is allowed). `Ok` once the store has
    /// acknowledged the whole object.
    pub fn put(&self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        let key = self.key(name);
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &key)
            .sign(SIGNED_FOR);
        match self
            .agent
            .put(url.as_str())
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                error!("upload {name}: the store answered {} to PUT", r.status());
                Err(UploadError::Unavailable)
            }
            Err(e) => {
                error!("upload {name}: the store did not take it: {e}");
                Err(UploadError::Unavailable)
            }
        }
    }

    /// What the store holds under `name`: its length and modification time.
    pub fn head(&self, name: &str) -> Result<FileMeta, FileError> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), &self.key(name))
            .sign(SIGNED_FOR);
        match self.agent.head(url.as_str()).call() {
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
            Ok(r) => {
                error!("upload {name}: the store answered {} to HEAD", r.status());
                Err(FileError::Other)
            }
            Err(e) => {
                error!("upload {name}: the store is unreachable: {e}");
                Err(FileError::Other)
            }
        }
    }

    /// A reader of `len` bytes of `name` from `offset`, streamed from the store.
    pub fn get(&self, name: &str, offset: u64, len: u64) -> std::io::Result<Box<dyn Read + Send>> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &self.key(name))
            .sign(SIGNED_FOR);
        let end = offset.saturating_add(len).saturating_sub(1);
        let r = self
            .agent
            .get(url.as_str())
            .header("Range", &format!("bytes={offset}-{end}"))
            .call()
            .map_err(std::io::Error::other)?;
        if !r.status().is_success() {
            return Err(std::io::Error::other(format!(
                "the store answered {} to GET",
                r.status()
            )));
        }
        Ok(Box::new(r.into_body().into_reader().take(len)))
    }
}

//! Uploads in an S3-compatible object store (`--upload-store s3://`, SPEC "Uploads of
//! any file"): read back (whole, a range, HEAD, a missing object), 200 concurrent
//! uploads, an outage of the store (503 for writes and reads, then service again,
//! nothing partial), two processes on one port (`--reuse-port`) reading each other's
//! uploads. Each of those tests starts its own single-node Garage (the `garage` binary;
//! `.ci/run` installs it), with a bucket and a key, on free loopback ports, and stops it
//! by PID.
//!
//! Then the store as a cluster and the server as a fleet:
//!
//! - [`cluster`]: a three-node Garage cluster on loopback (`replication_factor = 3`), a
//!   node SIGKILLed and restarted as an operator must; [`cluster_tests`]: hundreds of
//!   uploads while a node dies and returns, two nodes down, the server's endpoint node
//!   down (one endpoint against the list of all three).
//! - [`balancer`]: nginx in front of three instances sharing the cluster, with
//!   `contrib/nginx-balancer.conf`; [`balancer_tests`]: an instance SIGKILLed and
//!   others restarted by SIGTERM under a mixed load, a rolling restart that loses
//!   nothing.
//! - [`load`]: the bounded, never-panicking client of those tests.
//!
//! Where a test goes: here if it needs the store.

pub mod balancer;
pub mod balancer_tests;
pub mod cluster;
pub mod cluster_tests;
pub mod load;
pub mod streamed;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Fixture, Server};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __object_store_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] object_store;
            spec: [];
            more: [
                an_upload_is_read_back_from_the_store,
                two_hundred_concurrent_uploads_are_all_there,
                a_store_outage_is_503_and_service_resumes,
                a_read_during_a_store_outage_is_503_never_500,
                two_processes_on_one_port_read_each_others_uploads,
                a_large_put_streams_into_the_store_as_a_multipart_upload,
                form_files_go_to_the_store_under_numbered_names,
                an_upload_cut_short_leaves_nothing_in_the_store,
                cluster_500_uploads_while_a_node_is_killed_and_restarted,
                cluster_two_nodes_down_refuses_uploads_and_loses_nothing,
                cluster_the_endpoint_node_killed_one_endpoint_or_all_three,
                balancer_instances_killed_and_restarted_under_load,
                balancer_rolling_restart_taken_out_then_sigterm_loses_nothing,
            ];
        }
    };
}
pub use crate::__object_store_list as list;

pub use balancer_tests::{
    balancer_instances_killed_and_restarted_under_load,
    balancer_rolling_restart_taken_out_then_sigterm_loses_nothing,
};
pub use cluster_tests::{
    cluster_500_uploads_while_a_node_is_killed_and_restarted,
    cluster_the_endpoint_node_killed_one_endpoint_or_all_three,
    cluster_two_nodes_down_refuses_uploads_and_loses_nothing,
};
pub use streamed::{
    a_large_put_streams_into_the_store_as_a_multipart_upload,
    an_upload_cut_short_leaves_nothing_in_the_store,
    form_files_go_to_the_store_under_numbered_names,
};

/// Panics unless `garage` runs: the store tests never skip themselves.
fn require_garage() {
    assert!(
        crate::have("garage"),
        "`garage` is not installed: bash .ci/run installs it \
         (cargo install garage --version 2.5.0 --locked --no-default-features \
         --features bundled-libs,sqlite)"
    );
}

/// A single-node Garage with a bucket `uploads` and a key allowed on it.
pub struct Garage {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub s3_port: u16,
    pub key_id: String,
    pub secret: String,
}

/// A port of 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Garage {
    /// Starts Garage and makes the bucket and the key (a few seconds).
    pub fn start() -> Garage {
        require_garage();
        let dir = tempfile::tempdir().expect("tempdir");
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6\"\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("garage.toml"), config).expect("config");
        let mut g = Garage {
            dir,
            child: None,
            s3_port: s3,
            key_id: String::new(),
            secret: String::new(),
        };
        g.run_server();
        let id = g.cli(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap_or_default().to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", "uploads"]);
        let key = g.cli(&["key", "create", "test-key"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {name} in:\n{key}"))
        };
        g.key_id = field("Key ID:");
        g.secret = field("Secret key:");
        g.cli(&[
            "bucket", "allow", "--read", "--write", "uploads", "--key", "test-key",
        ]);
        g
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    /// Starts (or restarts) the daemon and waits until it answers.
    pub fn run_server(&mut self) {
        let child = Command::new("garage")
            .arg("-c")
            .arg(self.config())
            .arg("server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start garage (installed by .ci/run: cargo install garage)");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new("garage")
                .arg("-c")
                .arg(self.config())
                .arg("status")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok && std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok() {
                return;
            }
            assert!(Instant::now() < until, "garage did not start");
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon (SIGKILL by PID): the store is gone until `run_server`.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("garage")
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .expect("garage cli");
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A server on `bin` with its uploads in this store (extra arguments after).
    pub fn server(&self, bin: &str, args: &[&str]) -> Server {
        let mut all = vec!["--upload-store", "s3://uploads/test"];
        all.extend_from_slice(args);
        Server::builder(bin)
            .fixture(Fixture::new())
            .args(&all)
            .env(
                "AWS_ENDPOINT_URL",
                &format!("http://127.0.0.1:{}", self.s3_port),
            )
            .env("AWS_REGION", "garage")
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .start()
    }

    /// Waits (up to 10 s: the store's counters are updated in the background) until
    /// the bucket holds `n` objects; panics with the count it holds otherwise.
    pub fn expect_objects(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.object_count();
            if count == n {
                return;
            }
            assert!(
                Instant::now() < until,
                "the bucket holds {count} objects, not {n}"
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// How many objects the bucket holds, as `garage bucket info` says.
    pub fn object_count(&self) -> usize {
        let info = self.cli(&["bucket", "info", "uploads"]);
        info.lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix("Objects:")
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or_else(|| panic!("no object count in:\n{info}"))
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// POSTs `body` as an upload; the status and, for a 201, the path.
fn upload(s: &Server, body: &str) -> (u16, Option<String>) {
    let r = s.upload("application/json", body);
    let path =
        (r.status == 201).then(|| r.header("location").expect("Location on a 201").to_string());
    (r.status, path)
}

pub fn an_upload_is_read_back_from_the_store(bin: &str) {
    let g = Garage::start();
    let s = g.server(bin, &[]);
    let body = r#"{"hello":"object store","n":[1,2,3],"é":true}"#;
    let (status, path) = upload(&s, body);
    assert_eq!(status, 201);
    let path = path.expect("path");
    let r = s.get(&path);
    r.expect_status(200)
        .expect_header("content-type", "application/json");
    assert_eq!(r.body, body.as_bytes());
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    assert_eq!(
        r.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    // Nothing was written below the root.
    assert!(s.fx.uploads().is_empty(), "{:?}", s.fx.uploads());
    // A range, streamed from the store.
    let mut c = s.connect();
    let r = c.request(&format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nRange: bytes=2-6\r\n\r\n",
        s.host()
    ));
    r.expect_status(206);
    assert_eq!(r.body, b"hello");
    // HEAD and a missing object.
    let r = c.request(&format!(
        "HEAD {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
        s.host()
    ));
    r.expect_status(200);
    s.get("/uploads/00000000-0000-4000-8000-000000000000.json")
        .expect_status(404);
    g.expect_objects(1);
}

pub fn two_hundred_concurrent_uploads_are_all_there(bin: &str) {
    const N: usize = 200;
    let g = Garage::start();
    let s = g.server(bin, &["--threads", "8", "--queue", "256"]);
    let results: Vec<(String, u16, Option<String>)> = thread::scope(|scope| {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    (0..N / 8)
                        .map(|i| {
                            let body = format!("{{\"thread\":{t},\"i\":{i}}}");
                            let (status, path) = upload(s, &body);
                            (body, status, path)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("uploader"))
            .collect()
    });
    assert_eq!(results.len(), N);
    for (body, status, path) in &results {
        assert_eq!(*status, 201, "{body}");
        let r = s.get(path.as_deref().expect("path"));
        r.expect_status(200);
        assert_eq!(r.body, body.as_bytes());
    }
    g.expect_objects(N);
}

pub fn a_store_outage_is_503_and_service_resumes(bin: &str) {
    let mut g = Garage::start();
    let s = g.server(bin, &[]);
    let mut saved = Vec::new();
    for i in 0..10 {
        let body = format!("{{\"before\":{i}}}");
        let (status, path) = upload(&s, &body);
        assert_eq!(status, 201);
        saved.push((body, path.expect("path")));
    }
    g.stop();
    let t = Instant::now();
    for i in 0..5 {
        let r = s.upload("application/json", &format!("{{\"during\":{i}}}"));
        r.expect_status(503);
        assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "503s took {:?}",
        t.elapsed()
    );
    assert!(
        s.wait_log(&["ERROR", "store"], Duration::from_secs(3))
            .is_some(),
        "the outage is logged at error:\n{}",
        s.logs()
    );
    // Serving files goes on meanwhile.
    s.get("/sample.txt").expect_status(200);
    g.run_server();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let body = "{\"after\":true}";
        let (status, path) = upload(&s, body);
        if status == 201 {
            saved.push((body.to_string(), path.expect("path")));
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < until,
            "no service after the store came back"
        );
        thread::sleep(Duration::from_millis(300));
    }
    // No partial object: the store holds exactly the uploads that got 201, each whole.
    for (body, path) in &saved {
        let r = s.get(path);
        r.expect_status(200);
        assert_eq!(r.body, body.as_bytes());
    }
    g.expect_objects(saved.len());
}

/// The store's node stopped: a read of an acknowledged upload is a `503` with
/// `Retry-After` (GET, HEAD, a range, on a keep-alive connection), as a write is, never a
/// `500` and never a hang; once the store is back, the upload is served whole.
pub fn a_read_during_a_store_outage_is_503_never_500(bin: &str) {
    let mut g = Garage::start();
    let s = g.server(bin, &[]);
    let body = r#"{"kept":"before the outage"}"#;
    let (status, path) = upload(&s, body);
    assert_eq!(status, 201);
    let path = path.expect("path");
    s.get(&path).expect_status(200);
    g.stop();
    let t = Instant::now();
    let host = s.host();
    let mut c = s.connect();
    for request in [
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes=0-3\r\n\r\n"),
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip, br\r\n\r\n"),
    ] {
        let r = c.request(&request);
        assert_eq!(r.status, 503, "{request:?} during the outage: {r:?}");
        assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
        assert!(!r.closes(), "the connection goes on after a 503: {r:?}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the 503s took {:?}",
        t.elapsed()
    );
    assert!(
        s.wait_log(&["ERROR", "store"], Duration::from_secs(3))
            .is_some(),
        "the outage is logged at error:\n{}",
        s.logs()
    );
    assert!(
        !s.logs().contains("\" 500 "),
        "a 500 was answered:\n{}",
        s.logs()
    );
    // Files of the root are served meanwhile.
    s.get("/sample.txt").expect_status(200);
    g.run_server();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.get(&path);
        if r.status == 200 {
            assert_eq!(r.body, body.as_bytes());
            break;
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(
            Instant::now() < until,
            "not served after the store came back"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

pub fn two_processes_on_one_port_read_each_others_uploads(bin: &str) {
    let g = Garage::start();
    let a = g.server(bin, &["--reuse-port"]);
    let port = a.port.to_string();
    let fx_b = Fixture::new();
    let root_b = fx_b.root.display().to_string();
    let b = Server::builder(bin)
        .fixture(fx_b)
        .without_port_and_root()
        .args(&[
            "--port",
            &port,
            "--root",
            &root_b,
            "--reuse-port",
            "--upload-store",
            "s3://uploads/test",
        ])
        .env(
            "AWS_ENDPOINT_URL",
            &format!("http://127.0.0.1:{}", g.s3_port),
        )
        .env("AWS_REGION", "garage")
        .env("AWS_ACCESS_KEY_ID", &g.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &g.secret)
        .start();
    assert_eq!(a.port, b.port, "both on one port");
    // Uploads go to either process (the kernel spreads connections); each process then
    // reads every upload, whichever process took it.
    let mut paths = Vec::new();
    for i in 0..20 {
        let (status, path) = upload(&a, &format!("{{\"i\":{i}}}"));
        assert_eq!(status, 201);
        paths.push((i, path.expect("path")));
    }
    let (a_log, b_log) = (a.logs(), b.logs());
    let took = |log: &str| log.matches("\"POST /upload\" 201").count();
    assert!(
        took(&a_log) > 0 && took(&b_log) > 0,
        "connections not spread: a took {}, b took {}",
        took(&a_log),
        took(&b_log)
    );
    // Every upload read back through fresh connections (spread over both processes
    // again), and both processes answered some of those reads.
    for (i, path) in &paths {
        for _ in 0..4 {
            let r = a.get(path);
            r.expect_status(200);
            assert_eq!(r.body, format!("{{\"i\":{i}}}").as_bytes());
        }
    }
    let reads = |log: &str| log.matches("\"GET /uploads/").count();
    assert!(
        reads(&a.logs()) > 0 && reads(&b.logs()) > 0,
        "reads not spread over both processes"
    );
    g.expect_objects(paths.len());
}

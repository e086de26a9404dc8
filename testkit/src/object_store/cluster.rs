//! A three-node Garage cluster on loopback: three `garage server` processes, each with
//! its own configuration, data and metadata directories and ports (RPC, S3, admin), one
//! layout with `replication_factor = 3` (one zone per node), a bucket `uploads` and a
//! key allowed on it. It starts in about two seconds; every process is stopped by PID
//! when the [`Cluster`] is dropped.
//!
//! A node can be SIGKILLed ([`Cluster::kill`]) and restarted ([`Cluster::restart`]) as
//! an operator must: start it on its old directories, connect it to the others both
//! ways (`garage node connect`; nodes do not find a restarted peer again by themselves
//! for a long while), then `garage repair -a --yes tables`, so that it gets what it
//! missed. With three replicas, writes and reads need two nodes (a quorum): one node
//! down is served, two down is refused (`503` from the store).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, require_garage};
use crate::{Fixture, Server, ServerBuilder};

/// The RPC secret every node shares (a test value).
const RPC_SECRET: &str = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6";
/// How long a node may take to answer `garage status` and open its S3 port.
const NODE_START: Duration = Duration::from_secs(30);
/// How long the nodes may take to see each other after `garage node connect`.
const MESH: Duration = Duration::from_secs(20);

/// One node: its configuration, ports and process.
struct Node {
    config: PathBuf,
    s3_port: u16,
    /// `HEXID@127.0.0.1:RPC`, what `garage node connect` takes.
    address: String,
    child: Option<Child>,
}

/// Three Garage nodes with `replication_factor = 3`, a bucket `uploads` and a key.
pub struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    pub key_id: String,
    pub secret: String,
}

impl Cluster {
    /// Starts three nodes, connects them, applies the layout and makes the bucket and
    /// the key (about two seconds). Panics if `garage` is not installed (`.ci/run`
    /// installs it).
    pub fn start() -> Cluster {
        require_garage();
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = (0..3)
            .map(|i| {
                let base = dir.path().join(format!("node{i}"));
                std::fs::create_dir_all(&base).expect("node directory");
                let (rpc, s3, admin) = (free_port(), free_port(), free_port());
                let config = format!(
                    "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                     replication_factor = 3\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{RPC_SECRET}\"\n\
                     [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\
                     [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    d = base.display()
                );
                let path = base.join("garage.toml");
                std::fs::write(&path, config).expect("garage.toml");
                Node {
                    config: path,
                    s3_port: s3,
                    address: String::new(),
                    child: None,
                }
            })
            .collect();
        let mut c = Cluster {
            dir,
            nodes,
            key_id: String::new(),
            secret: String::new(),
        };
        for i in 0..3 {
            c.spawn(i);
        }
        for i in 0..3 {
            c.wait_started(i);
            let id = c.cli(i, &["node", "id", "-q"]);
            c.nodes[i].address = id.trim().to_string();
        }
        for (from, to) in [(0, 1), (0, 2), (1, 2)] {
            let to = c.nodes[to].address.clone();
            c.cli(from, &["node", "connect", &to]);
        }
        for i in 0..3 {
            let id = c.nodes[i].address.split('@').next().unwrap_or_default();
            let zone = format!("dc{}", i + 1);
            c.cli(0, &["layout", "assign", "-z", &zone, "-c", "1G", id]);
        }
        c.cli(0, &["layout", "apply", "--version", "1"]);
        c.cli(0, &["bucket", "create", "uploads"]);
        let key = c.cli(0, &["key", "create", "test-key"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {name} in:\n{key}"))
        };
        c.key_id = field("Key ID:");
        c.secret = field("Secret key:");
        c.cli(
            0,
            &[
                "bucket", "allow", "--read", "--write", "uploads", "--key", "test-key",
            ],
        );
        c.wait_whole();
        c
    }

    /// `http://127.0.0.1:PORT` of node `i`'s S3 API.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// The S3 endpoints of `nodes`, comma-separated (`AWS_ENDPOINT_URL`).
    pub fn endpoints(&self, nodes: &[usize]) -> String {
        let urls: Vec<String> = nodes.iter().map(|&i| self.endpoint(i)).collect();
        urls.join(",")
    }

    /// Whether node `i` runs.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The PID of node `i`'s process, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// SIGKILLs node `i` (by PID) and reaps it: its directories stay.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on its directories and does what an operator must after an
    /// outage: connects it to every running node both ways, then `garage repair -a
    /// --yes tables` (a full sync of the metadata tables, so the node holds what it
    /// missed; it runs in the background). Returns once every running node sees every
    /// other running node.
    pub fn restart(&mut self, i: usize) {
        assert!(!self.is_up(i), "node {i} is running");
        self.spawn(i);
        self.wait_started(i);
        for j in self.running().filter(|&j| j != i) {
            let (to_j, to_i) = (self.nodes[j].address.clone(), self.nodes[i].address.clone());
            self.cli(i, &["node", "connect", &to_j]);
            self.cli(j, &["node", "connect", &to_i]);
        }
        self.wait_whole();
        self.cli(i, &["repair", "-a", "--yes", "tables"]);
    }

    /// A server on `bin` whose uploads go to this cluster through the endpoints of
    /// `nodes` (in that order), on a fresh fixture (extra arguments after).
    pub fn server(&self, bin: &str, nodes: &[usize], args: &[&str]) -> Server {
        self.builder(bin, nodes, Fixture::new()).args(args).start()
    }

    /// The builder of such a server: `--upload-store s3://uploads/test` and the
    /// store's environment, on `fx`.
    pub fn builder(&self, bin: &str, nodes: &[usize], fx: Fixture) -> ServerBuilder {
        Server::builder(bin)
            .fixture(fx)
            .args(&["--upload-store", "s3://uploads/test"])
            .env("AWS_ENDPOINT_URL", &self.endpoints(nodes))
            .env("AWS_REGION", "garage")
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
    }

    /// The keys and sizes the bucket lists under `prefix`, through the S3 API of a
    /// running node (`curl --aws-sigv4`, ListObjectsV2, every page). Panics if no node
    /// answers.
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _page in 0..100 {
            // The parameters in sorted order, encoded: curl 7.88 signs the query as
            // given, and SigV4 wants it canonical.
            let token = match &next {
                Some(t) => format!("continuation-token={}&", percent_encode(t)),
                None => String::new(),
            };
            let url = format!(
                "{}/uploads?{token}list-type=2&max-keys=1000&prefix={}",
                self.endpoint(self.running().next().expect("a running node")),
                percent_encode(prefix)
            );
            let xml = String::from_utf8_lossy(&self.s3_get(&url)).into_owned();
            for item in xml.split("<Contents>").skip(1) {
                let key = between(item, "<Key>", "</Key>").expect("<Key>");
                let size = between(item, "<Size>", "</Size>")
                    .and_then(|s| s.parse().ok())
                    .expect("<Size>");
                out.push((key.to_string(), size));
            }
            next = between(&xml, "<NextContinuationToken>", "</NextContinuationToken>")
                .map(str::to_string);
            if !xml.contains("<IsTruncated>true</IsTruncated>") || next.is_none() {
                return out;
            }
        }
        panic!("more than 100 pages of objects under {prefix}");
    }

    /// An object's bytes through the S3 API of a running node.
    pub fn object(&self, key: &str) -> Vec<u8> {
        let node = self.running().next().expect("a running node");
        self.s3_get(&format!("{}/uploads/{key}", self.endpoint(node)))
    }

    /// A signed GET of `url` (curl, SigV4 with this cluster's key); panics unless 200.
    fn s3_get(&self, url: &str) -> Vec<u8> {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "20"])
            .args(["--aws-sigv4", "aws:amz:garage:s3"])
            .args(["--user", &format!("{}:{}", self.key_id, self.secret)])
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .arg(url)
            .output()
            .expect("curl (installed by .ci/run)");
        assert!(
            out.status.success(),
            "GET {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.is_up(i))
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.config.with_file_name("garage.log"))
            .expect("garage.log");
        let child = Command::new("garage")
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage (installed by .ci/run)");
        node.child = Some(child);
    }

    /// Waits until node `i` answers `garage status` and its S3 port takes connections.
    fn wait_started(&self, i: usize) {
        let until = Instant::now() + NODE_START;
        loop {
            let ok = garage(&self.nodes[i].config, &["status"]).is_ok();
            if ok && std::net::TcpStream::connect(("127.0.0.1", self.nodes[i].s3_port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < until,
                "garage node {i} did not start:\n{}",
                self.log(i)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node lists every other running node as healthy.
    fn wait_whole(&self) {
        let until = Instant::now() + MESH;
        let want = self.running().count();
        loop {
            let seen: Vec<usize> = self
                .running()
                .map(|i| garage(&self.nodes[i].config, &["status"]).map_or(0, |s| healthy(&s)))
                .collect();
            if seen.iter().all(|&n| n >= want) {
                return;
            }
            assert!(
                Instant::now() < until,
                "the nodes do not see each other: {seen:?} healthy of {want}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `garage ARGS` against node `i`; its stdout, or a panic with its stderr.
    fn cli(&self, i: usize, args: &[&str]) -> String {
        garage(&self.nodes[i].config, args).unwrap_or_else(|e| panic!("garage {args:?}: {e}"))
    }

    /// What node `i` logged (warnings and errors).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].config.with_file_name("garage.log"))
            .unwrap_or_default()
    }

    /// Where the nodes keep their files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Runs `garage -c CONFIG ARGS` (bounded: the CLI gives up on an unreachable node);
/// stdout, or stderr as the error.
fn garage(config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("garage")
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run garage (installed by .ci/run): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// How many nodes `garage status` lists as healthy (the rows of its first table).
fn healthy(status: &str) -> usize {
    let Some(rest) = status.split("==== HEALTHY NODES ====").nth(1) else {
        return 0;
    };
    let table = rest.split("====").next().unwrap_or_default();
    table
        .lines()
        .skip(1) // the column titles
        .filter(|l| l.contains("127.0.0.1:"))
        .count()
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! Instances behind a real load balancer: nginx (`/usr/sbin/nginx`, a process of the
//! test with its own configuration and prefix in a temporary directory, in the
//! foreground, one process, stopped by PID) in front of three instances of the server
//! sharing a three-node Garage cluster as their upload store. nginx runs
//! `contrib/nginx-balancer.conf` itself, with free ports put in.
//!
//! The instances share one port, each on its own loopback address (127.0.0.1, .2, .3):
//! an instance accepts only a `Host` with its own port, and nginx sends one `Host` for
//! the whole upstream, so instances behind one upstream share their port, as hosts of a
//! real fleet do (see the configuration's notes). The clients of the tests talk to
//! nginx on 127.0.0.1 only; nginx talks to the instances on the loopback interface.
//!
//! The tests are in [`super::balancer_tests`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::free_port;
use super::load;
use crate::{Fixture, Server};

/// The balancer's configuration, as shipped.
const CONTRIB: &str = include_str!("../../../contrib/nginx-balancer.conf");
/// Where nginx is (Debian's `nginx-light`).
const NGINX: &str = "/usr/sbin/nginx";

/// nginx with `contrib/nginx-balancer.conf`, on a free port of 127.0.0.1: a master
/// process (the child of the test) and one worker.
pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    instance_port: u16,
}

impl Nginx {
    /// Starts nginx in front of instances listening on `instance_port` of 127.0.0.1,
    /// 127.0.0.2 and 127.0.0.3 (the configuration's 8080), and waits until it takes
    /// connections. Panics if nginx is not installed (`.ci/run` installs it).
    pub fn start(instance_port: u16) -> Nginx {
        assert!(
            std::path::Path::new(NGINX).exists(),
            "{NGINX} is not installed: bash .ci/run installs it (apt-get install nginx-light)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        // The test's own frame around the shipped file: foreground, a master and one
        // worker, every file in `dir`, and an access log that says which instances each
        // request went to.
        let main = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\n\
             error_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 log_format balancer '$request_method $uri $status up=$upstream_addr \
             ups=$upstream_status t=$request_time';\n\
             \x20 access_log {d}/access.log balancer;\n  include {d}/balancer.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).expect("nginx.conf");
        let mut n = Nginx {
            child: None,
            dir,
            port,
            instance_port,
        };
        n.write_config(None);
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(n.dir.path())
            .arg("-e")
            .arg(n.dir.path().join("error.log"))
            .arg("-c")
            .arg(n.dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {NGINX}: {e}"));
        n.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < until,
                "nginx did not start ({exited:?}):\n{}",
                n.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        n
    }

    /// Writes `balancer.conf`: the shipped file with the ports put in, and instance
    /// `down` (0, 1, 2) marked `down` (taken out of the upstream).
    fn write_config(&self, down: Option<usize>) {
        let mut conf = CONTRIB
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{}", self.port))
            .replace(":8080", &format!(":{}", self.instance_port));
        if let Some(i) = down {
            let server = format!("server {}:{} ", instance_ip(i), self.instance_port);
            assert!(conf.contains(&server), "no {server:?} in the configuration");
            conf = conf.replace(&server, &format!("{server}down "));
        }
        std::fs::write(self.dir.path().join("balancer.conf"), conf).expect("balancer.conf");
    }

    /// Takes instance `down` out of the upstream (or puts every instance back, `None`)
    /// as an operator does: rewrites the configuration and reloads nginx (SIGHUP to the
    /// master); returns once the old worker has finished its requests and exited, so
    /// nothing is on its way to an instance taken out.
    pub fn reload_with(&self, down: Option<usize>) {
        self.write_config(down);
        let master = self.pid().expect("nginx runs");
        let old = children(master);
        signal(master, rustix::process::Signal::HUP);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let now = children(master);
            if !now.is_empty() && now.iter().all(|p| !old.contains(p)) {
                return;
            }
            assert!(
                Instant::now() < until,
                "nginx did not reload (workers {old:?}, then {now:?}):\n{}",
                self.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// nginx's error log (warnings and errors).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The access log: `METHOD URI STATUS up=ADDRESSES ups=STATUSES t=SECONDS` a line.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master (it stops its workers), at most 5 s, then SIGKILL to the
    /// master and to the workers it had, each by PID.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let workers = children(c.id());
            signal(c.id(), rustix::process::Signal::TERM);
            let until = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            for w in workers {
                if is_nginx(w) {
                    signal(w, rustix::process::Signal::KILL);
                }
            }
        }
        if thread::panicking() {
            let log = self.error_log();
            let (nolive, rest): (Vec<&str>, Vec<&str>) =
                log.lines().partition(|l| l.contains("no live upstreams"));
            eprintln!(
                "---- nginx error log ({} lines of \"no live upstreams\" left out) ----\n{}",
                nolive.len(),
                tail(&rest.join("\n"))
            );
        }
    }
}

/// The PIDs whose parent is `pid` (from `/proc/*/stat`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    // pid (comm) state ppid …: the comm may hold spaces.
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn is_nginx(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "nginx")
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn tail(log: &str) -> String {
    crate::util::tail(log)
}

/// Three instances of the server on 127.0.0.1, .2 and .3, one port, one cluster.
pub struct Fleet<'c> {
    cluster: &'c Cluster,
    bin: String,
    pub port: u16,
    instances: Vec<Option<Server>>,
}

/// The address of instance `i`: 127.0.0.(i+1).
pub fn instance_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8 + 1))
}

/// A port free on 127.0.0.1, .2 and .3 a moment ago.
fn port_free_on_three() -> u16 {
    for _ in 0..50 {
        let port = free_port();
        let free = (0..3).all(|i| std::net::TcpListener::bind((instance_ip(i), port)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no port free on 127.0.0.1-3 (are 127.0.0.2 and .3 loopback here?)");
}

impl<'c> Fleet<'c> {
    /// Three instances of `bin` with their uploads in `cluster` (through all three
    /// nodes' endpoints).
    pub fn start(cluster: &'c Cluster, bin: &str) -> Fleet<'c> {
        let mut f = Fleet {
            cluster,
            bin: bin.to_string(),
            port: port_free_on_three(),
            instances: (0..3).map(|_| None).collect(),
        };
        for i in 0..3 {
            f.start_instance(i);
        }
        f
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(instance_ip(i), self.port)
    }

    /// Starts instance `i` (again) on its address and port; returns once it serves.
    pub fn start_instance(&mut self, i: usize) {
        assert!(self.instances[i].is_none(), "instance {i} runs");
        let fx = Fixture::new();
        let root = fx.root.display().to_string();
        let (ip, port) = (instance_ip(i).to_string(), self.port.to_string());
        let s = self
            .cluster
            .builder(&self.bin, &[0, 1, 2], fx)
            .without_port_and_root()
            .rust_log("info")
            .args(&["--host", &ip, "--port", &port, "--root", &root])
            .args(&["--threads", "4", "--queue", "256"])
            .start();
        assert_eq!(s.port, self.port);
        let o = load::get(self.addr(i), &format!("127.0.0.1:{port}"), "/sample.txt");
        assert_eq!(o.status(), Some(200), "instance {i}: {:?}", o.answer);
        self.instances[i] = Some(s);
    }

    /// SIGKILLs instance `i` (by PID).
    pub fn kill(&mut self, i: usize) {
        let s = self.instances[i].take().expect("a running instance");
        s.signal("KILL");
        drop(s);
    }

    /// Sends SIGTERM to instance `i` and waits (at most 10 s) until it exits: its exit
    /// status and its logs.
    pub fn terminate(&mut self, i: usize) -> (ExitStatus, String) {
        let mut s = self.instances[i].take().expect("a running instance");
        s.signal("TERM");
        let status = s
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("instance {i} still runs 10 s after SIGTERM"));
        (status, s.logs())
    }

    /// The logs of every running instance.
    pub fn logs(&self) -> String {
        self.instances
            .iter()
            .flatten()
            .map(Server::logs)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Where an instance keeps its web root (every instance has the same files).
    pub fn root(&self) -> PathBuf {
        self.instances
            .iter()
            .flatten()
            .next()
            .expect("an instance")
            .fx
            .root
            .clone()
    }
}

//! Instances behind nginx ([`Nginx`], [`Fleet`]): a mixed load of GETs and uploads
//! through the balancer while instances die or restart, and the client-visible errors
//! counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::balancer::{instance_ip, Fleet, Nginx};
use super::cluster::Cluster;
use super::load::{self, loopback, tagged_json, tally, Outcome};

/// Client threads of the mixed load.
const CLIENTS: usize = 6;
/// The pause of each client between two requests (the load stays countable).
const PACE: Duration = Duration::from_millis(3);
/// The longest a mixed load runs, whatever happens to the test's controller.
const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// Sets the flag when dropped: the load stops when the controller is done, or panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One request of the mixed load and what came of it.
struct Done {
    /// `Some(bytes sent)` for an upload; `None` for a GET.
    upload: Option<Vec<u8>>,
    /// For a GET: its path and the bytes it must return.
    read: Option<(String, Vec<u8>)>,
    start: Instant,
    outcome: Outcome,
}

impl Done {
    /// Whether the request was under way at some moment between `from` and `to`.
    fn overlaps(&self, (from, to): (Instant, Instant)) -> bool {
        self.start <= to && from <= self.start + self.outcome.took
    }

    /// An answer whose head came and whose body was cut: what a client of nginx sees
    /// when the instance dies after nginx forwarded the head (nginx cannot retry then).
    fn cut(&self) -> bool {
        self.outcome
            .answer
            .as_ref()
            .is_err_and(|e| e.contains("body cut") || e.contains("ended inside"))
    }
}

/// A mixed load through nginx on [`CLIENTS`] threads until `stop`: one upload in four
/// (small JSON), the rest GETs of `reads` (files of the root and uploads in the store,
/// with the bytes each must return). `count` counts the requests started.
fn mixed_load(
    nginx: SocketAddr,
    reads: &[(String, Vec<u8>)],
    stop: &AtomicBool,
    count: &AtomicUsize,
) -> Vec<Done> {
    let host = nginx.to_string();
    thread::scope(|scope| {
        let hs: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let host = &host;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    let until = Instant::now() + LOAD_LIMIT;
                    while !stop.load(Ordering::SeqCst)
                        && done.len() < 20_000
                        && Instant::now() < until
                    {
                        let i = count.fetch_add(1, Ordering::SeqCst);
                        let start = Instant::now();
                        let (upload, read, outcome) = if i % 4 == 3 {
                            let sent = tagged_json(&format!("lb-{i}"), 100 + i % 400);
                            let outcome = load::upload(nginx, host, &sent);
                            (Some(sent), None, outcome)
                        } else {
                            let (path, bytes) = &reads[i % reads.len()];
                            let outcome = load::get(nginx, host, path);
                            (None, Some((path.clone(), bytes.clone())), outcome)
                        };
                        done.push(Done {
                            upload,
                            read,
                            start,
                            outcome,
                        });
                        thread::sleep(PACE);
                    }
                    done
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("a client"))
            .collect()
    })
}

/// Waits (at most 60 s) until `count` has grown by `n` since `from`; the new count.
fn wait_for_requests(count: &AtomicUsize, from: usize, n: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < from + n {
        assert!(Instant::now() < until, "the load stalled");
        thread::sleep(Duration::from_millis(5));
    }
    count.load(Ordering::SeqCst)
}

/// Waits (at most 20 s: nginx tries a failed server again after `fail_timeout`, 5 s)
/// until nginx has sent a request to instance `i` and had its 200, after the first
/// `since` lines of its access log.
fn wait_routed(nginx: &Nginx, fleet: &Fleet<'_>, i: usize, since: usize) {
    let hop = format!(" 200 up={}:{} ", instance_ip(i), fleet.port);
    let until = Instant::now() + Duration::from_secs(20);
    while !nginx
        .access_log()
        .lines()
        .skip(since)
        .any(|l| l.contains(&hop))
    {
        assert!(Instant::now() < until, "nginx never took instance {i} back");
        thread::sleep(Duration::from_millis(50));
    }
}

/// What the tests read: three files of the root and ten uploads made through nginx.
fn reads(nginx: SocketAddr, fleet: &Fleet<'_>) -> Vec<(String, Vec<u8>)> {
    let root = fleet.root();
    let mut reads: Vec<(String, Vec<u8>)> = ["index.html", "sample.txt", "logo.png"]
        .iter()
        .map(|f| {
            (
                format!("/{f}"),
                std::fs::read(root.join(f)).expect("a fixture file"),
            )
        })
        .collect();
    for i in 0..10 {
        let sent = tagged_json(&format!("seed-{i}"), 200 + i * 1000);
        let o = load::upload(nginx, &nginx.to_string(), &sent);
        let path = o
            .created()
            .unwrap_or_else(|| panic!("a seed upload through nginx: {:?}", o.answer));
        reads.push((path, sent));
    }
    reads
}

/// What a mixed load may show.
struct Rules {
    /// An instance SIGKILLed between these moments: a request under way then may be
    /// cut.
    killed: Option<(Instant, Instant)>,
    /// An upload may be refused (a 502, 503 or 504 from nginx: it was sent to an
    /// instance that went away, and is never retried blindly).
    uploads_may_fail: bool,
}

/// The judgement of a mixed load: every GET answered 200 with its bytes (or cut, if it
/// was under way at a SIGKILL), every upload a `201` or (if the rules allow) refused
/// by nginx, never a `500`; then every acknowledged upload is read back whole through
/// nginx (eight readers) and listed by the bucket. Returns a line of figures.
fn judge(what: &str, done: &[Done], nginx: &Nginx, cluster: &Cluster, rules: &Rules) -> String {
    let addr = loopback(nginx.port);
    let excused = |d: &Done| rules.killed.is_some_and(|t| d.overlaps(t) && d.cut());
    let (gets, uploads): (Vec<&Done>, Vec<&Done>) = done.iter().partition(|d| d.read.is_some());
    let mut cut_gets = 0;
    for d in &gets {
        let (path, bytes) = d.read.as_ref().expect("a read");
        let r = d.outcome.answer.as_ref();
        if r.is_ok_and(|r| r.status == 200 && r.body == *bytes) {
            continue;
        }
        assert!(
            excused(d),
            "{what}: GET {path} failed: {:?} after {:?}; GETs: {}",
            r.map(|r| (r.status, r.body.len())),
            d.outcome.took,
            tally(gets.iter().map(|d| &d.outcome)),
        );
        cut_gets += 1;
    }
    assert!(cut_gets <= CLIENTS, "{cut_gets} GETs cut");
    let mut acked = Vec::new();
    for d in &uploads {
        let sent = d.upload.as_ref().expect("an upload");
        if let Some(path) = d.outcome.created() {
            acked.push((path, sent.clone()));
            continue;
        }
        let status = d.outcome.status();
        assert!(
            rules.uploads_may_fail
                && (matches!(status, Some(502 | 504)) || d.outcome.is_retry_later() || excused(d)),
            "{what}: an upload got {:?} after {:?}; uploads: {}",
            d.outcome.answer.as_ref().map(|r| r.status),
            d.outcome.took,
            tally(uploads.iter().map(|d| &d.outcome)),
        );
    }
    let listed: std::collections::BTreeSet<String> =
        cluster.list("test/").into_iter().map(|(k, _)| k).collect();
    thread::scope(|scope| {
        for t in 0..8 {
            let (acked, listed) = (&acked, &listed);
            scope.spawn(move || {
                for (path, sent) in acked.iter().skip(t).step_by(8) {
                    let key = format!("test/{}", path.trim_start_matches("/uploads/"));
                    assert!(listed.contains(&key), "{what}: {key} is not in the bucket");
                    let o = load::get(addr, &addr.to_string(), path);
                    let r = o.answer.unwrap_or_else(|e| panic!("GET {path}: {e}"));
                    assert!(
                        r.status == 200 && r.body == *sent,
                        "{what}: {path} was acknowledged and is lost: {}",
                        r.status
                    );
                }
            });
        }
    });
    // Which instance each refused upload had been sent to, from nginx's access log.
    let log = nginx.access_log();
    let mut refused_at = BTreeMap::<String, usize>::new();
    for l in log.lines().filter(|l| l.starts_with("POST /upload 50")) {
        let up = l.split(" up=").nth(1).and_then(|r| r.split(" ups=").next());
        *refused_at.entry(up.unwrap_or("?").to_string()).or_default() += 1;
    }
    let retried = log.lines().filter(|l| l.contains(", ")).count();
    format!(
        "{what}: {} GETs, all 200 but {cut_gets} cut by the SIGKILL; {} uploads {} \
         ({} acknowledged, each read back); refused uploads by instance {refused_at:?}; \
         nginx retried {retried} requests on another instance",
        gets.len(),
        uploads.len(),
        tally(uploads.iter().map(|d| &d.outcome)),
        acked.len(),
    )
}

/// Mixed GETs and uploads through nginx ([`CLIENTS`] clients): instance 0 SIGKILLed;
/// then a rolling restart by SIGTERM alone of instances 1 and 2, each replacement on
/// the same address and port once the old one exited 0 (instance 0 started again with
/// the first; instance 2 only once nginx sends to both again, after `fail_timeout`,
/// else nginx would have no live server left). Every
/// GET is answered 200 with its bytes (nginx retries them), except one under way at the
/// SIGKILL whose head nginx had forwarded (cut, at most one per client). An upload may
/// be refused (502/504, or 503 with `Retry-After`), never a `500`; every `201` is read
/// back whole and listed by the bucket.
pub fn balancer_instances_killed_and_restarted_under_load(bin: &str) {
    let cluster = Cluster::start();
    let mut fleet = Fleet::start(&cluster, bin);
    let nginx = Nginx::start(fleet.port);
    let addr = loopback(nginx.port);
    let reads = reads(addr, &fleet);
    let (stop, count) = (AtomicBool::new(false), AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut killed = None;
    let done = thread::scope(|scope| {
        let load = scope.spawn(|| mixed_load(addr, &reads, &stop, &count));
        let stopping = StopOnDrop(&stop);
        let n = wait_for_requests(&count, 0, 200);
        let before = Instant::now();
        fleet.kill(0);
        killed = Some((before, Instant::now()));
        wait_for_requests(&count, n, 200);
        let (status, logs) = fleet.terminate(1);
        assert!(
            status.success(),
            "instance 1 after SIGTERM: {status}\n{logs}"
        );
        fleet.start_instance(1);
        fleet.start_instance(0);
        // Counted from here: what the old instance drained is logged before. Both are
        // taken back once `fail_timeout` has passed.
        let since = nginx.access_log().lines().count();
        wait_routed(&nginx, &fleet, 1, since);
        wait_routed(&nginx, &fleet, 0, since);
        let (status, logs) = fleet.terminate(2);
        assert!(
            status.success(),
            "instance 2 after SIGTERM: {status}\n{logs}"
        );
        fleet.start_instance(2);
        let n = count.load(Ordering::SeqCst);
        wait_for_requests(&count, n, 200);
        drop(stopping);
        load.join().expect("the load")
    });
    let rules = Rules {
        killed,
        uploads_may_fail: true,
    };
    let figures = judge("SIGKILL, then SIGTERM", &done, &nginx, &cluster, &rules);
    eprintln!("{figures}; {:?}", t0.elapsed());
    assert!(!fleet.logs().contains("\" 500 "), "a 500 was answered");
}

/// A rolling restart under mixed GETs and uploads through nginx ([`CLIENTS`] clients),
/// the way that loses nothing with open-source nginx: each instance in turn is taken
/// out of the upstream (`down`, a reload: nginx's old worker finishes what it sent
/// there), gets SIGTERM (it drains and exits 0), its replacement starts on the same
/// address and port, and it is put back (a reload). Not one request fails: every GET
/// 200 with its bytes, every upload `201`, each read back whole and listed.
pub fn balancer_rolling_restart_taken_out_then_sigterm_loses_nothing(bin: &str) {
    let cluster = Cluster::start();
    let mut fleet = Fleet::start(&cluster, bin);
    let nginx = Nginx::start(fleet.port);
    let addr = loopback(nginx.port);
    let reads = reads(addr, &fleet);
    let (stop, count) = (AtomicBool::new(false), AtomicUsize::new(0));
    let t0 = Instant::now();
    let done = thread::scope(|scope| {
        let load = scope.spawn(|| mixed_load(addr, &reads, &stop, &count));
        let stopping = StopOnDrop(&stop);
        let mut n = wait_for_requests(&count, 0, 150);
        for i in 0..3 {
            nginx.reload_with(Some(i));
            let (status, logs) = fleet.terminate(i);
            assert!(
                status.success(),
                "instance {i} after SIGTERM: {status}\n{logs}"
            );
            fleet.start_instance(i);
            nginx.reload_with(None);
            n = wait_for_requests(&count, n, 150);
        }
        drop(stopping);
        load.join().expect("the load")
    });
    let rules = Rules {
        killed: None,
        uploads_may_fail: false,
    };
    let figures = judge("rolling restart", &done, &nginx, &cluster, &rules);
    eprintln!("{figures}; {:?}", t0.elapsed());
    assert!(!fleet.logs().contains("\" 500 "), "a 500 was answered");
}

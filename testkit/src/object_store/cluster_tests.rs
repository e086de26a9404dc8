//! The server on a three-node Garage cluster ([`Cluster`]): what a client sees while
//! nodes die and return, and that nothing acknowledged is ever lost. The server is
//! given the three nodes' endpoints (`AWS_ENDPOINT_URL` as a list, tried in order from
//! the one that answered last); the last test measures why.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::load::{self, loopback, tagged_json, tally, Outcome};
use crate::Server;

/// `--max-body` of these tests: the largest upload sent is exactly this.
const MAX_BODY: usize = 6 << 20;

/// An acknowledged upload: its path and the bytes sent.
type Acked = (String, Vec<u8>);

/// The body of upload `i` of a run tagged `run`: small JSON mostly, and every 83rd
/// (six in 500) of 1 MiB, 3 MiB or exactly [`MAX_BODY`].
fn body(run: &str, i: usize) -> Vec<u8> {
    let len = match (i % 83 == 7, i / 83 % 3) {
        (true, 0) => 1 << 20,
        (true, 1) => 3 << 20,
        (true, _) => MAX_BODY,
        _ => 60 + i % 200,
    };
    tagged_json(&format!("{run}-{i}"), len)
}

/// Every outcome is a `201` or a `503` with `Retry-After`: never a `500`, never no
/// answer (a reset, a hang).
#[track_caller]
fn only_created_or_retry_later(what: &str, outcomes: &[&Outcome]) {
    for o in outcomes {
        assert!(
            o.created().is_some() || o.is_retry_later(),
            "{what}: an upload got {:?} after {:?}; all: {}",
            o.answer,
            o.took,
            tally(outcomes.iter().copied())
        );
    }
}

/// Each acknowledged upload, read back through the server (exact bytes; eight
/// readers), and listed by the bucket through the S3 API with its size.
#[track_caller]
fn all_there(c: &Cluster, s: &Server, acked: &[Acked]) {
    let listed: BTreeMap<String, u64> = c.list("test/").into_iter().collect();
    for (path, sent) in acked {
        let name = path.strip_prefix("/uploads/").expect("an upload path");
        assert_eq!(
            listed.get(&format!("test/{name}")),
            Some(&(sent.len() as u64)),
            "{path} is not in the bucket with its {} bytes",
            sent.len()
        );
    }
    let (addr, host) = (loopback(s.port), s.host());
    thread::scope(|scope| {
        for t in 0..8 {
            let host = &host;
            scope.spawn(move || {
                for (path, sent) in acked.iter().skip(t).step_by(8) {
                    let r = load::get(addr, host, path);
                    let got = r.answer.unwrap_or_else(|e| panic!("GET {path}: {e}"));
                    assert_eq!(got.status, 200, "GET {path}: {got:?}");
                    assert!(got.body == *sent, "{path}: other bytes than those sent");
                }
            });
        }
    });
}

/// The waves of uploads: each uploader waits until its wave is open; `done` counts the
/// uploads answered. Dropped (the controller done, or panicking), every wave is open,
/// so no uploader waits for good.
struct Waves {
    phase: Mutex<usize>,
    turned: Condvar,
    done: AtomicUsize,
}

impl Waves {
    fn new() -> Waves {
        Waves {
            phase: Mutex::new(0),
            turned: Condvar::new(),
            done: AtomicUsize::new(0),
        }
    }

    fn open(&self, phase: usize) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        self.turned.notify_all();
    }

    /// Waits until wave `phase` is open (at most 3 minutes: then it goes anyway).
    fn wait_for(&self, phase: usize) {
        let until = Instant::now() + Duration::from_secs(180);
        let mut now = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        while *now < phase && Instant::now() < until {
            let (next, _) = self
                .turned
                .wait_timeout(now, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner());
            now = next;
        }
    }

    /// Waits (at most `limit`) until `n` uploads are done.
    fn wait_done(&self, n: usize, limit: Duration) {
        let until = Instant::now() + limit;
        while self.done.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < until,
                "only {} uploads done of {n}",
                self.done.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Opens every wave when dropped.
struct OpenAll<'a>(&'a Waves);

impl Drop for OpenAll<'_> {
    fn drop(&mut self) {
        self.0.open(usize::MAX);
    }
}

/// 500 uploads on 500 client threads, in three waves: 200 at once, node 0 (the
/// server's first endpoint, where every request goes) SIGKILLed when 100 of them are
/// done; 150 with the node down, then reads of what was acknowledged (one node down:
/// served, through the server and through the S3 API); 150 more while the node
/// restarts (connected again, `repair tables`). Six bodies are of several MiB, one
/// exactly `--max-body`. Every upload is a `201` or a `503` with `Retry-After` (never a
/// `500`, never unanswered, each within 30 s), at least 90% are `201`, and every `201`
/// is in the bucket with the exact bytes sent.
pub fn cluster_500_uploads_while_a_node_is_killed_and_restarted(bin: &str) {
    const UPLOADS: usize = 500;
    const WAVES: [usize; 3] = [200, 350, UPLOADS];
    let mut c = Cluster::start();
    let max_body = MAX_BODY.to_string();
    let s = c.server(
        bin,
        &[0, 1, 2],
        &["--threads", "8", "--queue", "1024", "--max-body", &max_body],
    );
    let (addr, host) = (loopback(s.port), s.host());
    let waves = Waves::new();
    let acked: Mutex<Vec<Acked>> = Mutex::new(Vec::new());
    let t0 = Instant::now();
    let outcomes: Vec<Outcome> = thread::scope(|scope| {
        let handles: Vec<_> = (0..UPLOADS)
            .map(|i| {
                let (waves, host, acked) = (&waves, &host, &acked);
                let wave = WAVES.iter().position(|&end| i < end).expect("a wave");
                thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn_scoped(scope, move || {
                        let sent = body("kill", i);
                        waves.wait_for(wave);
                        let outcome = load::upload(addr, host, &sent);
                        if let Some(path) = outcome.created() {
                            acked.lock().expect("acked").push((path, sent));
                        }
                        waves.done.fetch_add(1, Ordering::SeqCst);
                        outcome
                    })
                    .expect("an uploader thread")
            })
            .collect();
        // Whatever happens below, every uploader goes and ends.
        let _open_all = OpenAll(&waves);
        waves.wait_done(100, Duration::from_secs(60));
        c.kill(0);
        let killed_after = waves.done.load(Ordering::SeqCst);
        waves.open(1);
        waves.wait_done(WAVES[1], Duration::from_secs(90));
        // One node down: what was acknowledged is read back.
        let so_far = acked.lock().expect("acked").clone();
        for (path, sent) in so_far.iter().step_by(5) {
            let r = load::get(addr, &host, path);
            let got = r.answer.unwrap_or_else(|e| panic!("GET {path}: {e}"));
            assert_eq!(got.status, 200, "GET {path} with a node down: {got:?}");
            assert!(got.body == *sent, "{path}: other bytes than those sent");
        }
        let (path, sent) = so_far.last().expect("some upload acknowledged");
        let key = format!("test/{}", path.trim_start_matches("/uploads/"));
        assert!(c.object(&key) == *sent, "{key} through the S3 API");
        eprintln!(
            "node 0 SIGKILLed after {killed_after} uploads; {} acknowledged and {} read back \
             with it down; {:?}",
            so_far.len(),
            so_far.len().div_ceil(5),
            t0.elapsed()
        );
        waves.open(2);
        c.restart(0);
        eprintln!("node 0 back, connected and repaired at {:?}", t0.elapsed());
        handles
            .into_iter()
            .map(|h| h.join().expect("uploader"))
            .collect()
    });
    let all: Vec<&Outcome> = outcomes.iter().collect();
    eprintln!(
        "{UPLOADS} uploads in {:?}: {}; slowest {:?}; the server went to the next endpoint \
         {} times",
        t0.elapsed(),
        tally(all.iter().copied()),
        all.iter().map(|o| o.took).max().unwrap_or_default(),
        s.logs().matches("trying the next endpoint").count()
    );
    only_created_or_retry_later("a node killed and restarted", &all);
    let acked = acked.into_inner().expect("acked");
    assert!(
        acked.len() >= UPLOADS * 9 / 10,
        "only {} of {UPLOADS} uploads acknowledged: {}",
        acked.len(),
        tally(all.iter().copied())
    );
    all_there(&c, &s, &acked);
    assert!(!s.logs().contains("\" 500 "), "a 500 was answered");
}

/// Uploads `n` bodies tagged `run` from `threads` threads at once; what each sent and
/// got.
fn upload_many(s: &Server, run: &str, n: usize, threads: usize) -> Vec<(Vec<u8>, Outcome)> {
    let (addr, host) = (loopback(s.port), s.host());
    thread::scope(|scope| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let host = &host;
                scope.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let sent = body(run, i);
                            let o = load::upload(addr, host, &sent);
                            (sent, o)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("uploader"))
            .collect()
    })
}

/// The acknowledged ones among `results`; panics unless every one was acknowledged.
#[track_caller]
fn every_one_created(what: &str, results: &[(Vec<u8>, Outcome)]) -> Vec<Acked> {
    results
        .iter()
        .map(|(sent, o)| {
            let path = o.created().unwrap_or_else(|| {
                panic!(
                    "{what}: an upload got {:?}; all: {}",
                    o.answer,
                    tally(results.iter().map(|(_, o)| o))
                )
            });
            (path, sent.clone())
        })
        .collect()
}

/// Two of three nodes down (both of the server's first endpoints): no quorum. Uploads
/// are refused with `503` and `Retry-After`, none acknowledged, each within 30 s; reads
/// of acknowledged uploads are answered whole or refused with `503` (never a `500`).
/// Once the nodes return (connected, repaired), uploads are acknowledged again and
/// every upload acknowledged before or after is in the bucket with its bytes.
pub fn cluster_two_nodes_down_refuses_uploads_and_loses_nothing(bin: &str) {
    let mut c = Cluster::start();
    let s = c.server(bin, &[0, 1, 2], &["--threads", "4"]);
    let (addr, host) = (loopback(s.port), s.host());
    let mut acked = every_one_created("all nodes up", &upload_many(&s, "before", 40, 4));
    c.kill(0);
    c.kill(1);
    let t = Instant::now();
    let during = upload_many(&s, "during", 20, 4);
    for (_, o) in &during {
        assert!(
            o.is_retry_later(),
            "an upload without a quorum got {:?} after {:?}",
            o.answer,
            o.took
        );
    }
    let mut read = BTreeMap::<u16, usize>::new();
    for (path, sent) in acked.iter().take(20) {
        let o = load::get(addr, &host, path);
        let r = o.answer.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        match r.status {
            200 => assert!(r.body == *sent, "{path}: other bytes than those sent"),
            503 => assert!(r.header("retry-after").is_some(), "{r:?}"),
            _ => panic!("GET {path} with two nodes down: {r:?}"),
        }
        *read.entry(r.status).or_default() += 1;
    }
    eprintln!(
        "two nodes down: 20 uploads {} in {:?}; 20 reads {read:?}",
        tally(during.iter().map(|(_, o)| o)),
        t.elapsed()
    );
    c.restart(0);
    c.restart(1);
    // Service again: the first acknowledged upload within 30 s, then every one.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = body("back", 1000);
        let o = load::upload(addr, &host, &sent);
        if let Some(path) = o.created() {
            acked.push((path, sent));
            break;
        }
        assert!(o.is_retry_later(), "{:?}", o.answer);
        assert!(Instant::now() < until, "no service once the nodes returned");
        thread::sleep(Duration::from_millis(200));
    }
    acked.extend(every_one_created(
        "the nodes back",
        &upload_many(&s, "after", 40, 4),
    ));
    all_there(&c, &s, &acked);
    assert!(!s.logs().contains("\" 500 "), "a 500 was answered");
}

/// What the server's endpoint list is for: node 0 SIGKILLed under two servers, one
/// given node 0's endpoint only, the other all three. The first refuses every upload
/// and read with `503` and `Retry-After` while the cluster itself still has its quorum;
/// the second acknowledges every upload and serves every read. Once node 0 is back, the
/// first serves again.
pub fn cluster_the_endpoint_node_killed_one_endpoint_or_all_three(bin: &str) {
    let mut c = Cluster::start();
    let one = c.server(bin, &[0], &[]);
    let all = c.server(bin, &[0, 1, 2], &[]);
    let seeded: Vec<(Acked, Acked)> = (0..5)
        .map(|i| {
            let a = every_one_created("seed", &upload_many(&one, &format!("one{i}"), 1, 1));
            let b = every_one_created("seed", &upload_many(&all, &format!("all{i}"), 1, 1));
            (a[0].clone(), b[0].clone())
        })
        .collect();
    c.kill(0);
    let t = Instant::now();
    let refused = upload_many(&one, "one-down", 20, 4);
    let one_took = t.elapsed();
    for (_, o) in &refused {
        assert!(
            o.is_retry_later(),
            "one endpoint, its node down: {:?}",
            o.answer
        );
    }
    let t = Instant::now();
    let taken = every_one_created(
        "three endpoints, one down",
        &upload_many(&all, "all-down", 20, 4),
    );
    let all_took = t.elapsed();
    for ((one_path, _), (all_path, all_sent)) in &seeded {
        let o = load::get(loopback(one.port), &one.host(), one_path);
        assert!(
            o.is_retry_later(),
            "a read, one endpoint down: {:?}",
            o.answer
        );
        let o = load::get(loopback(all.port), &all.host(), all_path);
        let r = o.answer.expect("an answer");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body == *all_sent);
    }
    eprintln!(
        "node 0 down: one endpoint: 20 uploads {} in {one_took:?}; \
         three endpoints: 20 uploads {} in {all_took:?}",
        tally(refused.iter().map(|(_, o)| o)),
        taken.len()
    );
    c.restart(0);
    let until = Instant::now() + Duration::from_secs(30);
    while upload_many(&one, "one-back", 1, 1)[0].1.created().is_none() {
        assert!(
            Instant::now() < until,
            "one endpoint: no service once its node returned"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let mut acked: Vec<Acked> = seeded.into_iter().map(|(_, b)| b).collect();
    acked.extend(taken);
    all_there(&c, &all, &acked);
}

//! The worker pool of runtime-std: its queue bound, panics, and the hand-over of the
//! poller to an idle worker (`src/pool.rs`).

use runtime_std::pool::{Busy, Pool, Source};
use std::sync::{mpsc, Barrier};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn a_panic_does_not_shrink_the_pool() {
    let barrier = Arc::new(Barrier::new(3));
    let b = Arc::clone(&barrier);
    let pool = Pool::new("t", 2, 8, None, move |_, job: u32, busy: &Busy<'_>| {
        if job == 0 {
            panic!("job 0 panics");
        }
        // A job that waits says so (the pool's contract), so the other worker is
        // called to the queue.
        let _blocking = busy.blocking();
        b.wait();
    })
    .expect("pool");
    for _ in 0..4 {
        pool.try_submit(0).expect("queued");
    }
    // Both workers must still be there: two jobs that wait for each other.
    pool.try_submit(1).expect("queued");
    pool.try_submit(2).expect("queued");
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        barrier.wait();
        tx.send(()).expect("send");
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("two workers ran together after four panics");
    t.join().expect("join");
    assert_eq!(pool.size(), 2);
    assert!(pool.finish(Instant::now() + Duration::from_secs(5)));
}

#[test]
fn a_full_queue_gives_the_job_back_at_once() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (started_tx, started_rx) = mpsc::channel::<u32>();
    let started_tx = Mutex::new(started_tx);
    let pool = Pool::new("t", 1, 1, None, move |_, job: u32, _: &Busy<'_>| {
        let _ = started_tx.lock().map(|tx| tx.send(job));
        let _ = release_rx
            .lock()
            .map(|rx| rx.recv_timeout(Duration::from_secs(10)));
    })
    .expect("pool");
    pool.try_submit(1).expect("the worker takes it");
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(5)), Ok(1));
    pool.try_submit(2).expect("queued");
    let start = Instant::now();
    assert_eq!(pool.try_submit(3), Err(3));
    assert!(start.elapsed() < Duration::from_millis(100));
    release_tx.send(()).expect("release 1");
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(5)), Ok(2));
    release_tx.send(()).expect("release 2");
    assert!(pool.finish(Instant::now() + Duration::from_secs(5)));
}

/// A source fed through a channel; `None` is a wake-up. It waits long (10 s), so a
/// missing wake-up shows as a job not served in time.
struct Feed(
    Mutex<mpsc::Receiver<Option<u32>>>,
    mpsc::Sender<Option<u32>>,
);

impl Source<u32> for Feed {
    fn wait(&self, into: &mut Vec<u32>) {
        let rx = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(first) = rx.recv_timeout(Duration::from_secs(10)) {
            into.extend(first);
            into.extend(rx.try_iter().flatten());
        }
    }
    fn wake(&self) {
        let _ = self.1.send(None);
    }
}

fn feed() -> (Arc<Feed>, mpsc::Sender<Option<u32>>) {
    let (tx, rx) = mpsc::channel();
    (Arc::new(Feed(Mutex::new(rx), tx.clone())), tx)
}

#[test]
fn a_job_about_to_block_hands_the_source_to_an_idle_worker() {
    let (source, tx) = feed();
    let (done_tx, done_rx) = mpsc::channel::<u32>();
    let done_tx = Mutex::new(done_tx);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let pool = Pool::new("t", 2, 0, Some(source as Arc<dyn Source<u32>>), {
        move |_, job: u32, busy: &Busy<'_>| {
            if job == 0 {
                // Job 0 blocks (as a read waiting for a slow client would), saying so.
                let _blocking = busy.blocking();
                let _ = release_rx
                    .lock()
                    .map(|rx| rx.recv_timeout(Duration::from_secs(10)));
            }
            let _ = done_tx.lock().map(|tx| tx.send(job));
        }
    })
    .expect("pool");
    tx.send(Some(0)).expect("feed");
    thread::sleep(Duration::from_millis(50));
    // The worker holding job 0 is blocked; the other one waits on the source now.
    for j in 1..=3 {
        tx.send(Some(j)).expect("feed");
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(2)), Ok(j));
    }
    release_tx.send(()).expect("release");
    assert_eq!(done_rx.recv_timeout(Duration::from_secs(2)), Ok(0));
    assert!(pool.finish(Instant::now() + Duration::from_secs(5)));
}

#[test]
fn a_submitted_job_wakes_the_worker_waiting_on_the_source() {
    let (source, _tx) = feed();
    let (done_tx, done_rx) = mpsc::channel::<u32>();
    let done_tx = Mutex::new(done_tx);
    let pool = Pool::new("t", 1, 4, Some(source as Arc<dyn Source<u32>>), {
        move |_, job: u32, _: &Busy<'_>| {
            let _ = done_tx.lock().map(|tx| tx.send(job));
        }
    })
    .expect("pool");
    // The only worker waits on the source (up to 10 s unless woken).
    thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    pool.try_submit(7).expect("queued");
    assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)), Ok(7));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    assert!(pool.finish(Instant::now() + Duration::from_secs(5)));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "finish waited for the source"
    );
}

#[test]
fn finish_runs_the_queued_jobs_and_then_refuses() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pool = Pool::new("t", 1, 8, None, move |_, job: u32, _: &Busy<'_>| {
        thread::sleep(Duration::from_millis(5));
        let _ = tx.lock().map(|tx| tx.send(job));
    })
    .expect("pool");
    for j in 0..5 {
        pool.try_submit(j).expect("queued");
    }
    assert!(pool.finish(Instant::now() + Duration::from_secs(5)));
    let done: Vec<u32> = rx.try_iter().collect();
    assert_eq!(done, [0, 1, 2, 3, 4]);
}

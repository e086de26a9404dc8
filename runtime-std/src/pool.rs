//! A fixed pool of worker threads fed by a bounded queue.
//!
//! [`Pool::try_submit`] never blocks: it accepts a job while fewer than `capacity + idle
//! workers` jobs wait, and otherwise hands the job back so that the caller can refuse it
//! (the accept loop answers 503). A panic in a job is caught, logged, and the worker
//! goes on with the next job, so the pool keeps its size.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::error;

struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
    /// How many jobs wait (read without the lock by idle connections: see `park`).
    waiting: Arc<AtomicUsize>,
}

struct State<T> {
    jobs: VecDeque<T>,
    /// Workers waiting for a job: a job for them needs no queue slot.
    idle: usize,
    closed: bool,
}

impl<T> Queue<T> {
    fn try_submit(&self, job: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.closed || state.jobs.len() >= self.capacity.saturating_add(state.idle) {
            return Err(job);
        }
        state.jobs.push_back(job);
        self.waiting.store(state.jobs.len(), Ordering::Release);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; recover anyway rather than cascade.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, or `None` once the queue is closed and empty.
    fn take(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                self.waiting.store(state.jobs.len(), Ordering::Release);
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state.idle += 1;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle -= 1;
        }
    }
}

/// Submits jobs to a [`Pool`] from another thread.
pub struct Submitter<T>(Arc<Queue<T>>);

impl<T> Submitter<T> {
    /// As [`Pool::try_submit`].
    pub fn try_submit(&self, job: T) -> Result<(), T> {
        self.0.try_submit(job)
    }
}

/// Worker threads running `handler(worker_index, job)` for each submitted job.
pub struct Pool<T> {
    queue: Arc<Queue<T>>,
    workers: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts `workers` threads named `NAME-i`; at most `capacity` jobs wait beyond the
    /// idle workers; `waiting` follows how many jobs wait.
    pub fn new<F>(
        name: &str,
        workers: usize,
        capacity: usize,
        waiting: Arc<AtomicUsize>,
        handler: F,
    ) -> std::io::Result<Self>
    where
        F: Fn(usize, T) + Send + Sync + 'static,
    {
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                jobs: VecDeque::with_capacity(capacity.min(4096)),
                idle: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
            waiting,
        });
        let handler = Arc::new(handler);
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers.max(1) {
            let queue = Arc::clone(&queue);
            let handler = Arc::clone(&handler);
            handles.push(
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || work(i, &queue, &*handler))?,
            );
        }
        // Ready once every worker waits for work: a free worker is a place in the queue
        // (`--queue 0` refuses exactly when all are busy), so until then a connection
        // right after the start line would be refused.
        let until = Instant::now() + Duration::from_secs(2);
        while queue.lock().idle < handles.len() && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        Ok(Pool {
            queue,
            workers: handles,
        })
    }

    /// Queues a job for the next free worker, or gives it back when every worker is busy
    /// and the queue is full (or the pool is finishing). Never blocks on a worker.
    pub fn try_submit(&self, job: T) -> Result<(), T> {
        self.queue.try_submit(job)
    }

    /// A handle that submits jobs too (for the parker thread).
    pub fn submitter(&self) -> Submitter<T> {
        Submitter(Arc::clone(&self.queue))
    }

    /// How many threads the pool runs (it never shrinks).
    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.workers.iter().filter(|h| !h.is_finished()).count()
    }

    /// Takes no more jobs, lets the workers finish the queued ones, and waits for them
    /// until `deadline`. True when every worker has ended.
    pub fn finish(self, deadline: Instant) -> bool {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
        loop {
            if self.workers.iter().all(JoinHandle::is_finished) {
                for h in self.workers {
                    let _ = h.join();
                }
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn work<T>(index: usize, queue: &Queue<T>, handler: &(dyn Fn(usize, T) + Send + Sync)) {
    while let Some(job) = queue.take() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler(index, job))) {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            error!("worker {index}: the connection handler panicked ({what}); the worker goes on");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Barrier};

    #[test]
    fn a_panic_does_not_shrink_the_pool() {
        let barrier = Arc::new(Barrier::new(3));
        let b = Arc::clone(&barrier);
        let pool = Pool::new("t", 2, 8, Default::default(), move |_, job: u32| {
            if job == 0 {
                panic!("job 0 panics");
            }
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
        let pool = Pool::new("t", 1, 1, Default::default(), move |_, job: u32| {
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

    #[test]
    fn finish_runs_the_queued_jobs_and_then_refuses() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let pool = Pool::new("t", 1, 8, Default::default(), move |_, job: u32| {
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
}

//! A fixed pool of worker threads fed by a bounded queue, and by a [`Source`].
//!
//! [`Pool::try_submit`] never blocks: it accepts a job while fewer than `capacity + idle
//! workers` jobs wait, and otherwise hands the job back so that the caller can refuse it
//! (the accept loop answers 503). A panic in a job is caught, logged, and the worker
//! goes on with the next job, so the pool keeps its size.
//!
//! The source (runtime-std: the parked connections, `park.rs`) is waited on by one idle
//! worker at a time, the *leader*; the others sleep on the queue's condition variable.
//! The leader puts what the source gave into the queue and serves them in turn. A
//! worker is called to the queue only when no other is *active* (serving a job outside a
//! blocking section: it comes back for the next job soon) — the leader if one waits on
//! the source, else an idle one — when a job is submitted, or when the last active
//! worker enters a blocking section ([`Pool`]'s handler gets a [`Busy`] to mark them: a
//! read that may wait for the client, a large body, a disk write) while jobs wait or
//! nobody leads; and an idle one helps with a backlog of [`HELP_AT`] jobs. A busy server
//! thus answers a batch of ready connections, and new ones, on one thread without a
//! wake-up per request, and a slow client never keeps the others waiting while workers
//! sleep.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::error;

/// Jobs waiting, beyond the one just taken, from which an idle worker is woken to help.
/// Below it one worker serves them sooner than a wake-up would pay off: a wake-up costs
/// about what a few cached answers do, and serving 32 takes about half a millisecond.
const HELP_AT: usize = 32;

/// Where jobs come from besides [`Pool::try_submit`].
pub trait Source<T>: Send + Sync {
    /// Blocks until jobs are ready, a short while passes, or [`Source::wake`]; appends
    /// the ready jobs to `into`.
    fn wait(&self, into: &mut Vec<T>);
    /// Ends a `wait` in progress (or makes the next one return at once).
    fn wake(&self);
}

struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
    source: Option<Arc<dyn Source<T>>>,
}

struct State<T> {
    jobs: VecDeque<T>,
    /// Workers sleeping on the condition variable: a job for them needs no queue slot.
    idle: usize,
    /// A worker waits on the source (it is free too).
    leading: bool,
    /// Workers serving a job and not inside a blocking section: each comes back for
    /// the next job soon, so a job queued meanwhile needs no wake-up.
    active: usize,
    closed: bool,
}

impl<T> Queue<T> {
    fn try_submit(&self, job: T) -> Result<(), T> {
        let mut state = self.lock();
        let free = state.idle + usize::from(state.leading);
        if state.closed || state.jobs.len() >= self.capacity.saturating_add(free) {
            return Err(job);
        }
        state.jobs.push_back(job);
        let (idle, leading, active) = (state.idle, state.leading, state.active);
        drop(state);
        if active == 0 {
            // Else a worker comes back for it (under load: no wake-up per new connection).
            self.call(leading, idle);
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; recover anyway rather than cascade.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, or `None` once the queue is closed and empty. `done`: the worker
    /// comes back from a job.
    fn take(&self, batch: &mut Vec<T>, done: bool) -> Option<T> {
        let mut state = self.lock();
        if done {
            state.active = state.active.saturating_sub(1);
        }
        loop {
            if let Some(job) = state.jobs.pop_front() {
                state.active += 1;
                // A backlog: one more worker helps (it may wake another, and so on).
                if state.jobs.len() >= HELP_AT && state.idle > 0 {
                    self.ready.notify_one();
                }
                return Some(job);
            }
            if state.closed {
                return None;
            }
            match &self.source {
                Some(source) if !state.leading => {
                    state.leading = true;
                    drop(state);
                    source.wait(batch);
                    state = self.lock();
                    state.leading = false;
                    // This worker serves them in turn (another helps with a backlog).
                    state.jobs.extend(batch.drain(..));
                }
                _ => {
                    state.idle += 1;
                    state = self
                        .ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    state.idle -= 1;
                }
            }
        }
    }

    /// A worker enters (`true`) or leaves a section where it may block (a read or write
    /// that may wait for the client, a large body, a disk write). Entering: if no other
    /// worker is active and jobs wait, or nobody waits on the source, an idle worker is
    /// woken to take over.
    fn blocking(&self, enter: bool) {
        let mut state = self.lock();
        if !enter {
            state.active += 1;
            return;
        }
        state.active = state.active.saturating_sub(1);
        let needed = !state.jobs.is_empty() || (self.source.is_some() && !state.leading);
        let (leading, idle, active) = (state.leading, state.idle, state.active);
        drop(state);
        if needed && active == 0 {
            self.call(leading, idle);
        }
    }

    /// Gets a free worker to the queue: the one waiting on the source if there is one
    /// (it is the one already running when the server is busy), else an idle one.
    fn call(&self, leading: bool, idle: usize) {
        match &self.source {
            Some(source) if leading => source.wake(),
            _ if idle > 0 => self.ready.notify_one(),
            _ => {}
        }
    }
}

/// Given to the handler: marks where the job may block (see [`Queue::blocking`]).
pub struct Busy<'a> {
    hook: &'a dyn Fn(bool),
    depth: Cell<u32>,
}

impl<'a> Busy<'a> {
    /// The worker may block until the guard is dropped (sections may nest).
    pub fn blocking(&self) -> Blocking<'_, 'a> {
        if self.depth.get() == 0 {
            (self.hook)(true);
        }
        self.depth.set(self.depth.get() + 1);
        Blocking(self)
    }
}

/// A section where the worker may block; it ends when dropped (also by a panic).
pub struct Blocking<'b, 'a>(&'b Busy<'a>);

impl Drop for Blocking<'_, '_> {
    fn drop(&mut self) {
        let depth = self.0.depth.get().saturating_sub(1);
        self.0.depth.set(depth);
        if depth == 0 {
            (self.0.hook)(false);
        }
    }
}

/// Worker threads running `handler(worker_index, job, busy)` for each job.
pub struct Pool<T> {
    queue: Arc<Queue<T>>,
    workers: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts `workers` threads named `NAME-i`; at most `capacity` jobs wait beyond the
    /// free workers; jobs also come from `source`.
    pub fn new<F>(
        name: &str,
        workers: usize,
        capacity: usize,
        source: Option<Arc<dyn Source<T>>>,
        handler: F,
    ) -> std::io::Result<Self>
    where
        F: Fn(usize, T, &Busy<'_>) + Send + Sync + 'static,
    {
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                jobs: VecDeque::with_capacity(capacity.min(4096)),
                idle: 0,
                leading: false,
                active: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity,
            source,
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
        let free = |s: &State<T>| s.idle + usize::from(s.leading);
        while free(&queue.lock()) < handles.len() && Instant::now() < until {
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

    /// Queues a job whatever the queue's bound (shutdown hands back the idle
    /// connections to be closed). A closed pool drops it.
    pub fn submit_anyway(&self, job: T) {
        let mut state = self.queue.lock();
        if state.closed {
            return;
        }
        state.jobs.push_back(job);
        let (idle, leading) = (state.idle, state.leading);
        drop(state);
        self.queue.call(leading, idle);
    }

    /// How many threads the pool runs (it never shrinks).
    pub fn size(&self) -> usize {
        self.workers.iter().filter(|h| !h.is_finished()).count()
    }

    /// Takes no more jobs, lets the workers finish the queued ones, and waits for them
    /// until `deadline`. True when every worker has ended.
    pub fn finish(self, deadline: Instant) -> bool {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
        if let Some(source) = &self.queue.source {
            source.wake();
        }
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

type Handler<T> = dyn Fn(usize, T, &Busy<'_>) + Send + Sync;

fn work<T>(index: usize, queue: &Queue<T>, handler: &Handler<T>) {
    let mut batch = Vec::new();
    let hook = |enter| queue.blocking(enter);
    let busy = Busy {
        hook: &hook,
        depth: Cell::new(0),
    };
    let mut done = false;
    while let Some(job) = queue.take(&mut batch, done) {
        done = true;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler(index, job, &busy))) {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            error!("worker {index}: the connection handler panicked ({what}); the worker goes on");
        }
    }
}

//! The event loop under each executor thread: readiness of sockets, deadlines, wake-ups
//! from other threads.
//!
//! smol's own reactor (async-io on `polling`) re-arms a socket's interest for every wait
//! (oneshot mode), and on every `epoll_wait` sets a timerfd and re-arms its notifier:
//! about six system calls per keep-alive request beyond the read and the write. This one
//! does per request only what the request needs:
//!
//! - A socket is registered once, edge-triggered (Linux: epoll). Its readiness is kept as
//!   two flags that an event sets and the task clears when the socket says `WouldBlock`
//!   (or, for reading, when a read came back short: the kernel's receive queue was empty
//!   then, so any later byte brings a new edge).
//! - Deadlines are an ordered map; the nearest is `epoll_wait`'s timeout. No timerfd.
//! - Another thread (the blocking pool finishing a file open, the shutdown) wakes a
//!   sleeping thread through an eventfd, written only while that thread sleeps.
//!
//! Each executor thread runs its own `async_executor::LocalExecutor` (smol's executor)
//! under [`block_on`]: run the executor until it has nothing to do, then wait here. A
//! connection stays on the thread that accepted it, so a wake-up between tasks of one
//! thread is an atomic flag, never a system call.
//!
//! The kernel side is `host::event` (epoll and an eventfd on Linux). Elsewhere, and on
//! Linux with `PORTABLE_IO=1`, it has no edge-triggered mode: the same flags are then
//! driven in oneshot mode, armed when a task starts waiting; that is the path the other
//! platforms take, tested on Linux by CI.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime};

use host::event::{Events, Interest, Mode, Poller, NOTIFY_KEY};

/// The event key of the descriptor given to [`on_readable`].
const HOOK_KEY: usize = usize::MAX - 1;
/// Events taken from the kernel per wait.
const EVENTS: usize = 256;

thread_local! {
    static REACTOR: RefCell<Option<Reactor>> = const { RefCell::new(None) };
    /// Both clocks as read after the thread's last wait (see [`now`]).
    static NOW: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The time as read after this thread's last wait for events: what every task woken by
/// that wait uses, so that both clocks are read once per wait, not several times per
/// request. It lags the real time by the work done since, which is bounded: the executor
/// looks for events (and reads the clocks) after at most 200 tasks.
pub(crate) fn now() -> (Instant, SystemTime) {
    NOW.with(|n| n.get()).unwrap_or_else(read_clocks)
}

fn read_clocks() -> (Instant, SystemTime) {
    let now = (Instant::now(), SystemTime::now());
    NOW.with(|n| n.set(Some(now)));
    now
}

/// One thread's reactor.
struct Reactor {
    poller: Arc<Poller>,
    events: Events,
    slots: Vec<Slot>,
    free: Vec<usize>,
    timers: BTreeMap<(Instant, u64), Waker>,
    /// Tasks that yielded until the next wait for events ([`next_turn`]).
    yielded: Vec<Waker>,
    next_timer: u64,
    /// Called when the descriptor given to [`on_readable`] turns readable.
    #[cfg(target_os = "linux")]
    hook: Option<(std::os::fd::OwnedFd, Box<dyn Fn()>)>,
}

/// The readiness of one registered socket.
#[derive(Default)]
struct Slot {
    /// Bumped when the slot is freed: an event for an earlier socket is ignored.
    generation: u32,
    readable: bool,
    writable: bool,
    /// An event said readable since the last read ([`Io::take_fresh`]).
    fresh: bool,
    /// An event said the peer closed: there is no further edge, so a short read does
    /// not mean the socket is drained (the end of the stream is still to be read).
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Reactor {
    fn new() -> io::Result<Reactor> {
        let poller = Arc::new(Poller::new()?);
        let events = poller.events(EVENTS);
        Ok(Reactor {
            poller,
            events,
            slots: Vec::new(),
            free: Vec::new(),
            timers: BTreeMap::new(),
            yielded: Vec::new(),
            next_timer: 0,
            #[cfg(target_os = "linux")]
            hook: None,
        })
    }

    /// Waits for events (at most `timeout`, less if a timer is due sooner), then wakes
    /// the tasks they concern and every timer that is due. `sleeping` is cleared as soon
    /// as the kernel returns: waking a task from here needs no notification.
    fn wait(&mut self, timeout: Option<Duration>, sleeping: &AtomicBool) -> io::Result<()> {
        // A task yielded to the events: look, do not sleep.
        let timeout = if self.yielded.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let timeout = match self.timers.first_key_value() {
            Some(((at, _), _)) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        };
        let waited = self.poller.wait(&mut self.events, timeout);
        sleeping.store(false, Ordering::SeqCst);
        waited?;
        // The hook first (the cache's change notification): every task woken by this
        // wait then sees what changed before its request came. Also after a full batch,
        // where its event may have been left for the next wait.
        #[cfg(target_os = "linux")]
        if let Some((_, hook)) = &self.hook {
            let full = self.events.len() >= EVENTS;
            if full || self.events.iter().any(|e| e.key == HOOK_KEY) {
                hook();
            }
        }
        for ev in self.events.drain() {
            ready(&mut self.slots, ev);
        }
        // After the events' tasks: they run first.
        for w in self.yielded.drain(..) {
            w.wake();
        }
        let (now, _) = read_clocks();
        if !self.timers.is_empty() {
            while let Some(entry) = self.timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                entry.remove().wake();
            }
        }
        Ok(())
    }
}

/// An event: its slot's flags are set, its waiting tasks woken.
fn ready(slots: &mut [Slot], ev: host::event::Event) {
    let (key, readable, writable) = (ev.key, ev.readable, ev.writable);
    if key == NOTIFY_KEY || key == HOOK_KEY {
        return;
    }
    let (index, generation) = split(key);
    let Some(slot) = slots
        .get_mut(index)
        .filter(|s| s.generation as usize & LOW == generation as usize)
    else {
        return;
    };
    slot.closed |= ev.closed;
    if readable {
        slot.readable = true;
        slot.fresh = true;
        if let Some(w) = slot.reader.take() {
            w.wake();
        }
    }
    if writable {
        slot.writable = true;
        if let Some(w) = slot.writer.take() {
            w.wake();
        }
    }
}

/// An event key: the slot's index in the low half, its generation (truncated) in the
/// high half.
const HALF: u32 = usize::BITS / 2;
const LOW: usize = (1 << HALF) - 1;

fn key(index: usize, generation: u32) -> usize {
    (index & LOW) | (((generation as usize) & LOW) << HALF)
}

fn split(key: usize) -> (usize, u32) {
    (key & LOW, (key >> HALF) as u32)
}

/// Runs `f` with this thread's reactor (inside [`block_on`]).
fn with<R>(f: impl FnOnce(&mut Reactor) -> R) -> R {
    REACTOR.with(|r| {
        let mut r = r.borrow_mut();
        f(r.as_mut()
            .expect("an executor thread runs inside reactor::block_on"))
    })
}

/// The waker of [`block_on`]: a flag, plus a notification when the thread sleeps.
struct Unparker {
    woken: AtomicBool,
    sleeping: AtomicBool,
    notifier: Arc<Poller>,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::SeqCst) && self.sleeping.load(Ordering::SeqCst) {
            self.notifier.notify();
        }
    }
}

/// Runs `future` (an executor's `run`) on this thread with a reactor of its own:
/// polls it, and while it waits, waits for events.
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> io::Result<T> {
    let reactor = Reactor::new()?;
    let notifier = Arc::clone(&reactor.poller);
    REACTOR.with(|r| *r.borrow_mut() = Some(reactor));
    let unparker = Arc::new(Unparker {
        woken: AtomicBool::new(false),
        sleeping: AtomicBool::new(false),
        notifier,
    });
    let waker = Waker::from(Arc::clone(&unparker));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let result = loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            break Ok(value);
        }
        // Woken while it ran (more tasks ready): only look for new events.
        let timeout = if unparker.woken.swap(false, Ordering::SeqCst) {
            Some(Duration::ZERO)
        } else {
            unparker.sleeping.store(true, Ordering::SeqCst);
            if unparker.woken.swap(false, Ordering::SeqCst) {
                Some(Duration::ZERO)
            } else {
                None
            }
        };
        let waited = with(|r| r.wait(timeout, &unparker.sleeping));
        if let Err(e) = waited {
            break Err(e);
        }
    };
    REACTOR.with(|r| *r.borrow_mut() = None);
    result
}

/// Watches `fd` on this thread (Linux's epoll only; elsewhere `false`): when it turns
/// readable, `hook` runs inside the reactor's wait, before any task woken by the same
/// wait runs. `hook` must empty `fd` (edge-triggered).
#[cfg(target_os = "linux")]
pub(crate) fn on_readable(fd: std::os::fd::OwnedFd, hook: impl Fn() + 'static) -> bool {
    with(|r| {
        if !r.poller.has_edge()
            || r.poller
                .add(&fd, HOOK_KEY, Interest::READ, Mode::Edge)
                .is_err()
        {
            return false;
        }
        // Whatever came before it was registered.
        hook();
        r.hook = Some((fd, Box::new(hook)));
        true
    })
}

/// Wakes every task of this thread that waits for a socket to turn readable (they look
/// again, and find what changed: the server shutting down).
/// Lets every other task of this thread run, and the reactor look for events, before
/// the caller goes on. A plain `yield_now` only requeues the task: the executor looks for
/// events after 200 tasks, so a task that is always ready (a big download whose steps
/// the page cache holds) would keep a small request whose bytes came meanwhile waiting
/// for 200 of its steps (about 200 MiB).
pub(crate) async fn next_turn() {
    let mut queued = false;
    std::future::poll_fn(|cx| {
        if queued {
            return Poll::Ready(());
        }
        queued = true;
        with(|r| r.yielded.push(cx.waker().clone()));
        Poll::Pending
    })
    .await
}

pub(crate) fn wake_readers() {
    with(|r| {
        for slot in &mut r.slots {
            if let Some(w) = slot.reader.take() {
                slot.readable = true;
                w.wake();
            }
        }
    });
}

/// A socket (or descriptor) registered with this thread's reactor. Not `Send`: it stays
/// on the thread that made it.
pub(crate) struct Io<T: polling::AsSource> {
    io: T,
    key: usize,
    _local: std::marker::PhantomData<*const ()>,
}

/// Which way a task waits.
#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

impl<T: polling::AsSource> Io<T> {
    /// Registers `io` (already non-blocking) with this thread's reactor. It starts out
    /// writable (the first write is tried at once) and not readable: registering it
    /// reports what already waits in it (epoll checks at `EPOLL_CTL_ADD`; the oneshot
    /// interest is armed with the first wait), so no read is spent on a socket whose
    /// first bytes have not come yet.
    pub(crate) fn new(io: T) -> io::Result<Io<T>> {
        let key = with(|r| -> io::Result<usize> {
            let index = r.free.pop().unwrap_or_else(|| {
                r.slots.push(Slot::default());
                r.slots.len() - 1
            });
            let slot = &mut r.slots[index];
            slot.readable = false;
            slot.writable = true;
            let key = key(index, slot.generation);
            // Edge-triggered for both ways, once; else oneshot, armed for each wait.
            let added = if r.poller.has_edge() {
                r.poller.add(&io, key, Interest::BOTH, Mode::Edge)
            } else {
                let none = Interest {
                    read: false,
                    write: false,
                };
                r.poller.add(&io, key, none, Mode::Oneshot)
            };
            if let Err(e) = added {
                r.slots[index].generation = r.slots[index].generation.wrapping_add(1);
                r.free.push(index);
                return Err(e);
            }
            Ok(key)
        })?;
        Ok(Io {
            io,
            key,
            _local: std::marker::PhantomData,
        })
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// Waits until the socket may be readable: at once unless the last read said it
    /// was drained ([`Io::drained`]).
    pub(crate) async fn readable(&self) {
        self.ready(Dir::Read).await
    }

    /// Waits until the socket may take more: at once unless the last write was refused
    /// ([`Io::full`]).
    pub(crate) async fn writable(&self) {
        self.ready(Dir::Write).await
    }

    /// The socket said `WouldBlock` on a read, or a read came back short: wait for the
    /// next event before reading again.
    pub(crate) fn drained(&self) {
        self.clear(Dir::Read);
    }

    /// Whether an event said readable since the last call, and this thread has a hook
    /// ([`on_readable`]): then the bytes read now came (at least in part) before this
    /// thread's last wait, and the hook ran after them.
    pub(crate) fn take_fresh(&self) -> bool {
        with(|r| {
            let fresh = std::mem::take(&mut r.slots[split(self.key).0].fresh);
            // Only Linux has the hook (the cache's change notification).
            #[cfg(target_os = "linux")]
            let hooked = r.hook.is_some();
            #[cfg(not(target_os = "linux"))]
            let hooked = false;
            fresh && hooked
        })
    }

    /// The socket said `WouldBlock` on a write.
    pub(crate) fn full(&self) {
        self.clear(Dir::Write);
    }

    fn clear(&self, dir: Dir) {
        with(|r| {
            let slot = &mut r.slots[split(self.key).0];
            match dir {
                // After the peer closed no edge comes: keep reading until the end.
                Dir::Read => slot.readable = slot.closed,
                Dir::Write => slot.writable = false,
            }
        });
    }

    fn ready(&self, dir: Dir) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            with(|r| {
                let slot = &mut r.slots[split(self.key).0];
                let (flag, waker) = match dir {
                    Dir::Read => (slot.readable, &mut slot.reader),
                    Dir::Write => (slot.writable, &mut slot.writer),
                };
                if flag {
                    return Poll::Ready(());
                }
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                if !r.poller.has_edge() {
                    // Oneshot: arm what is waited for now.
                    let interest = Interest {
                        read: slot.reader.is_some(),
                        write: slot.writer.is_some(),
                    };
                    if r.poller
                        .modify(&self.io, self.key, interest, Mode::Oneshot)
                        .is_err()
                    {
                        // Not watchable any more: let the task try, and see the error.
                        slot.readable = true;
                        slot.writable = true;
                        return Poll::Ready(());
                    }
                }
                Poll::Pending
            })
        })
    }
}

impl<T: polling::AsSource> Drop for Io<T> {
    fn drop(&mut self) {
        let _ = REACTOR.try_with(|r| {
            let Ok(mut r) = r.try_borrow_mut() else {
                return;
            };
            let Some(r) = r.as_mut() else { return };
            if !r.poller.has_edge() {
                let _ = r.poller.delete(&self.io);
            }
            // epoll forgets a socket when it is closed; an event still on its way finds
            // the generation moved on.
            let index = split(self.key).0;
            let slot = &mut r.slots[index];
            *slot = Slot {
                generation: slot.generation.wrapping_add(1),
                ..Slot::default()
            };
            r.free.push(index);
        });
    }
}

/// A deadline: a future that completes at (or just after) an instant. It can be moved
/// while it waits; `never` waits forever.
pub(crate) struct Timer {
    at: Option<Instant>,
    /// Its entry in the reactor's map while it waits.
    entry: Option<(Instant, u64)>,
}

impl Timer {
    pub(crate) fn never() -> Timer {
        Timer {
            at: None,
            entry: None,
        }
    }

    pub(crate) fn after(wait: Duration) -> Timer {
        Timer {
            at: Some(now().0 + wait),
            entry: None,
        }
    }

    /// Moves the deadline.
    pub(crate) fn set_at(&mut self, at: Instant) {
        self.unregister();
        self.at = Some(at);
    }

    fn unregister(&mut self) {
        if let Some(entry) = self.entry.take() {
            let _ = REACTOR.try_with(|r| {
                if let Ok(mut r) = r.try_borrow_mut() {
                    if let Some(r) = r.as_mut() {
                        r.timers.remove(&entry);
                    }
                }
            });
        }
    }
}

impl Future for Timer {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.at else {
            return Poll::Pending;
        };
        // The reactor wakes it once its own reading of the clock is past `at`.
        if now().0 >= at {
            self.unregister();
            self.at = None;
            return Poll::Ready(());
        }
        let entry = self.entry;
        let entry = with(
            |r| match entry.and_then(|e| r.timers.get_mut(&e).map(|w| (e, w))) {
                Some((e, w)) => {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                    e
                }
                None => {
                    let e = (at, r.next_timer);
                    r.next_timer += 1;
                    r.timers.insert(e, cx.waker().clone());
                    e
                }
            },
        );
        self.entry = Some(entry);
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.unregister();
    }
}

//! One connection in the shared in-memory driver ([`protocol::sim::Driver`]), checked
//! after every input: the [`Checker`] looks at the actions, the [`Shadow`] follows the
//! client's bytes, and what the connection says of itself (`wait()`, `ignored()`) must
//! agree with both.

use protocol::sim::{Driver, Owes, Record, Start, World};
use protocol::{Input, Now, Wait};

use crate::check::{Checker, Step};
use crate::shadow::Shadow;
use crate::{config, BODY_TIMEOUT_MS, MAX_REQUESTS, SEED, UNIX_START};

/// One connection and everything the harness tracks about it.
pub struct Harness<W> {
    /// The connection, the clock, the world that answers its actions, and every action
    /// (`driver.log`: the `split` target compares these).
    pub driver: Driver<W>,
    pub checker: Checker,
    pub shadow: Shadow,
}

impl<W: World> Harness<W> {
    /// A connection with the fuzzing configuration, at [`UNIX_START`], its actions
    /// executed against `world`.
    pub fn new(max_body: u64, dir_listing: bool, world: W) -> Self {
        let start = Start {
            unix_secs: UNIX_START,
            seed: SEED,
        };
        let mut driver = Driver::new(config(max_body, dir_listing), world, start);
        driver.record = Record::Actions;
        Harness {
            driver,
            checker: Checker::new(MAX_REQUESTS, max_body, dir_listing),
            shadow: Shadow::new(max_body),
        }
    }

    pub fn now(&self) -> Now {
        self.driver.now
    }

    /// Moves the clock forward by `ms` (both clocks, the wall clock in whole seconds).
    pub fn advance(&mut self, ms: u64) {
        self.driver.advance_ms(ms);
    }

    /// Hands one input to the connection at the current time and checks the actions it
    /// produced, and the state it is left in.
    pub fn step(&mut self, input: Input<'_>) {
        let now = self.driver.now;
        let due = self.driver.deadline().is_some_and(|d| now.mono_ms >= d);
        let step = Step::of(&input, due);
        let expected = self.checker.expects(step);
        let drain_closes = expected && self.drain_must_close(step);
        let ignored = self.driver.conn.ignored();
        let answered = self.checker.answer_out;
        if let Input::Received(bytes) = input {
            if !self.checker.closed {
                self.shadow.feed(bytes);
            }
        }
        let listing = match input {
            Input::DirListed(Ok(listing)) => Some(listing),
            _ => None,
        };
        self.driver.handle(input);
        let actions = self.driver.actions();
        let counted = self.driver.conn.ignored() - ignored;
        if expected {
            assert_eq!(
                counted, 0,
                "an expected input ({step:?}) counted as ignored"
            );
            self.checker
                .check(step, now, actions, &self.shadow, listing.as_ref());
        } else {
            assert!(
                self.driver.records.is_empty(),
                "a record after an unexpected input"
            );
            assert_eq!(
                counted, 1,
                "an unexpected input ({step:?}) not counted once as ignored"
            );
            assert!(
                actions.is_empty(),
                "an unexpected input ({step:?}) produced {actions:?}"
            );
        }
        if drain_closes {
            assert_eq!(
                actions,
                [protocol::Action::Close],
                "drained while idle ({step:?}) and not closed"
            );
        }
        if expected {
            let records = std::mem::take(&mut self.driver.records);
            self.checker.check_records(step, now, answered, &records);
        }
        self.check_state();
    }

    /// A drained connection with nothing in flight and nothing but idle time received
    /// (empty lines are idle time: found by this target, `Received("\r\n")` then `Drain`
    /// once left a connection open until the idle timeout) must close at once (on
    /// `Drain`, or once its last answer is written).
    fn drain_must_close(&self, step: Step) -> bool {
        let c = &self.checker;
        let idle =
            self.shadow.idle() && c.pending.is_none() && c.finals as usize == self.shadow.complete;
        idle && !c.close_pending
            && match step {
                Step::Drain => !c.unwritten,
                Step::Written => c.draining,
                _ => false,
            }
    }

    /// What the connection says it waits for (`wait()`) agrees with the checker's model,
    /// and so do the driver's books: closed exactly when `Close` was handed out; while
    /// bytes are unwritten or a result is owed, it waits for the runtime (no deadline);
    /// otherwise it waits for the client, until a deadline no later than the longest
    /// timeout from now, and is idle exactly when the shadow has nothing but empty lines
    /// after the last request.
    fn check_state(&self) {
        let c = &self.checker;
        let wait = self.driver.wait();
        assert_eq!(
            c.closed,
            wait == Wait::Closed,
            "wait() is {wait:?}, and Close was handed out: {}",
            c.closed
        );
        assert_eq!(
            self.driver.owes(),
            c.owes(),
            "the driver's books disagree with the checker's model"
        );
        if c.closed {
            return;
        }
        if c.unwritten {
            assert_eq!(
                wait,
                Wait::Runtime,
                "bytes are unwritten, and the connection waits for {wait:?}"
            );
        } else if c.pending.is_some() {
            assert_eq!(
                wait,
                Wait::Runtime,
                "waiting for the runtime's answer to {:?}, and the connection waits for \
                 {wait:?}",
                c.pending
            );
        } else {
            let Wait::Read { until, idle } = wait else {
                panic!("neither waiting for the runtime nor for the client: {wait:?}");
            };
            let now = self.driver.now.mono_ms;
            assert!(
                until <= now.saturating_add(BODY_TIMEOUT_MS),
                "a deadline {until} past the longest timeout from {now}"
            );
            assert_eq!(
                idle,
                self.shadow.idle(),
                "wait() says idle: {idle}, and the client sent {:?} after its last request",
                String::from_utf8_lossy(self.shadow.unparsed())
            );
        }
    }

    /// Bytes from the client (none after EOF: a runtime reads nothing more).
    pub fn receive(&mut self, bytes: &[u8]) {
        if !self.checker.eof {
            self.step(Input::Received(bytes));
        }
    }

    /// Jumps to the connection's deadline (or 1 ms before it) if it is later than now,
    /// and hands in `Timeout`.
    pub fn at_deadline(&mut self, before: bool) {
        if let Some(d) = self.driver.deadline() {
            let target = if before { d.saturating_sub(1) } else { d };
            if target > self.driver.now.mono_ms {
                self.driver.set_time(target);
            }
        }
        self.step(Input::Timeout);
    }

    /// Does the one thing the connection waits for against the world (the driver's
    /// [`Driver::answer`]: opens the file, lists the directory, stores the upload, or
    /// reports the answer written), and checks it. With nothing awaited, hands in a stray
    /// `Written`.
    pub fn serve(&mut self) {
        match self.driver.answer() {
            Some(answer) => self.step(answer.input()),
            None => self.step(Input::Written),
        }
    }

    /// Does everything the connection waits for, `ms` apart, up to `limit` inputs,
    /// `choose` preparing the world before each answer; returns whether it ended with
    /// nothing awaited.
    pub fn serve_all(&mut self, ms: u64, limit: usize, mut choose: impl FnMut(&mut W)) -> bool {
        for _ in 0..limit {
            if self.driver.owes() == Owes::Nothing {
                return true;
            }
            self.advance(ms);
            choose(&mut self.driver.world);
            self.serve();
        }
        self.driver.owes() == Owes::Nothing
    }
}

//! # sim — one connection driven in memory, at a simulated time
//!
//! Compiled only with the `sim` feature. The one in-memory runtime shared by the
//! protocol tests (`protocol/tests/`), the fuzz harness (`fuzz/`) and the criterion
//! benchmark (`protocol/benches/core.rs`):
//!
//! - a [`Driver`] owns a [`Connection`] and a simulated clock ([`Now`]: the wall clock
//!   is `start + mono_ms / 1000`) and hands it inputs at that time;
//! - it keeps a runtime's books: what it owes the connection ([`Owes`]: a file, a
//!   listing, an upload, or `Written` for what was sent), the `Send` buffers to hand
//!   back with [`Connection::recycle`] once written, whether it closed;
//! - it executes the actions against a [`World`] the caller supplies (a fake file
//!   system, directory listings, an upload store: [`Tables`] for tests, a script for
//!   the fuzz targets, a constant for the benchmark), either one at a time
//!   ([`Driver::answer`], the caller hands the [`Answer`] in) or all of them
//!   ([`Driver::run`]: each after its simulated time, `open_ms`, `upload_ms`,
//!   `write_ms`, then `Written` unless `hold_writes`);
//! - it records what came out ([`Record`]): nothing, the actions, or [`Out`] values
//!   with every response parsed and its `Date` checked against the clock; and, with
//!   [`Config::records`], it takes the connection's request records after every input
//!   ([`Driver::records`]), as a runtime does.
//!
//! Like the rest of the crate it does no I/O: no clock, no file, no thread, no
//! randomness (tables are `BTreeMap`s); it builds for `wasm32-unknown-unknown`.
//!
//! ```
//! use protocol::sim::{Driver, Start, Tables};
//! use protocol::Config;
//!
//! let mut world = Tables::default();
//! world.files.insert("index.html".into(), Tables::file(5, 1_700_000_000));
//! let mut d = Driver::new(Config::new("127.0.0.1", 8080, &[]), world, Start::default());
//! d.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
//! assert_eq!(d.status(), 200);
//! ```

mod h2;
mod record;
mod world;

use std::sync::Arc;

pub use h2::{raw as h2_raw, Frame2, H2Driver, Reply as H2Reply};
pub use record::{Out, Record, Resp};
pub use world::{dir_listed, Answer, DirAnswer, Tables, World};

use crate::{Action, Config, Connection, Input, Now, RequestRecord, Wait, CONTINUE};

/// Where the simulated clocks start, and the connection's random seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// The wall clock (`Now::unix_secs`) when `mono_ms` is 0.
    pub unix_secs: u64,
    /// The 16 random bytes upload names derive from.
    pub seed: [u8; 16],
}

impl Default for Start {
    /// 2027-01-15 (1,800,000,000 s), seed `[42; 16]`.
    fn default() -> Self {
        Start {
            unix_secs: 1_800_000_000,
            seed: [42; 16],
        }
    }
}

/// What the runtime owes the connection: the result of the action it handed out last,
/// or `Written` for bytes handed out and not yet written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owes {
    File,
    List,
    Upload,
    Verify,
    Begin,
    Chunk,
    Commit,
    Delete,
    Compress,
    Archive,
    Write,
    Nothing,
}

/// The most actions one input may produce before the driver calls it endless.
const MAX_ACTIONS: usize = 10_000;

/// Drives one connection the way a runtime does, in memory and at a simulated time.
pub struct Driver<W> {
    pub conn: Connection,
    /// The time of the next input; see [`Driver::advance_ms`].
    pub now: Now,
    /// The file system, directories and upload store actions are executed against.
    pub world: W,
    /// What is kept of the actions ([`Record::Out`] unless changed).
    pub record: Record,
    /// [`Out`] values, with [`Record::Out`].
    pub out: Vec<Out>,
    /// Every action, with [`Record::Actions`].
    pub log: Vec<Action>,
    /// How long [`Driver::run`] takes to open a file or read a directory, to store an
    /// upload, and to write an answer out (then it hands in [`Input::Written`]).
    pub open_ms: u64,
    pub upload_ms: u64,
    pub write_ms: u64,
    /// [`Driver::run`] leaves answers unwritten (no `Written`) until
    /// [`Driver::written`].
    pub hold_writes: bool,
    /// The connection handed out `Close`.
    pub closed: bool,
    /// Bytes handed out so far (`Send`, `Continue` and `SendFile` lengths).
    pub sent_bytes: u64,
    /// How many `AbortUpload`s were handed out.
    pub aborts: u32,
    /// The request records taken from the connection after each input, in order (only
    /// with [`Config::records`]; the caller may empty it).
    pub records: Vec<RequestRecord>,
    unix_start: u64,
    /// The actions of the last input, until the next input (or [`Driver::answer`])
    /// files them away.
    batch: Vec<Action>,
    /// The result owed for the file, listing or upload handed out last (never `Write`:
    /// unwritten bytes are `unwritten`).
    owes: Owes,
    /// Bytes handed out and not yet reported written.
    unwritten: bool,
    /// The action whose result is owed, once filed away from `batch`.
    owed: Option<Action>,
    /// `Send` buffers handed out, recycled into the connection once written.
    sent: Vec<Vec<u8>>,
}

impl<W: World> Driver<W> {
    /// A new connection at `mono_ms` 0, recording [`Out`] values, with the delays of a
    /// real runtime: 250 ms to open a file or read a directory, 1.5 s to store an
    /// upload, 40 ms to write an answer.
    pub fn new(config: impl Into<Arc<Config>>, world: W, start: Start) -> Self {
        let now = Now::new(0, start.unix_secs);
        Driver {
            conn: Connection::new(config.into(), now, start.seed, "sim"),
            now,
            world,
            record: Record::Out,
            out: Vec::new(),
            log: Vec::new(),
            open_ms: 250,
            upload_ms: 1_500,
            write_ms: 40,
            hold_writes: false,
            closed: false,
            sent_bytes: 0,
            aborts: 0,
            records: Vec::new(),
            unix_start: start.unix_secs,
            batch: Vec::new(),
            owes: Owes::Nothing,
            unwritten: false,
            owed: None,
            sent: Vec::new(),
        }
    }

    // ----- the clock -----

    /// Moves both clocks forward by `ms` (the wall clock in whole seconds).
    pub fn advance_ms(&mut self, ms: u64) -> &mut Self {
        self.set_time(self.now.mono_ms.saturating_add(ms))
    }

    /// Sets the monotonic clock (and the wall clock with it).
    pub fn set_time(&mut self, mono_ms: u64) -> &mut Self {
        self.now.mono_ms = mono_ms;
        self.now.unix_secs = self.unix_start.saturating_add(mono_ms / 1000);
        self
    }

    // ----- one input at a time -----

    /// Hands one input to the connection at the current time and takes every action it
    /// produced (kept as [`Driver::record`] says); executes none of them.
    pub fn handle(&mut self, input: Input<'_>) -> &[Action] {
        self.file_away();
        let was_closed = self.closed;
        if !was_closed {
            self.settle(&input);
        }
        self.conn.handle(self.now, input);
        while let Some(record) = self.conn.take_record() {
            self.records.push(record);
        }
        let conn = &mut self.conn;
        for action in std::iter::from_fn(|| conn.poll()) {
            self.batch.push(action);
            assert!(self.batch.len() < MAX_ACTIONS, "endless actions");
        }
        assert!(
            !was_closed || self.batch.is_empty(),
            "actions after Close: {:?}",
            self.batch
        );
        for action in &self.batch {
            match action {
                Action::Send(_) | Action::Continue | Action::SendFile { .. } => {
                    self.unwritten = true;
                    self.sent_bytes = self.sent_bytes.saturating_add(sent_len(action));
                }
                Action::OpenFile(_) => self.owes = Owes::File,
                Action::ListDir(_) => self.owes = Owes::List,
                Action::WriteUpload { .. } => self.owes = Owes::Upload,
                Action::Verify(_) => self.owes = Owes::Verify,
                Action::BeginUpload { .. } => self.owes = Owes::Begin,
                Action::WriteChunk(_) => self.owes = Owes::Chunk,
                Action::CommitUpload { .. } => self.owes = Owes::Commit,
                Action::DeleteFile(_) => self.owes = Owes::Delete,
                Action::Compress { .. } => self.owes = Owes::Compress,
                Action::Archive { .. } => self.owes = Owes::Archive,
                Action::AbortUpload => {
                    self.aborts += 1;
                    self.world.abort();
                }
                Action::Close => {
                    self.closed = true;
                    self.owes = Owes::Nothing;
                }
            }
        }
        match self.record {
            Record::Nothing => {}
            Record::Actions => self.log.extend_from_slice(&self.batch),
            Record::Out => {
                for action in &self.batch {
                    record::record(&mut self.out, action, self.now);
                }
            }
        }
        &self.batch
    }

    /// The actions the last input produced.
    pub fn actions(&self) -> &[Action] {
        &self.batch
    }

    /// What the runtime owes the connection now.
    pub fn owes(&self) -> Owes {
        match self.owes {
            Owes::Nothing if self.unwritten && !self.closed => Owes::Write,
            owes => owes,
        }
    }

    /// Does what is owed, against the world: opens the file, reads the directory,
    /// stores the upload, or (bytes handed out) says they are written. `None` when
    /// nothing is owed. Time does not move; hand the answer in with
    /// `handle(answer.input())`.
    pub fn answer(&mut self) -> Option<Answer> {
        self.file_away();
        Some(match (self.owes(), &self.owed) {
            (Owes::Nothing, _) => return None,
            (Owes::Write, _) => Answer::Written,
            (Owes::File, Some(Action::OpenFile(path))) => {
                Answer::File(self.world.open(path.as_str()))
            }
            (Owes::List, Some(Action::ListDir(dir))) => Answer::List(self.world.list(dir.as_str())),
            (Owes::Upload, Some(Action::WriteUpload { name, body })) => {
                Answer::Upload(self.world.store(name, body))
            }
            (Owes::Verify, Some(Action::Verify(credentials))) => {
                Answer::Verified(self.world.verify(credentials))
            }
            (Owes::Begin, Some(Action::BeginUpload { target })) => {
                Answer::Begun(self.world.begin(target))
            }
            (Owes::Chunk, Some(Action::WriteChunk(bytes))) => {
                Answer::ChunkWritten(self.world.chunk(bytes))
            }
            (Owes::Commit, Some(Action::CommitUpload { target, replace })) => {
                Answer::Committed(self.world.commit(target, *replace))
            }
            (Owes::Compress, Some(Action::Compress { coding, stream })) => {
                Answer::Compressed(self.world.compress(*coding, *stream))
            }
            (Owes::Archive, Some(Action::Archive { dir, user, .. })) => {
                Answer::Archived(self.world.archive(dir.as_str(), user.as_deref()))
            }
            (Owes::Delete, Some(Action::DeleteFile(path))) => {
                Answer::Deleted(self.world.delete(path.as_str()))
            }
            (owes, owed) => unreachable!("owes {owes:?} for {owed:?}"),
        })
    }

    /// Files the last batch away: the `Send` buffers until they are written, the action
    /// whose result is owed.
    fn file_away(&mut self) {
        for action in self.batch.drain(..) {
            match action {
                Action::Send(buf) => self.sent.push(buf),
                a @ (Action::OpenFile(_)
                | Action::ListDir(_)
                | Action::WriteUpload { .. }
                | Action::Verify(_)
                | Action::BeginUpload { .. }
                | Action::WriteChunk(_)
                | Action::CommitUpload { .. }
                | Action::DeleteFile(_)
                | Action::Compress { .. }
                | Action::Archive { .. }) => self.owed = Some(a),
                _ => {}
            }
        }
    }

    /// Before an input: what it settles of what was owed (an input the connection does
    /// not expect settles nothing, as the connection ignores it).
    fn settle(&mut self, input: &Input<'_>) {
        let settled = match input {
            Input::FileOpened(_) => self.owes == Owes::File,
            Input::DirListed(_) => self.owes == Owes::List,
            Input::UploadWritten(_) => self.owes == Owes::Upload,
            Input::Verified(_) => self.owes == Owes::Verify,
            Input::UploadBegun(_) => self.owes == Owes::Begin,
            Input::ChunkWritten(_) => self.owes == Owes::Chunk,
            Input::UploadCommitted(_) => self.owes == Owes::Commit,
            Input::Deleted(_) => self.owes == Owes::Delete,
            Input::Compressed(_) => self.owes == Owes::Compress,
            Input::Archived(_) => self.owes == Owes::Archive,
            Input::Written if self.unwritten => {
                self.unwritten = false;
                for buf in self.sent.drain(..) {
                    self.conn.recycle(buf);
                }
                false
            }
            Input::WriteFailed if self.unwritten => {
                self.unwritten = false;
                self.sent.clear();
                false
            }
            _ => false,
        };
        if settled {
            self.owes = Owes::Nothing;
            self.owed = None;
        }
    }

    // ----- everything, as a runtime does -----

    /// Does everything owed, in order, each after its time (`open_ms`, `upload_ms`,
    /// `write_ms`); leaves answers unwritten with `hold_writes`.
    pub fn run(&mut self) -> &mut Self {
        for _ in 0..MAX_ACTIONS * 100 {
            let delay = match self.owes() {
                Owes::Nothing => return self,
                Owes::Write if self.hold_writes => return self,
                Owes::File | Owes::List => self.open_ms,
                Owes::Upload | Owes::Verify | Owes::Commit => self.upload_ms,
                Owes::Begin | Owes::Chunk | Owes::Delete | Owes::Compress | Owes::Archive => {
                    self.open_ms
                }
                Owes::Write => self.write_ms,
            };
            self.advance_ms(delay);
            let answer = self.answer().expect("an answer for what is owed");
            self.handle(answer.input());
        }
        panic!("the runtime's work never ends");
    }

    /// Hands in one input at the current time, then does everything owed ([`Driver::run`]).
    pub fn input(&mut self, input: Input<'_>) -> &mut Self {
        self.handle(input);
        self.run()
    }

    /// Bytes from the client.
    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.input(Input::Received(bytes))
    }

    /// The client half-closes.
    pub fn eof(&mut self) -> &mut Self {
        self.input(Input::Eof)
    }

    /// The timer fires (whether or not the deadline has come).
    pub fn fire_timeout(&mut self) -> &mut Self {
        self.input(Input::Timeout)
    }

    /// Reports the held answers written (after `write_ms`), and goes on.
    pub fn written(&mut self) -> &mut Self {
        self.hold_writes = false;
        self.run()
    }
}

impl<W> Driver<W> {
    /// What the connection waits for.
    pub fn wait(&self) -> Wait {
        self.conn.wait()
    }

    /// The deadline of the connection's wait for the client (`None`: it waits for the
    /// runtime, or is closed).
    pub fn deadline(&self) -> Option<u64> {
        deadline(&self.conn)
    }

    /// Whether the connection is between requests ([`Wait::Read`] `idle`).
    pub fn is_idle(&self) -> bool {
        matches!(self.conn.wait(), Wait::Read { idle: true, .. })
    }

    /// The responses recorded ([`Record::Out`]).
    pub fn responses(&self) -> Vec<&Resp> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Out::Resp(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The one response recorded (panics unless there is exactly one).
    pub fn only(&self) -> &Resp {
        let r = self.responses();
        assert_eq!(r.len(), 1, "expected one response, got {:#?}", self.out);
        r[0]
    }

    /// The status of the one response.
    pub fn status(&self) -> u16 {
        self.only().status
    }
}

/// How many bytes an action hands to the socket.
fn sent_len(action: &Action) -> u64 {
    match action {
        Action::Send(bytes) => bytes.len() as u64,
        Action::Continue => CONTINUE.len() as u64,
        Action::SendFile { len, .. } => *len,
        _ => 0,
    }
}

/// The deadline of a connection's wait for the client, if it waits for the client.
pub fn deadline(conn: &Connection) -> Option<u64> {
    match conn.wait() {
        Wait::Read { until, .. } => Some(until),
        _ => None,
    }
}

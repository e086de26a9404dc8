//! The shared in-memory driver itself (`protocol::sim`, used by these tests, the
//! benchmark and the fuzz targets): its books of what the runtime owes, the world it
//! answers from, its clock and what it records.
mod common;
use common::*;
use protocol::sim::{Answer, Owes, Record};
use protocol::{Action, Input, Wait};

t!(the_books_follow_the_actions {
    let mut d = driver();
    d.handle(Input::Received(&get("/sample.txt")));
    assert!(matches!(d.actions(), [Action::OpenFile(p)] if p.as_str() == "sample.txt"));
    assert_eq!(d.owes(), Owes::File);
    assert_eq!(d.wait(), Wait::Runtime);
    // A result the connection did not ask for settles nothing (it is ignored).
    d.handle(Input::UploadWritten(Ok(())));
    assert_eq!((d.owes(), d.conn.ignored()), (Owes::File, 1));
    // The world answers what is owed; time moves only when the caller says.
    let now = d.now;
    let answer = d.answer().expect("a file is owed");
    assert_eq!(answer, Answer::File(web_root().files["sample.txt"]));
    assert_eq!(d.now, now);
    d.handle(answer.input());
    assert!(matches!(d.actions(), [Action::Send(_), Action::SendFile { offset: 0, len: 218 }]));
    assert_eq!(d.owes(), Owes::Write);
    assert_eq!(d.answer(), Some(Answer::Written));
    d.handle(Input::Written);
    assert_eq!(d.owes(), Owes::Nothing);
    assert_eq!(d.answer(), None);
    assert!(d.is_idle());
});

t!(run_takes_the_runtimes_time {
    let mut d = driver();
    (d.open_ms, d.upload_ms, d.write_ms) = (100, 2_000, 30);
    d.send(&get("/"));
    assert_eq!(d.now.mono_ms, 130, "opened, then written");
    d.send(&upload("{}"));
    assert_eq!(d.now.mono_ms, 2_160, "stored, then written");
    assert_eq!(d.now.unix_secs, T0 + 2);
    assert_eq!(d.deadline(), Some(2_160 + 30_000));
    d.hold_writes = true;
    d.send(&get("/"));
    assert_eq!(d.owes(), Owes::Write);
    d.written();
    assert_eq!(d.owes(), Owes::Nothing);
});

t!(it_counts_what_it_sends_and_records_as_asked {
    let mut d = driver();
    d.record = Record::Actions;
    d.send(&req("POST", "/upload", "Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"));
    assert_eq!(d.log, [Action::Continue]);
    assert_eq!(d.sent_bytes, protocol::CONTINUE.len() as u64);
    d.send(b"{}");
    assert!(matches!(&d.log[1..], [Action::WriteUpload { .. }, Action::Send(_)]));
    assert_eq!(d.world.uploads.len(), 1);
    assert!(d.out.is_empty(), "only actions recorded");
    let mut d = driver();
    d.record = Record::Nothing;
    d.send(&get("/")).send(&req("GET", "/", "Connection: close\r\n"));
    assert!(d.out.is_empty() && d.log.is_empty());
    assert!(d.closed);
    assert_eq!(d.wait(), Wait::Closed);
    assert_eq!(d.owes(), Owes::Nothing);
});

t!(a_failed_write_owes_nothing_more {
    let mut d = driver();
    d.hold_writes = true;
    d.send(&get("/"));
    d.handle(Input::WriteFailed);
    assert_eq!(d.actions(), [Action::Close]);
    assert_eq!(d.owes(), Owes::Nothing);
    // After Close, inputs are ignored and settle nothing.
    d.handle(Input::Written);
    assert!(d.actions().is_empty());
    assert_eq!(d.conn.ignored(), 1);
});

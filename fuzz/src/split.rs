//! The `split` target: the same request bytes fed whole and cut into pieces must give
//! the same actions, byte for byte (a differential check of the incremental parser and
//! the body decoder), with every `connection` invariant checked in both runs.

use protocol::Action;
use protocol::Input;

use crate::fake::Hashed;
use crate::harness::Harness;
use crate::script::Reader;
use crate::MAX_BODIES;

/// Feeds `pieces` to a fresh connection; after each piece the runtime does everything
/// awaited, the same way in every run ([`Hashed`]: files opened by
/// [`crate::fake::split_file_answer`], directories listed by
/// [`crate::fake::split_dir_answer`], uploads stored), and every answer is reported
/// `Written` as soon as it is handed out (so the next pipelined request is read); time
/// stands still. Returns every action.
pub fn run_pieces(max_body: u64, dir_listing: bool, pieces: &[&[u8]], eof: bool) -> Vec<Action> {
    let mut h = Harness::new(max_body, dir_listing, Hashed);
    let catch_up = |h: &mut Harness<Hashed>| {
        assert!(h.serve_all(0, 256, |_| {}), "endless answers");
    };
    for piece in pieces {
        h.receive(piece);
        catch_up(&mut h);
    }
    if eof {
        h.step(Input::Eof);
        catch_up(&mut h);
        assert!(h.checker.closed, "open after EOF");
    }
    h.driver.log
}

/// The `split` target. Byte 0: `max_body` (bits 0–1), whether EOF follows (bit 2) and
/// directory listings on (bit 3); byte 1: how many split points (mod 16), each a u16 (mod the data length); the rest
/// is the request bytes, fed whole and then cut at those points.
pub fn run_split(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = r.byte();
    let max_body = MAX_BODIES[usize::from(flags % 4)];
    let eof = flags & 4 != 0;
    let dir_listing = flags & 8 != 0;
    let n = usize::from(r.byte() % 16);
    let mut cuts: Vec<u16> = (0..n).map(|_| r.u16()).collect();
    let bytes = r.rest();
    let whole = run_pieces(max_body, dir_listing, &[bytes], eof);
    let mut cuts: Vec<usize> = cuts
        .drain(..)
        .map(|c| {
            if bytes.is_empty() {
                0
            } else {
                usize::from(c) % (bytes.len() + 1)
            }
        })
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for c in cuts {
        pieces.push(&bytes[start..c]);
        start = c;
    }
    pieces.push(&bytes[start..]);
    let split = run_pieces(max_body, dir_listing, &pieces, eof);
    // A streamed body's chunks depend on how it arrives; the bytes of each file do not.
    let (whole, split) = (merge_chunks(whole), merge_chunks(split));
    if whole != split {
        let show = |v: &[Action]| {
            v.iter()
                .map(|a| match a {
                    Action::Send(b) => format!("Send({:?})", String::from_utf8_lossy(b)),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        panic!(
            "whole and split differ\nwhole:\n  {}\nsplit at {:?}:\n  {}",
            show(&whole),
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            show(&split)
        );
    }
}

/// The actions with consecutive `WriteChunk`s joined into one.
fn merge_chunks(actions: Vec<Action>) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    for a in actions {
        match (out.last_mut(), a) {
            (Some(Action::WriteChunk(prev)), Action::WriteChunk(more)) => {
                prev.extend_from_slice(&more)
            }
            (_, a) => out.push(a),
        }
    }
    out
}

//! Pseudo-random input (a fixed-seed LCG): frames of every type with random flags,
//! streams and payloads, junk, and random calls of the caller's side. Nothing panics,
//! and every bound holds after every step.

use super::*;
use crate::h2::hpack::tests::Lcg;

fn check_bounds(c: &Client, s: &H2Settings) {
    let conn = &c.conn;
    assert!(conn.inbuf.len() < HEADER + s.max_frame_size as usize);
    assert!(conn.streams.len() <= s.max_concurrent_streams as usize);
    assert!(conn.provoked_bytes <= s.max_control_output);
    assert!(conn.pending.as_ref().map_or(0, |p| p.block.len()) <= s.block_cap());
    assert!(conn.output().len() <= 512 * 1024, "{}", conn.output().len());
    assert!(conn.events.len() <= 2048);
}

const HEADER: usize = 9;

fn one_in(rng: &mut Lcg, n: u32) -> bool {
    rng.next_u32().is_multiple_of(n)
}

fn random_frame(c: &mut Client, rng: &mut Lcg) -> Vec<u8> {
    let kind = (rng.next_u32() % 12) as u8;
    let kind = if kind == 11 { 0x42 } else { kind };
    let flags = match rng.next_u32() % 4 {
        0 => rng.next_u32() as u8,
        1 => 0,
        2 => 0x4 | 0x1,
        _ => 0x4,
    };
    let stream_id = match rng.next_u32() % 8 {
        0 => 0,
        1 => rng.next_u32() & 0x7fff_ffff,
        _ => rng.next_u32() % 24,
    };
    let payload = match (kind, rng.next_u32() % 3) {
        (1 | 9, 0) => c.block(&req("GET", "/r")),
        (4, 0) => {
            let mut p = Vec::new();
            for _ in 0..rng.next_u32() % 4 {
                let id = (rng.next_u32() % 8) as u16;
                let value = match rng.next_u32() % 3 {
                    0 => rng.next_u32(),
                    1 => 16_384,
                    _ => rng.next_u32() % 100_000,
                };
                Setting::Unknown { id, value }.write(&mut p);
            }
            p
        }
        (8 | 3, _) => rng.next_u32().to_be_bytes().to_vec(),
        (6, _) => vec![rng.next_u32() as u8; 8],
        _ => rng.bytes(48),
    };
    let mut f = raw(kind, flags, stream_id, &payload);
    if one_in(rng, 16) {
        // A lying length.
        f[2] = rng.next_u32() as u8;
    }
    f
}

/// A frame that a client could well send at this point: requests on the next stream
/// id, bodies, window updates, settings, pings, resets on recent streams.
fn plausible_frame(c: &mut Client, rng: &mut Lcg, next_id: &mut u32) -> Vec<u8> {
    let recent = next_id.saturating_sub(2 * (rng.next_u32() % 4 + 1)) | 1;
    let end_stream = one_in(rng, 2);
    let pick = if *next_id == 1 { 0 } else { rng.next_u32() % 9 };
    match pick {
        0..=2 => {
            let id = *next_id;
            *next_id += 2;
            let path = format!("/{}", rng.next_u32() % 100);
            let mut f = req(["GET", "POST", "PUT"][rng.next_u32() as usize % 3], &path);
            if one_in(rng, 4) {
                f.push(("content-length", "3"));
            }
            let block = c.block(&f);
            let cut = rng.next_u32() as usize % (block.len() + 1);
            let flags = u8::from(end_stream);
            if one_in(rng, 3) {
                let mut out = raw(1, flags, id, &block[..cut]);
                out.extend(raw(9, 4, id, &block[cut..]));
                out
            } else {
                raw(1, flags | 4, id, &block)
            }
        }
        3 | 4 => {
            let data = vec![3; rng.next_u32() as usize % 3000];
            raw(0, u8::from(end_stream), recent, &data)
        }
        5 => {
            let id = if one_in(rng, 2) { 0 } else { recent };
            let increment = 1 + rng.next_u32() % 100_000;
            raw(8, 0, id, &increment.to_be_bytes())
        }
        6 => {
            let mut p = Vec::new();
            Setting::InitialWindowSize(rng.next_u32() % (1 << 20)).write(&mut p);
            Setting::HeaderTableSize(rng.next_u32() % 8192).write(&mut p);
            raw(4, 0, 0, &p)
        }
        7 => raw(3, 0, recent, &(rng.next_u32() % 14).to_be_bytes()),
        _ => raw(6, 0, 0, &[9; 8]),
    }
}

fn random_call(c: &mut Client, rng: &mut Lcg) {
    let id = rng.next_u32() % 24;
    match rng.next_u32() % 8 {
        0 => {
            let status = [100, 200, 204, 404, 431, 101, 0][rng.next_u32() as usize % 7];
            let _ = (c.conn).send_headers(id, status, &[("x-a", "b")], one_in(rng, 2));
        }
        1 | 2 => {
            let len = rng.next_u32() as usize % 40_000;
            let _ = c.conn.send_data(id, &vec![7; len], one_in(rng, 3), c.now);
        }
        3 => c.conn.release(id, rng.next_u32() as usize % 100_000),
        4 => {
            let _ = c.conn.reset(id, E(rng.next_u32() % 16));
        }
        5 => {
            let _ = c.conn.writable(id);
            let _ = c.conn.deadline();
        }
        6 => {
            c.now += u64::from(rng.next_u32() % 5_000);
            c.conn.timeout(c.now);
        }
        _ if one_in(rng, 50) => c.conn.drain(),
        _ if one_in(rng, 200) => c.conn.go_away(E::NO_ERROR),
        _ => {}
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn random_frames_never_panic_and_memory_stays_bounded() {
    let mut rng = Lcg(0x5eed_2024_2731_6443);
    let mut closed = 0;
    let mut requests = 0;
    for round in 0..100 {
        let s = H2Settings {
            max_concurrent_streams: 1 + rng.next_u32() % 8,
            initial_window_size: [0, 1, 100, 65_535, 1 << 20][rng.next_u32() as usize % 5],
            connection_window_size: [65_535, 100_000, 1 << 24][rng.next_u32() as usize % 3],
            max_resets_per_sec: 1000,
            ..H2Settings::default()
        };
        let mut c = if round % 5 == 0 {
            let mut c = Client::bare(s.clone());
            c.send(&preface());
            c
        } else {
            Client::new(s.clone())
        };
        let mut next_id = 1;
        // How rarely a frame is pure noise: some rounds go deep, some break early.
        let chaos = [4, 8, 50, 400][round % 4];
        for _ in 0..500 {
            match rng.next_u32() % 10 {
                0..=5 => {
                    let f = match rng.next_u32() % chaos {
                        0 => random_frame(&mut c, &mut rng),
                        _ => plausible_frame(&mut c, &mut rng, &mut next_id),
                    };
                    // Sometimes split anywhere.
                    let cut = rng.next_u32() as usize % (f.len() + 1);
                    c.send(&f[..cut]);
                    c.send(&f[cut..]);
                }
                6 if one_in(&mut rng, chaos) => c.send(&rng.bytes(30)),
                _ => random_call(&mut c, &mut rng),
            }
            while let Some(e) = c.conn.poll_event() {
                match e {
                    Event::Request { stream_id, .. } => {
                        requests += 1;
                        let _ = c.conn.send_headers(stream_id, 200, &[], false);
                    }
                    Event::Data {
                        stream_id, bytes, ..
                    } => c.conn.release(stream_id, bytes.len()),
                    _ => {}
                }
            }
            if !one_in(&mut rng, 4) {
                let mut sink = Vec::new();
                c.conn.take_output(&mut sink, c.now);
            }
            check_bounds(&c, &s);
            if c.conn.is_closed() {
                closed += 1;
                break;
            }
        }
    }
    // The input reached deep enough to matter.
    assert!(requests > 20, "{requests} requests");
    assert!(closed > 10, "{closed} closed");
    eprintln!("{requests} requests, {closed} closed");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn junk_after_the_preface_never_panics() {
    let mut rng = Lcg(77);
    for _ in 0..500 {
        let mut c = Client::bare(H2Settings::default());
        let mut input = preface();
        input.extend(rng.bytes(200));
        c.send(&input);
        c.conn.timeout(u64::MAX);
        let _ = c.conn.deadline();
        while c.conn.poll_event().is_some() {}
        assert!(c.conn.inbuf.len() < 16_384 + HEADER);
    }
}

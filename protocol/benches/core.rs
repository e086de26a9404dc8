//! The core alone: a keep-alive GET of a small file, and a 1 KiB JSON POST, through one
//! `Connection`, with the runtime's side done in memory. Also counts heap allocations
//! per request with a counting global allocator.
//!
//! `cargo bench -p protocol`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::{Action, Config, Connection, FileMeta, Input, Now};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const GET: &[u8] =
    b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n";

fn post() -> Vec<u8> {
    let mut body = String::from("{\"items\":[");
    while body.len() < 1000 {
        body.push_str("{\"k\":\"value\",\"n\":12345},");
    }
    body.push_str("{}]}");
    let mut r = format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

fn conn() -> Connection {
    let mut c = Config::new("127.0.0.1", 8080, &[]);
    c.max_requests = u32::MAX;
    Connection::new(Arc::new(c), Now::new(0, 1_800_000_000), [1; 16], "bench")
}

/// One request through the connection; returns the bytes the runtime would write.
/// The loop both runtimes run: hand in the bytes, execute the actions (handing the
/// answer buffer back with `recycle`), report the answer written.
fn round(c: &mut Connection, req: &[u8], now: Now) -> usize {
    c.handle(now, Input::Received(req));
    let mut sent = 0;
    loop {
        let mut wrote = false;
        while let Some(a) = c.poll() {
            match a {
                Action::Send(b) => {
                    sent += b.len();
                    wrote = true;
                    c.recycle(b);
                }
                Action::OpenFile(_) => {
                    let meta = FileMeta {
                        len: 1133,
                        mtime_secs: 1_700_000_000,
                        mtime_nanos: 5,
                        is_dir: false,
                    };
                    c.handle(now, Input::FileOpened(Ok(meta)));
                }
                Action::SendFile { len, .. } => {
                    sent += len as usize;
                    wrote = true;
                }
                Action::WriteUpload { .. } => c.handle(now, Input::UploadWritten(Ok(()))),
                Action::ListDir(_) => panic!("no listings in the benchmark"),
                Action::Close => panic!("unexpected close"),
            }
        }
        if !wrote {
            return sent;
        }
        c.handle(now, Input::Written);
    }
}

fn allocations_per_request(req: &[u8]) -> f64 {
    let mut c = conn();
    let now = Now::new(1, 1_800_000_000);
    round(&mut c, req, now);
    let n = 10_000;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..n {
        round(&mut c, req, now);
    }
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / n as f64
}

fn bench(cr: &mut Criterion) {
    let post = post();
    println!(
        "allocations per request: keep-alive GET {:.1}, 1 KiB JSON POST {:.1}",
        allocations_per_request(GET),
        allocations_per_request(&post)
    );
    let mut g = cr.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("keep-alive GET small file", |b| {
        let mut c = conn();
        let now = Now::new(1, 1_800_000_000);
        b.iter(|| black_box(round(&mut c, black_box(GET), now)));
    });
    g.bench_function("1 KiB JSON POST /upload", |b| {
        let mut c = conn();
        let now = Now::new(1, 1_800_000_000);
        b.iter(|| black_box(round(&mut c, black_box(&post), now)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

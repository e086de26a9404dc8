//! The core alone: a keep-alive GET of a small file, and a 1 KiB JSON POST, through one
//! `Connection`, with the runtime's side done in memory by the shared driver
//! (`protocol::sim`, recording nothing, its work taking no simulated time). Also counts
//! heap allocations per request with a counting global allocator.
//!
//! `cargo bench -p protocol`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::sim::{DirAnswer, Driver, Record, Start, World};
use protocol::{Config, FileError, FileMeta, UploadError};

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

/// Every file is the same 1,133 bytes; every upload is stored; no listing is asked for.
struct Constant;

impl World for Constant {
    fn open(&mut self, _: &str) -> Result<FileMeta, FileError> {
        Ok(FileMeta {
            len: 1133,
            mtime_secs: 1_700_000_000,
            mtime_nanos: 5,
            is_dir: false,
        })
    }
    fn list(&mut self, _: &str) -> DirAnswer {
        panic!("no listings in the benchmark")
    }
    fn store(&mut self, _: &str, _: &[u8]) -> Result<(), UploadError> {
        Ok(())
    }
}

/// One connection at 1 ms, where the runtime's work takes no time and nothing is
/// recorded (the driver allocates nothing of its own per request).
fn driver() -> Driver<Constant> {
    let mut c = Config::new("127.0.0.1", 8080, &[]);
    c.max_requests = u32::MAX;
    let mut d = Driver::new(c, Constant, Start::default());
    d.record = Record::Nothing;
    (d.open_ms, d.upload_ms, d.write_ms) = (0, 0, 0);
    d.advance_ms(1);
    d
}

/// One request through the connection; returns the bytes the runtime would write.
/// The loop both runtimes run: hand in the bytes, execute the actions, report the
/// answer written (handing the answer buffer back with `recycle`).
fn round(d: &mut Driver<Constant>, req: &[u8]) -> u64 {
    let before = d.sent_bytes;
    d.send(req);
    assert!(!d.closed, "unexpected close");
    d.sent_bytes - before
}

fn allocations_per_request(req: &[u8]) -> f64 {
    let mut d = driver();
    round(&mut d, req);
    let n = 10_000;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..n {
        round(&mut d, req);
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
        let mut d = driver();
        b.iter(|| black_box(round(&mut d, black_box(GET))));
    });
    g.bench_function("1 KiB JSON POST /upload", |b| {
        let mut d = driver();
        b.iter(|| black_box(round(&mut d, black_box(&post))));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

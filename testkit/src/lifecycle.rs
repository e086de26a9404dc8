//! The server as a process (SPEC "Command line"; the drain of SPEC "Capacity"): usage
//! errors, `--help` and `--version`, the seed's positional arguments and default root,
//! numeric flags out of their range, a root that does not exist, a port in use and a
//! second instance on a running one's port (which must exit and touch nothing), the
//! start-up clean-up of unfinished uploads, and SIGTERM and SIGINT draining what is in
//! flight and exiting 0.
//!
//! Where a test goes: here if it is about starting, restarting or stopping the process.
//! A server killed in the middle of uploads, to check that none is lost, is
//! [`requests`](crate::requests) (the uploads are the point).

use std::fs::File;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{get, is_smol, runtime};
use crate::{binary_bytes, run_to_exit, Client, Fixture, Server};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __lifecycle_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] lifecycle;
            spec: [
                command_line_errors_and_positionals,
                sigterm_drains_in_flight_and_exits_0,
            ];
            more: [
                out_of_range_numbers_are_usage_errors,
                a_second_instance_fails_and_the_clean_up_spares_live_and_outside_temporaries,
            ];
        }
    };
}
pub use crate::__lifecycle_list as list;

// ----- The command line -----

pub fn command_line_errors_and_positionals(bin: &str) {
    let fx = Fixture::new();
    let cwd = fx.base.path();
    for bad in [
        &["--port", "notaport"][..],
        &["--bogus"],
        &["--threads", "0"],
        &["1", "h", "2", "x"],
    ] {
        let (status, _, err) = run_to_exit(bin, bad, cwd);
        assert_eq!(status.code(), Some(2), "{bad:?}: {err}");
        let err = err.to_lowercase();
        assert!(
            err.contains("error") && (err.contains("usage") || err.contains("--help")),
            "a usage error: {bad:?}: {err}"
        );
    }
    let (status, out, _) = run_to_exit(bin, &["--help"], cwd);
    assert_eq!(status.code(), Some(0));
    for word in [
        "PORT",
        "HOST",
        "MAX_THREADS",
        "--root",
        "--idle-timeout",
        "--max-requests",
        "--queue",
        "--max-connections",
        "--max-body",
        "--allow-host",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let (status, out, _) = run_to_exit(bin, &["--version"], cwd);
    assert_eq!(status.code(), Some(0));
    assert!(!out.trim().is_empty());

    let missing = cwd.join("no-such-root");
    let (status, _, err) = run_to_exit(
        bin,
        &["--port", "0", "--root", &missing.to_string_lossy()],
        cwd,
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("no-such-root"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let root = fx.root.to_string_lossy().into_owned();
    let (status, _, err) = run_to_exit(bin, &["--port", &port, "--root", &root], cwd);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("in use"), "{err}");
    drop(taken);

    // The seed's positional form, and the default root `resources` in the working dir.
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(work.path().join("resources")).expect("mkdir");
    std::fs::write(
        work.path().join("resources/index.html"),
        "<p>default root</p>",
    )
    .expect("write");
    let s = Server::builder(bin)
        .fixture(fx)
        .without_port_and_root()
        .args(&["0", "127.0.0.1", "2"])
        .current_dir(work.path())
        .inherit_rust_log()
        .start();
    let r = s.get("/");
    r.expect_status(200);
    assert_eq!(r.body, b"<p>default root</p>");
}

/// Every numeric flag out of its range is a usage error (exit 2, the flag named on
/// stderr, nothing on stdout) — for runtime-std `--queue 99999999999` and `65537`, for
/// both `--max-connections 0` and `1000001`, `--body-timeout 0`, `--max-body-memory 10`
/// and the other bounds; runtime-smol refuses `--queue` (runtime-std's) even in range.
/// The bounds themselves start a server that serves.
pub fn out_of_range_numbers_are_usage_errors(bin: &str) {
    let fx = Fixture::new();
    let root = fx.root.to_str().expect("utf-8 root").to_string();
    let mut bad: Vec<[&str; 2]> = vec![
        ["--body-timeout", "0"],
        ["--body-timeout", "86401"],
        ["--idle-timeout", "0"],
        ["--idle-timeout", "18446744073709551616"],
        ["--head-timeout", "0"],
        ["--max-body-memory", "10"],
        ["--max-body-memory", "1023"],
        ["--max-body-memory", "1099511627777"],
        ["--max-body", "1073741825"],
        ["--max-requests", "0"],
        ["--max-requests", "1000001"],
        ["--threads", "0"],
        ["--threads", "4097"],
        ["--max-connections", "0"],
        ["--max-connections", "1000001"],
    ];
    if is_smol(bin) {
        bad.push(["--queue", "4"]);
    } else {
        bad.extend_from_slice(&[
            ["--queue", "99999999999"],
            ["--queue", "65537"],
            ["--queue", "-1"],
        ]);
    }
    for [flag, value] in &bad {
        let (status, out, err) = run_to_exit(
            bin,
            &["--port", "0", "--root", &root, flag, value],
            fx.base.path(),
        );
        assert_eq!(
            status.code(),
            Some(2),
            "{flag} {value}: {status}, stderr {err:?}"
        );
        assert!(out.is_empty(), "{flag} {value}: stdout {out:?}");
        // clap names the flag, except for a value that looks like a flag itself (`-1`).
        assert!(
            err.starts_with("error:") && (err.contains(flag) || err.contains(value)),
            "{flag} {value}: {err:?}"
        );
    }
    let edges: &[&str] = if is_smol(bin) {
        &["--max-connections", "1000000"]
    } else {
        &["--max-connections", "1000000", "--queue", "65536"]
    };
    let s = Server::builder(bin)
        .fixture(fx)
        .args(edges)
        .args(&[
            "--max-body-memory",
            "1024",
            "--body-timeout",
            "86400",
            "--idle-timeout",
            "86400",
            "--max-requests",
            "1000000",
        ])
        .start();
    s.get("/sample.txt").expect_status(200);
    eprintln!(
        "{}: {} out-of-range values refused with exit 2; the bounds accepted",
        runtime(bin),
        bad.len()
    );
}

// ----- Start-up: a second instance, the clean-up -----

/// `uploads/.tmp-x.json` is "in flight" (this test holds an exclusive `flock` on it, as
/// a writer does until its rename) and `.tmp-y.json` is a crash's leftover. The server's
/// start-up removes `.tmp-y` (and says so) and spares `.tmp-x`. A second server on the
/// same port exits 1 with one line saying the port is in use, and removes nothing — not
/// `.tmp-x`, not even a stale `.tmp-w.json` made meanwhile (the clean-up runs only once
/// the port is bound); the first keeps serving. Once the lock is gone, a restart removes
/// both. Finally, with `uploads` a symlink to a directory outside the root that holds
/// `.tmp-z.json`, start-up deletes nothing there (and logs why) and serves.
pub fn a_second_instance_fails_and_the_clean_up_spares_live_and_outside_temporaries(bin: &str) {
    // Every server runs on this root (a server's own fixture goes when it is dropped).
    let fx = Fixture::new();
    let root = fx.root.clone();
    let base = fx.base.path();
    let uploads = root.join("uploads");
    let live = uploads.join(".tmp-x.json");
    std::fs::write(&live, "{\"in\":\"flight\"").expect("write");
    let lock = File::options().write(true).open(&live).expect("open");
    lock.try_lock().expect("flock .tmp-x.json");
    std::fs::write(uploads.join(".tmp-y.json"), "{\"stale\"").expect("write");
    let s = Server::builder(bin)
        .fixture(Fixture::at(&root))
        .rust_log("info")
        .start();
    assert!(
        live.exists(),
        "start-up removed a temporary still being written"
    );
    assert!(
        !uploads.join(".tmp-y.json").exists(),
        "start-up left a stale temporary"
    );
    assert!(
        s.wait_log(
            &["WARN", "removed 1 unfinished upload"],
            Duration::from_secs(2)
        )
        .is_some(),
        "{}",
        s.logs()
    );
    std::fs::write(uploads.join(".tmp-w.json"), "{\"stale\"").expect("write");
    let port = s.port.to_string();
    let root_arg = root.to_str().expect("utf-8 root");
    let (status, out, err) = run_to_exit(bin, &["--port", &port, "--root", root_arg], base);
    assert_eq!(
        status.code(),
        Some(1),
        "a second server on port {port}: {status}, stdout {out:?}, stderr {err:?}"
    );
    assert!(out.is_empty(), "it announced itself: {out:?}");
    assert!(
        err.contains("already in use") && err.trim().lines().count() == 1,
        "one clear line: {err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&live).ok().as_deref(),
        Some("{\"in\":\"flight\""),
        "the second server touched the temporary in flight"
    );
    assert!(
        uploads.join(".tmp-w.json").exists(),
        "a server that could not bind its port cleaned up the running one's uploads/"
    );
    s.get("/sample.txt").expect_status(200);
    s.upload("application/json", "{\"still\":\"serving\"}")
        .expect_status(201);
    // The writer is gone: both temporaries are a crash's leftovers now.
    drop(s);
    drop(lock);
    let s = Server::start_in(bin, Fixture::at(&root), &[]);
    assert!(!live.exists() && !uploads.join(".tmp-w.json").exists());
    assert!(s
        .wait_log(&["removed 2 unfinished upload"], Duration::from_secs(2))
        .is_some());
    assert_eq!(s.fx.uploads().len(), 1, "{:?}", s.fx.uploads());
    drop(s);
    drop(fx);
    // uploads/ a symlink to a directory outside the root.
    let fx = Fixture::new();
    let elsewhere = fx.base.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::fs::write(elsewhere.join(".tmp-z.json"), "{").expect("write");
    std::fs::remove_dir(fx.root.join("uploads")).expect("rmdir");
    std::os::unix::fs::symlink(&elsewhere, fx.root.join("uploads")).expect("symlink");
    let s = Server::builder(bin).fixture(fx).rust_log("info").start();
    assert!(
        elsewhere.join(".tmp-z.json").exists(),
        "start-up followed a symlinked uploads/ and deleted outside the root"
    );
    assert!(
        s.wait_log(&["nothing removed"], Duration::from_secs(2))
            .is_some(),
        "{}",
        s.logs()
    );
    s.get("/sample.txt").expect_status(200);
    assert!(elsewhere.join(".tmp-z.json").exists());
}

// ----- Signals -----

pub fn sigterm_drains_in_flight_and_exits_0(bin: &str) {
    let fx = Fixture::new();
    let big = binary_bytes(24 << 20);
    std::fs::write(fx.root.join("big.bin"), &big).expect("big");
    let mut s = Server::start_in(bin, fx, &["--threads", "4"]);
    // An idle keep-alive connection, and a download in flight that reads slowly.
    let mut idle = s.connect();
    idle.request(&get(&s, "/")).expect_status(200);
    let mut busy = s.connect();
    busy.send(get(&s, "/big.bin"));
    thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    s.signal("TERM");
    thread::sleep(Duration::from_millis(300));
    // The download still completes.
    let r = busy.read_response();
    r.expect_status(200);
    assert!(r.body == big, "the in-flight download was cut");
    // The idle connection is closed, and new connections are not served.
    assert!(idle.closed_within(Duration::from_secs(4)));
    // (Through the harness's client, so that over TLS the request is one it would
    // serve, not plain HTTP the TLS port refuses anyway.)
    if let Ok(mut late) = Client::try_connect(s.port) {
        let _ = late.stream.set_read_timeout(Some(Duration::from_secs(2)));
        if late.try_send(get(&s, "/")).is_ok() {
            if let Ok(r) = late.read_unchecked(false) {
                assert_ne!(r.status, 200, "served after SIGTERM");
            }
        }
    }
    let status = s
        .wait_exit(Duration::from_secs(7))
        .expect("exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(sent.elapsed() < Duration::from_secs(7));

    // Ctrl-C (SIGINT) with nothing in flight exits 0 at once.
    let mut s = Server::start(bin, &[]);
    s.get("/").expect_status(200);
    s.signal("INT");
    let status = s
        .wait_exit(Duration::from_secs(6))
        .expect("exited after SIGINT");
    assert_eq!(status.code(), Some(0));
}

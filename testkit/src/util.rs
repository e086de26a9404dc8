//! Small helpers shared by the cases.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Whether a program is installed (for the curl examples).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `args` without the flag that only the other runtime takes (`--queue` is
/// runtime-std's, `--max-connections` runtime-smol's; each refuses the other's), so one
/// test can say both.
pub fn own_flags<'a>(bin: &str, args: &[&'a str]) -> Vec<&'a str> {
    let foreign = if bin.ends_with("runtime-smol") {
        "--queue"
    } else {
        "--max-connections"
    };
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for &a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == foreign {
            skip = true;
            continue;
        }
        out.push(a);
    }
    out
}

/// Runs the binary to completion (for command-line errors): status, stdout and stderr.
pub fn run_to_exit(bin: &str, args: &[&str], cwd: &Path) -> (ExitStatus, String, String) {
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} did not exit within 10 s");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, out, err)
}

/// Raises this process's soft limit of open files to `want` (at most the hard limit),
/// for tests that hold many connections.
pub fn raise_fd_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(want.min(hard));
        setrlimit(Resource::Nofile, lim).expect("setrlimit");
    }
}

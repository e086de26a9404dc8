//! The bundled page (`resources/index.html`), tested in a real browser.
//!
//! Shared by both runtimes: each crate's `tests/browser.rs` says
//! `testkit::tests!(browser, env!("CARGO_BIN_EXE_<runtime>"))`, which expands to the
//! `#[test]`s. The page's tests are in [`page`], its file uploads' (the drop zone, the
//! picker, progress, signing in) in [`files`], the listing's in [`listing`]; this module
//! has what they share (the tools, the processes, WebDriver), and `devtools` answers the
//! browser's sign-in dialog.
//!
//! How the browser test runs: it copies `resources/` into a fresh directory under
//! `target/tmp`, starts the server binary on it with the harness's
//! [`Server`](crate::Server) (`--port 0`, reading the `listening on http://HOST:PORT`
//! line), starts `chromedriver` on a free loopback port, and drives headless Chromium
//! through W3C WebDriver (JSON over HTTP, spoken here with the harness's [`Client`] and
//! [`Response`](crate::Response) parser, and serde_json). It checks that the logo
//! rendered, that a bad upload shows the server's 400 and 415 answers, that a good upload
//! shows its path and link, that a file chosen with the picker is uploaded with its
//! progress bar and link, and that following the link gives back the same JSON. It
//! saves a screenshot as `target/browser-<runtime>.png`. Every process it starts is ended
//! by PID when the test ends, pass or fail (drop guards).
//!
//! The browser test is `#[ignore]`d so a bare `cargo test` on a machine without Chromium
//! does not fail; `.ci/run` runs it with `--include-ignored`, and then a missing browser
//! or driver is a failure with a clear message, never a silent pass.
//!
//! The same page runs over HTTPS too (`page_works_over_https_in_headless_chromium`, with
//! the `tls` feature): the server starts with `--tls-self-signed`, and Chromium accepts
//! that one certificate's key for the test (`--ignore-certificate-errors-spki-list`).
//!
//! Environment: `CHROMEDRIVER` and `CHROMIUM` override the tools' paths (default: found
//! on `PATH`); `UPDATE_BROWSER_SCREENSHOT=1` also writes the screenshot to
//! `testkit/src/browser/screenshot.png` (the README's image), which must then be shrunk
//! under 100 KiB (the non-browser test checks it), for instance with Pillow:
//! `python3 -c 'from PIL import Image as I; p="testkit/src/browser/screenshot.png";
//! I.open(p).convert("RGB").quantize(64, method=I.Quantize.FASTOCTREE,
//! dither=I.Dither.NONE).save(p, optimize=True)'`.
//!
//! Where a test goes: here if it needs a real browser (and a check of this module's own
//! helpers without one). What a page's requests get is tested without a browser in the
//! other groups.

use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{dechunk, Client};

mod devtools;
pub mod files;
pub mod listing;
pub mod page;

/// The browser tests for the server binary at `$bin` (and, in `mod browser`, the checks
/// of this module's own helpers), for [`tests!`](crate::tests): written out here, as
/// they are not cases of [`cases!`](crate::cases) (they are ignored without a browser,
/// take the test crate's `CARGO_TARGET_TMPDIR`, or check a panic).
#[doc(hidden)]
#[macro_export]
macro_rules! __browser_list {
    (plain $bin:expr) => {
        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn page_works_in_headless_chromium() {
            $crate::browser::page::page_end_to_end($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[cfg(feature = "tls")]
        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn page_works_over_https_in_headless_chromium() {
            $crate::browser::page::page_end_to_end_https($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn files_upload_in_headless_chromium() {
            $crate::browser::files::files_end_to_end($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn files_upload_needs_sign_in_in_headless_chromium() {
            $crate::browser::files::files_need_sign_in($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn files_upload_errors_in_headless_chromium() {
            $crate::browser::files::files_refused($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[test]
        fn page_is_self_contained() {
            $crate::browser::page::page_is_self_contained();
        }

        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn listing_works_in_headless_chromium() {
            $crate::browser::listing::listing_end_to_end($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[test]
        fn listing_screenshot_is_committed() {
            $crate::browser::listing::listing_screenshot_is_committed();
        }

        mod browser {
            #[test]
            fn base64_and_paths() {
                $crate::browser::base64_and_paths();
            }

            #[test]
            #[should_panic(expected = "apt-get install -y chromium chromium-driver")]
            fn a_missing_browser_is_a_failure_not_a_pass() {
                $crate::browser::a_missing_browser_is_a_failure_not_a_pass();
            }
        }
    };
}
pub use crate::__browser_list as list;

/// The repository's `resources/` directory.
const RESOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../resources");
/// Where the README's screenshot lives.
const README_SCREENSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/browser/screenshot.png");
/// How long any one wait in the browser may take.
const WAIT: Duration = Duration::from_secs(15);
/// The W3C name of an element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// File types the server answers (anything else is a 415), which the page may use.
const SERVED_TYPES: &[&str] = &["html", "css", "js", "png", "txt", "json", "svg", "ico"];

// ---------------------------------------------------------------------------------------
// Helpers of the tests
// ---------------------------------------------------------------------------------------

/// `/uploads/<uuid>.json`, as SPEC names created files.
fn is_upload_path(path: &str) -> bool {
    let Some(id) = path
        .strip_prefix("/uploads/")
        .and_then(|p| p.strip_suffix(".json"))
    else {
        return false;
    };
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The width in a PNG's IHDR chunk, if `bytes` starts like a PNG.
fn png_width(bytes: &[u8]) -> Option<u32> {
    let signature = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != signature || &bytes[12..16] != b"IHDR" {
        return None;
    }
    Some(u32::from_be_bytes([
        bytes[16], bytes[17], bytes[18], bytes[19],
    ]))
}

// ---------------------------------------------------------------------------------------
// Files and processes
// ---------------------------------------------------------------------------------------

/// `target/` (the parent of `CARGO_TARGET_TMPDIR`).
fn target_dir(tmp: &Path) -> PathBuf {
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// A tool from an environment variable or `PATH`; a clear failure when it is missing.
fn tool(var: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} does not exist", path.display());
        return path;
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in names {
        for dir in dirs
            .iter()
            .map(PathBuf::as_path)
            .chain([Path::new("/usr/bin")])
        {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the browser test needs {} and it is not installed (looked on PATH for {names:?}; \
         set {var} to override). Install Debian's packages: \
         `apt-get install -y chromium chromium-driver`. This test fails rather than pass \
         without a browser.",
        names[0]
    );
}

/// A fresh directory under `target/tmp`, removed at the end.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new(tmp: &Path, runtime: &str) -> WorkDir {
        let path = tmp.join(format!("browser-{runtime}-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).expect("remove an old work directory");
        }
        fs::create_dir_all(&path).expect("create the work directory");
        WorkDir { path }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("logs kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Copies the web root, leaving out anything already uploaded into it.
fn copy_resources(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create the web root copy");
    for entry in fs::read_dir(from).expect("list resources/") {
        let entry = entry.expect("read resources/");
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            if entry.file_name() == "uploads" {
                fs::create_dir_all(&dest).expect("create uploads/");
                let keep = path.join(".gitignore");
                if keep.is_file() {
                    fs::copy(&keep, dest.join(".gitignore")).expect("copy uploads/.gitignore");
                }
            } else {
                copy_resources(&path, &dest);
            }
        } else {
            fs::copy(&path, &dest).expect("copy a resource");
        }
    }
}

/// Ends a child process by its PID (SIGKILL) and reaps it.
fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// chromedriver on a free loopback port; on drop, it and every Chromium process started
/// with this test's profile directory are ended by PID.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
    log: PathBuf,
}

impl Driver {
    fn start(chromedriver: &Path, work: &Path, profile: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("find a free loopback port");
        let log = work.join("chromedriver.log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let mut driver = Driver {
            child,
            port,
            profile: profile.to_path_buf(),
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(status) = webdriver(port, "GET", "/status", None) {
                if status["ready"] == json!(true) {
                    return driver;
                }
            }
            if let Ok(Some(exit)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited at start ({exit}); its log: {}",
                    driver.log.display()
                );
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not become ready on port {port} within {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ask chromedriver to quit (it closes its browsers and reaps them), then make sure.
        let _ = webdriver(self.port, "GET", "/shutdown", None);
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        end(&mut self.child);
        // Chromium normally exits when its session is deleted; end any process still
        // running with this test's own profile directory.
        let marker = self.profile.to_string_lossy().into_owned();
        for _ in 0..3 {
            let left = processes_mentioning(&marker);
            if left.is_empty() {
                break;
            }
            for pid in left {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            thread::sleep(Duration::from_millis(100));
        }
        if thread::panicking() {
            eprintln!("chromedriver log: {}", self.log.display());
        }
    }
}

/// PIDs whose command line contains `marker` (Linux `/proc`).
fn processes_mentioning(marker: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// WebDriver
// ---------------------------------------------------------------------------------------

/// A browser session; deleted (Chromium quits) on drop.
struct Session {
    port: u16,
    id: String,
    failure_shot: PathBuf,
    /// `HOST:PORT` of the browser's DevTools, as chromedriver reports it.
    debugger_address: Option<String>,
}

impl Session {
    fn create(
        driver: &Driver,
        chromium: &Path,
        profile: &Path,
        runtime: &str,
        target: &Path,
    ) -> Session {
        Session::create_with(driver, chromium, profile, runtime, target, &[])
    }

    /// [`Session::create`] with more Chromium arguments.
    fn create_with(
        driver: &Driver,
        chromium: &Path,
        profile: &Path,
        runtime: &str,
        target: &Path,
        extra_args: &[String],
    ) -> Session {
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-quic".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=760,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let args: Vec<String> = args.into_iter().chain(extra_args.iter().cloned()).collect();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "goog:chromeOptions": {
                        "binary": chromium.to_string_lossy(),
                        "args": args,
                    },
                    "timeouts": { "script": 10_000, "pageLoad": 20_000, "implicit": 0 },
                }
            }
        });
        let answer = webdriver(driver.port, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| {
                panic!(
                    "could not start headless Chromium ({}): {e}; chromedriver log: {}",
                    chromium.display(),
                    driver.log.display()
                )
            });
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {answer}"))
            .to_owned();
        let debugger_address = answer["capabilities"]["goog:chromeOptions"]["debuggerAddress"]
            .as_str()
            .map(str::to_owned);
        Session {
            port: driver.port,
            id,
            failure_shot: target.join(format!("browser-{runtime}-failure.png")),
            debugger_address,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("/session/{}{path}", self.id);
        webdriver(self.port, method, &url, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn navigate(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    fn back(&self) {
        self.call("POST", "/back", Some(&json!({})));
    }

    fn exec(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    fn exec_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `script` until it returns something other than null, false or "".
    fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_for_within(what, script, WAIT)
    }

    /// [`Session::wait_for`], for at most `limit`.
    fn wait_for_within(&self, what: &str, script: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let v = self.exec(script);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if started.elapsed() > limit {
                let result = self.exec(
                    "const r = document.getElementById('upload-result');
                     const f = document.getElementById('file-list');
                     return [location.href, r ? r.outerHTML : null, f ? f.outerHTML : null];",
                );
                panic!("timed out after {limit:?} waiting for {what} (last: {v}; page: {result})");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// A Chrome DevTools Protocol command, through chromedriver
    /// (`POST /session/{id}/goog/cdp/execute`).
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Chooses files in a file input: WebDriver "send keys" of their paths, one a line
    /// (the input need not be visible: `strictFileInteractability` is off by default).
    fn choose_files(&self, input: &str, files: &[&Path]) {
        let paths: Vec<String> = files
            .iter()
            .map(|f| {
                assert!(f.is_absolute(), "{} is absolute", f.display());
                f.to_string_lossy().into_owned()
            })
            .collect();
        self.type_text(input, &paths.join("\n"));
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        );
    }

    fn clear(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/clear"),
            Some(&json!({})),
        );
    }

    fn type_text(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({ "text": text })),
        );
    }

    /// Makes the window as tall as the page, so the screenshot shows all of it.
    fn fit_window_to_page(&self) {
        let height = self.exec(
            "return Math.ceil(document.documentElement.scrollHeight + (window.outerHeight - window.innerHeight));");
        let height = height.as_u64().unwrap_or(900).clamp(600, 2000);
        self.call(
            "POST",
            "/window/rect",
            Some(&json!({ "width": 760, "height": height })),
        );
    }

    fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", "/screenshot", None);
        let png =
            base64_decode(encoded.as_str().unwrap_or_default()).expect("the screenshot is base64");
        assert!(png_width(&png).is_some(), "the screenshot is a PNG");
        png
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if thread::panicking() {
            let shot = webdriver(
                self.port,
                "GET",
                &format!("/session/{}/screenshot", self.id),
                None,
            );
            if let Some(png) = shot
                .ok()
                .as_ref()
                .and_then(Value::as_str)
                .and_then(base64_decode)
            {
                if fs::write(&self.failure_shot, png).is_ok() {
                    eprintln!("screenshot at failure: {}", self.failure_shot.display());
                }
            }
        }
        let _ = webdriver(self.port, "DELETE", &format!("/session/{}", self.id), None);
    }
}

/// One WebDriver command: an HTTP/1.1 request to chromedriver on 127.0.0.1; the answer's
/// `value`, or its error as text.
fn webdriver(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let addr = ("127.0.0.1", port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut client = Client::from_stream(stream);
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    client
        .stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // chromedriver says `Connection: close` but keeps the socket open: the body is
    // framed by `Content-Length` (or chunks), which the parser follows.
    let answer = client
        .read_unchecked(false)
        .map_err(|e| format!("reading chromedriver: {e}"))?;
    let (status, payload) = (answer.status, answer.body);
    let answer: Value = serde_json::from_slice(&payload).map_err(|e| {
        format!(
            "HTTP {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&payload)
        )
    })?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status == 200 {
        Ok(value)
    } else {
        Err(format!(
            "HTTP {status}: {} {}",
            value["error"].as_str().unwrap_or("?"),
            value["message"].as_str().unwrap_or("")
        ))
    }
}

/// Standard base64 (with padding, whitespace ignored), as WebDriver screenshots are sent.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The helpers' own checks: base64, upload paths, and the parser's chunk decoding.
pub fn base64_and_paths() {
    assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
    assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
    assert_eq!(base64_decode("a$"), None);
    assert!(is_upload_path(
        "/uploads/0f8fad5b-d9cb-469f-a165-70867728950e.json"
    ));
    assert!(!is_upload_path("/uploads/../x.json"));
    assert!(!is_upload_path(
        "/uploads/0f8fad5b-d9cb-469f-a165-70867728950e.txt"
    ));
    assert_eq!(
        dechunk(b"3\r\nabc\r\n0\r\n\r\n").as_deref(),
        Some(&b"abc"[..])
    );
}

/// A missing driver or browser is a failure with the install command, not a pass.
pub fn a_missing_browser_is_a_failure_not_a_pass() {
    tool(
        "BROWSER_TEST_NO_SUCH_VARIABLE",
        &["no-such-chromedriver-for-this-test"],
    );
}

//! The bundled page (`resources/index.html`), tested in a real browser.
//!
//! Shared by both runtimes: each crate's `tests/browser.rs` calls
//! `testkit::browser_tests!(env!("CARGO_BIN_EXE_<runtime>"))`, which expands to the
//! `#[test]`s.
//!
//! How the browser test runs: it copies `resources/` into a fresh directory under
//! `target/tmp`, starts the server binary on it with the harness's [`Server`] (`--port
//! 0`, reading the `listening on http://HOST:PORT` line), starts `chromedriver` on a free
//! loopback port, and drives headless Chromium through W3C WebDriver (JSON over HTTP,
//! spoken here with the harness's [`Client`] and [`Response`](crate::Response) parser,
//! and serde_json). It checks that the logo rendered, that a bad upload shows the
//! server's 400 and 415 answers, that a good upload shows its path and link, and that
//! following the link gives back the same JSON. It saves a screenshot as
//! `target/browser-<runtime>.png`. Every process it starts is ended by PID when the test
//! ends, pass or fail (drop guards).
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

use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{dechunk, Client, Fixture, Server};

pub mod listing;

/// Expands to the browser tests for the server binary at `$bin` (and, in `mod browser`,
/// the checks of this module's own helpers).
#[macro_export]
macro_rules! browser_tests {
    ($bin:expr) => {
        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn page_works_in_headless_chromium() {
            $crate::browser::page_end_to_end($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[cfg(feature = "tls")]
        #[test]
        #[ignore = "needs chromium + chromedriver; .ci/run runs it with --include-ignored"]
        fn page_works_over_https_in_headless_chromium() {
            $crate::browser::page_end_to_end_https($bin, env!("CARGO_TARGET_TMPDIR"));
        }

        #[test]
        fn page_is_self_contained() {
            $crate::browser::page_is_self_contained();
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
// The tests
// ---------------------------------------------------------------------------------------

/// The whole page, in headless Chromium, against the server binary `bin`; work files go
/// under `target_tmpdir` (the test crate's `CARGO_TARGET_TMPDIR`, `target/tmp`).
pub fn page_end_to_end(bin: &str, target_tmpdir: &str) {
    page_in_chromium(bin, target_tmpdir, false);
}

/// [`page_end_to_end`] over HTTPS: the server runs with `--tls-self-signed`, and
/// Chromium accepts that one certificate's key for the test
/// (`--ignore-certificate-errors-spki-list`, with the key of the certificate whose
/// fingerprint the start line printed); work files and the screenshot are
/// `…-https`.
#[cfg(feature = "tls")]
pub fn page_end_to_end_https(bin: &str, target_tmpdir: &str) {
    page_in_chromium(bin, target_tmpdir, true);
}

fn page_in_chromium(bin: &str, target_tmpdir: &str, https: bool) {
    let mut runtime = Path::new(bin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("server")
        .to_owned();
    if https {
        runtime.push_str("-https");
    }
    let chromedriver = tool("CHROMEDRIVER", &["chromedriver"]);
    let chromium = tool(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );

    let target_tmpdir = Path::new(target_tmpdir);
    let target = target_dir(target_tmpdir);
    let work = WorkDir::new(target_tmpdir, &runtime);
    let root = work.path.join("root");
    copy_resources(Path::new(RESOURCES), &root);
    let profile = work.path.join("profile");
    fs::create_dir_all(&profile).expect("create the Chromium profile directory");

    // Dropped in reverse order: the session, then the driver and any Chromium left behind,
    // then the server, then the work directory.
    let builder = Server::builder(bin)
        .fixture(Fixture::at(&root))
        .current_dir(&work.path)
        .inherit_rust_log()
        .log_file(work.path.join("server.log"));
    #[cfg(feature = "tls")]
    let builder = if https {
        builder.tls_self_signed()
    } else {
        builder
    };
    let server = builder.start();
    assert_eq!(server.is_tls(), https, "{}", server.listening);
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut extra_args = Vec::new();
    #[cfg(feature = "tls")]
    if https {
        // The harness pins the printed fingerprint: this is that certificate.
        let der = server
            .connect()
            .peer_certificate()
            .expect("the server's certificate");
        let spki = crate::https::spki_sha256_base64(&der).expect("the certificate's key");
        extra_args.push(format!("--ignore-certificate-errors-spki-list={spki}"));
    }
    let driver = Driver::start(&chromedriver, &work.path, &profile);
    let browser =
        Session::create_with(&driver, &chromium, &profile, &runtime, &target, &extra_args);

    let base = server.listening.clone();
    let logo = fs::read(root.join("logo.png")).expect("read logo.png");
    let logo_width = png_width(&logo).expect("resources/logo.png is a PNG");

    // The page loads, with its stylesheet and script.
    browser.navigate(&format!("{base}/"));
    browser.wait_for(
        "the page to load",
        "return document.readyState === 'complete';",
    );
    if https {
        let secure = browser.exec("return [location.protocol, window.isSecureContext];");
        assert_eq!(secure, json!(["https:", true]), "loaded over HTTPS");
    }
    let title = browser.exec("return document.title;");
    assert_eq!(title, json!("File and upload server"), "page title");
    let heading = browser.exec("return document.querySelector('h1').textContent;");
    assert_eq!(heading, json!("File and upload server"), "page heading");
    let styled = browser
        .exec("return getComputedStyle(document.querySelector('section')).borderTopLeftRadius;");
    assert_ne!(styled, json!("0px"), "app.css was not applied");
    browser.wait_for(
        "app.js to check the sample JSON",
        "return document.getElementById('json-check').textContent === 'Valid JSON.';",
    );
    let curl = browser.exec("return document.getElementById('curl-example').textContent;");
    assert_eq!(
        curl,
        json!(format!("curl -i {base}/sample.txt")),
        "curl example"
    );

    // Every form control has a label or text a screen reader can announce.
    let unlabelled = browser.exec(
        "return [...document.querySelectorAll('input, select, textarea, button')]
           .filter(c => c.tagName === 'BUTTON' ? !c.textContent.trim() : c.labels.length === 0)
           .map(c => c.id || c.outerHTML);",
    );
    assert_eq!(unlabelled, json!([]), "form controls without a label");
    assert_eq!(
        browser.exec("return document.documentElement.lang;"),
        json!("en"),
        "the page declares its language"
    );

    // The logo rendered, although the server sends .png as an octet-stream attachment.
    let natural = browser.wait_for(
        "the logo to finish loading",
        "const i = document.getElementById('logo'); return i.complete ? i.naturalWidth : null;",
    );
    assert_eq!(
        natural.as_u64(),
        Some(u64::from(logo_width)),
        "the logo's naturalWidth (0 means the image did not render)"
    );

    // Both download links point at files the server sends whole, as attachments.
    let downloads = browser.exec_async(
        "const done = arguments[arguments.length - 1];
         Promise.all([...document.querySelectorAll('.downloads a')].map(a =>
           fetch(a.href).then(r => r.arrayBuffer().then(b => ({
             name: new URL(a.href).pathname,
             download: a.hasAttribute('download'),
             status: r.status,
             disposition: r.headers.get('Content-Disposition'),
             length: b.byteLength,
           })))))
           .then(done, e => done(String(e)));",
    );
    let downloads = downloads
        .as_array()
        .unwrap_or_else(|| panic!("fetching the download links failed: {downloads}"));
    let names: Vec<&str> = downloads
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["/sample.txt", "/logo.png"], "download links");
    for d in downloads {
        let name = d["name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/');
        let on_disk = fs::metadata(root.join(name)).map(|m| m.len()).ok();
        assert_eq!(d["status"], json!(200), "GET {name}: {d}");
        assert_eq!(d["length"].as_u64(), on_disk, "GET {name}: length: {d}");
        assert_eq!(d["download"], json!(true), "{name} link: {d}");
        let disposition = d["disposition"].as_str().unwrap_or_default();
        assert!(
            disposition.starts_with("attachment"),
            "GET {name}: Content-Disposition: {d}"
        );
    }

    let input = browser.find("#json-input");
    let send = browser.find("#upload-button");

    // Invalid JSON: the page warns as it is typed, and shows the server's 400 when sent.
    browser.clear(&input);
    browser.type_text(&input, r#"{"broken": "#);
    let warning = browser.wait_for(
        "the JSON warning",
        "const c = document.getElementById('json-check').textContent;
         return c.startsWith('Not valid JSON') ? c : null;",
    );
    let invalid =
        browser.exec("return document.getElementById('json-input').getAttribute('aria-invalid');");
    assert_eq!(invalid, json!("true"), "aria-invalid after {warning}");
    browser.click(&send);
    let refused = wait_for_result(&browser, 400);
    assert!(
        refused.contains("400 Bad Request") && refused.to_lowercase().contains("json"),
        "the 400 is shown as a readable error: {refused:?}"
    );

    // Valid JSON sent as text/plain: the server's 415, shown as a readable error.
    browser.clear(&input);
    browser.type_text(&input, r#"{"sent as": "text/plain"}"#);
    browser.click(&browser.find("#content-type option[value='text/plain']"));
    browser.click(&send);
    let refused = wait_for_result(&browser, 415);
    assert!(
        refused.contains("415 Unsupported Media Type"),
        "the 415 is shown as a readable error: {refused:?}"
    );
    browser.click(&browser.find("#content-type option[value='application/json']"));
    assert_eq!(
        uploaded_files(&root),
        Vec::<PathBuf>::new(),
        "refused uploads wrote nothing"
    );
    let listed = browser.exec("return document.querySelectorAll('#uploads-list li').length;");
    assert_eq!(listed, json!(0), "refused uploads are not listed");

    // Valid JSON: 201, the created path as a link, the upload listed, the file on disk.
    let document = format!(
        "{{\"from\": \"the browser test\", \"runtime\": \"{runtime}\", \"list\": [1, 2.5, true, null], \"text\": \"caf\u{e9} \u{2713}\"}}"
    );
    browser.clear(&input);
    browser.type_text(&input, &document);
    browser.click(&send);
    let created = wait_for_result(&browser, 201);
    let href =
        browser.exec("return document.querySelector('#upload-result a').getAttribute('href');");
    let href = href.as_str().unwrap_or_default().to_owned();
    assert!(
        is_upload_path(&href),
        "created path {href:?} in {created:?}"
    );
    assert!(created.contains(&href), "{created:?} shows {href}");
    let listed = browser.exec(
        "return [...document.querySelectorAll('#uploads-list a')].map(a => a.getAttribute('href'));");
    assert_eq!(listed, json!([href]), "the uploads list");
    let files = uploaded_files(&root);
    assert_eq!(
        files,
        [root.join(href.trim_start_matches('/'))],
        "files in uploads/"
    );
    let saved = fs::read_to_string(&files[0]).expect("read the uploaded file");
    assert_eq!(saved, document, "the uploaded file holds the JSON as typed");

    // The screenshot shows the page after a successful upload.
    browser.fit_window_to_page();
    let png = browser.screenshot();
    let shot = target.join(format!("browser-{runtime}.png"));
    fs::write(&shot, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", shot.display());
    if std::env::var_os("UPDATE_BROWSER_SCREENSHOT").is_some() && !https {
        fs::write(README_SCREENSHOT, &png).expect("write the README screenshot");
        eprintln!("README screenshot updated: {README_SCREENSHOT}");
    }

    // Following the link gives the uploaded JSON back.
    browser.click(&browser.find("#upload-result a"));
    let shown = browser.wait_for(
        "the uploaded JSON to open",
        &format!(
            "if (location.pathname !== {href:?} || document.readyState !== 'complete') return null;
             const pre = document.querySelector('pre');
             return {{ type: document.contentType, text: pre ? pre.textContent : document.body.innerText }};"
        ),
    );
    assert_eq!(shown["type"], json!("application/json"), "{shown}");
    let text = shown["text"].as_str().unwrap_or_default();
    let got: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the uploaded file in the browser is not JSON ({e}): {text:?}"));
    let sent: Value = serde_json::from_str(&document).expect("the test's own JSON");
    assert_eq!(got, sent, "the uploaded JSON read back in the browser");

    // Back on the page, the list of this tab's uploads is still there.
    browser.back();
    browser.wait_for(
        "the page to come back",
        "return location.pathname === '/' && document.readyState === 'complete';",
    );
    let listed = browser.wait_for(
        "the uploads list after going back",
        "const l = [...document.querySelectorAll('#uploads-list a')].map(a => a.getAttribute('href'));
         return l.length ? l : null;",
    );
    assert_eq!(listed, json!([href]), "the uploads list after going back");

    drop(browser);
    drop(driver);
    drop(server);
}

/// Waits until the page shows the result of an upload with `status`; returns its text.
fn wait_for_result(browser: &Session, status: u16) -> String {
    let shown = browser.wait_for(
        &format!("the page to show the {status} answer"),
        &format!(
            "const r = document.getElementById('upload-result');
             return !r.hidden && r.dataset.status === '{status}' &&
                    !document.getElementById('upload-button').disabled
               ? {{ text: r.textContent, kind: r.className }} : null;"
        ),
    );
    let kind = if status == 201 { "ok" } else { "error" };
    assert_eq!(shown["kind"], json!(format!("result {kind}")), "{shown}");
    shown["text"].as_str().unwrap_or_default().to_owned()
}

/// Without a browser: the page uses only files that exist in `resources/`, with types the
/// server serves, and nothing from the network.
pub fn page_is_self_contained() {
    let root = Path::new(RESOURCES);
    let html = fs::read_to_string(root.join("index.html")).expect("read resources/index.html");
    let refs = attribute_values(&html, &["src", "href"]);
    for name in ["app.css", "app.js", "logo.png", "sample.txt"] {
        assert!(
            refs.iter().any(|r| r == name),
            "index.html refers to {name}"
        );
    }
    for r in &refs {
        assert!(
            !r.contains(':') && !r.starts_with("//"),
            "index.html must not load anything from the network: {r:?}"
        );
        let ext = r.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        assert!(
            SERVED_TYPES.contains(&ext),
            "{r:?} has a type the server refuses"
        );
        let file = root.join(r.trim_start_matches('/'));
        assert!(
            file.is_file(),
            "index.html refers to {r:?}, missing in resources/"
        );
    }
    for entry in fs::read_dir(root).expect("list resources/") {
        let path = entry.expect("read resources/").path();
        if path.is_file() {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            assert!(
                SERVED_TYPES.contains(&ext),
                "{} would be refused by the server (415)",
                path.display()
            );
        }
    }
    let js = fs::read_to_string(root.join("app.js")).expect("read resources/app.js");
    assert!(js.contains("fetch(\"/upload\""), "app.js posts to /upload");
    assert!(
        !js.contains("innerHTML"),
        "app.js builds the page with DOM calls only"
    );
    let logo = fs::read(root.join("logo.png")).expect("read resources/logo.png");
    assert!(png_width(&logo).is_some_and(|w| w > 0), "logo.png is a PNG");
    let ignore = fs::read_to_string(root.join("uploads/.gitignore"))
        .expect("resources/uploads/.gitignore keeps uploads/ in git");
    let lines: Vec<&str> = ignore
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines, ["*", "!.gitignore"], "uploads/.gitignore");
    let shot = fs::read(README_SCREENSHOT).expect("the README screenshot is committed");
    assert!(png_width(&shot).is_some(), "the README screenshot is a PNG");
    assert!(shot.len() < 100 * 1024, "the README screenshot stays small");
}

/// The values of the given attributes in an HTML text (double-quoted, as the page writes them).
fn attribute_values(html: &str, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        let needle = format!(" {name}=\"");
        let mut rest = html;
        while let Some(at) = rest.find(&needle) {
            rest = &rest[at + needle.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    out
}

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

/// The `.json` files in `root/uploads`, sorted.
fn uploaded_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("uploads"))
        .expect("list uploads/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
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
        Session {
            port: driver.port,
            id,
            failure_shot: target.join(format!("browser-{runtime}-failure.png")),
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
        let started = Instant::now();
        loop {
            let v = self.exec(script);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if started.elapsed() > WAIT {
                let result = self.exec(
                    "const r = document.getElementById('upload-result'); return [location.href, r ? r.outerHTML : null];");
                panic!("timed out after {WAIT:?} waiting for {what} (last: {v}; page: {result})");
            }
            thread::sleep(Duration::from_millis(50));
        }
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

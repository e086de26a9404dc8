//! Directory listings (`--dir-listing`, SPEC "Requests") in headless Chromium: a root
//! without `index.html` opens as its listing, a directory link is followed by a real
//! click, and a file of that directory is downloaded by a real click into a download
//! folder and compared byte for byte with the file on disk.
//!
//! It saves a screenshot of the directory's listing as `target/browser-<runtime>-listing.png`;
//! with `UPDATE_BROWSER_SCREENSHOT=1` also as `testkit/src/browser/listing.png` (the
//! README's image; keep it under 100 KiB, as for `screenshot.png`). The variable updates
//! `screenshot.png` too when the page test runs: to update only this image, run only
//! `listing_works_in_headless_chromium`.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use super::{png_width, target_dir, tool, Driver, Session, WorkDir, ELEMENT_KEY, RESOURCES, WAIT};
use crate::{binary_bytes, Fixture, Server};

/// Where the README's listing screenshot lives.
const README_LISTING_SCREENSHOT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/src/browser/listing.png");

/// The file the test downloads from `docs/`: a space, parentheses and non-ASCII in its
/// name, bytes that are not text.
const DOWNLOAD: &str = "report 2026 (draft) \u{e9}.txt";

/// A web root without `index.html`: `docs/` (two directories, a few files, a hidden
/// one), `media/`, `uploads/` and a README.
fn make_root(root: &Path) {
    let docs = root.join("docs");
    for dir in ["docs/guides", "docs/release notes", "media", "uploads"] {
        fs::create_dir_all(root.join(dir)).expect("create a directory of the root");
    }
    let files: Vec<(PathBuf, Vec<u8>)> = vec![
        (docs.join(DOWNLOAD), binary_bytes(24_000)),
        (
            docs.join("changelog.txt"),
            b"0.1.0: directory listings\n".repeat(40),
        ),
        (docs.join("data.json"), br#"{"listing": true}"#.to_vec()),
        (
            docs.join("logo.png"),
            fs::read(Path::new(RESOURCES).join("logo.png")).expect("logo"),
        ),
        (
            docs.join("index of <things> & more.html"),
            b"<p>escaped</p>".to_vec(),
        ),
        (docs.join(".hidden.txt"), b"never listed".to_vec()),
        (
            docs.join("guides/getting started.txt"),
            b"start here\n".to_vec(),
        ),
        (docs.join("release notes/v0.1.txt"), b"first\n".to_vec()),
        (root.join("media/clip.txt"), b"a clip\n".to_vec()),
        (
            root.join("README.txt"),
            b"a root without index.html\n".to_vec(),
        ),
    ];
    for (path, bytes) in files {
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    fs::write(docs.join("manual.txt"), binary_bytes(3 << 20)).expect("manual.txt");
}

/// The listing, in headless Chromium, against the server binary `bin` started with
/// `--dir-listing`; work files go under `target_tmpdir` (`CARGO_TARGET_TMPDIR`).
pub fn listing_end_to_end(bin: &str, target_tmpdir: &str) {
    let runtime = Path::new(bin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("server")
        .to_owned();
    let chromedriver = tool("CHROMEDRIVER", &["chromedriver"]);
    let chromium = tool(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let name = format!("{runtime}-listing");
    let target_tmpdir = Path::new(target_tmpdir);
    let target = target_dir(target_tmpdir);
    let work = WorkDir::new(target_tmpdir, &name);
    let root = work.path.join("root");
    make_root(&root);
    let profile = work.path.join("profile");
    let downloads = work.path.join("downloads");
    fs::create_dir_all(&profile).expect("create the Chromium profile directory");
    fs::create_dir_all(&downloads).expect("create the download directory");

    // Dropped in reverse order: the session, the driver, the server, the work directory.
    let server = Server::builder(bin)
        .fixture(Fixture::at(&root))
        .args(&["--dir-listing"])
        .current_dir(&work.path)
        .inherit_rust_log()
        .log_file(work.path.join("server.log"))
        .start();
    let driver = Driver::start(&chromedriver, &work.path, &profile);
    let browser = Session::create(&driver, &chromium, &profile, &name, &target);
    allow_downloads(&browser, &downloads);
    let base = server.listening.clone();

    // The root: its listing, with no link to a parent.
    browser.navigate(&format!("{base}/"));
    wait_for_listing(&browser, "/");
    assert_eq!(
        link_texts(&browser),
        json!(["docs/", "media/", "uploads/", "README.txt"]),
        "the root's links"
    );

    // A real click on a directory link opens that directory's listing.
    browser.click(&link(&browser, "docs/"));
    wait_for_listing(&browser, "/docs/");
    assert_eq!(
        link_texts(&browser),
        json!([
            "../",
            "guides/",
            "release notes/",
            "changelog.txt",
            "data.json",
            "index of <things> & more.html",
            "logo.png",
            "manual.txt",
            DOWNLOAD,
        ]),
        "the links of /docs/ (directories first, each by name; nothing hidden)"
    );

    // The screenshot shows the directory's listing.
    browser.fit_window_to_page();
    let png = browser.screenshot();
    let shot = target.join(format!("browser-{name}.png"));
    fs::write(&shot, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", shot.display());
    if std::env::var_os("UPDATE_BROWSER_SCREENSHOT").is_some() {
        fs::write(README_LISTING_SCREENSHOT, &png).expect("write the README screenshot");
        eprintln!("README screenshot updated: {README_LISTING_SCREENSHOT}");
    }

    // A real click on a file of that directory downloads it, byte for byte.
    let href = browser.exec(&format!(
        "return [...document.querySelectorAll('a')].find(a => a.textContent === {}).href;",
        json!(DOWNLOAD)
    ));
    let expected_href = format!("{base}/docs/report%202026%20%28draft%29%20%C3%A9.txt");
    assert_eq!(href, json!(expected_href), "the download link, resolved");
    browser.click(&link(&browser, DOWNLOAD));
    let (file, got) = wait_for_download(&downloads);
    let want = fs::read(root.join("docs").join(DOWNLOAD)).expect("read the file on disk");
    assert_eq!(
        got.len(),
        want.len(),
        "the downloaded file's length ({file})"
    );
    assert!(
        got == want,
        "the downloaded file's bytes differ from the file on disk"
    );
    assert_eq!(file, DOWNLOAD, "the downloaded file's name");
    eprintln!("downloaded {file:?}: {} bytes, identical", got.len());

    // The download left the listing in place; its parent link goes back to the root.
    wait_for_listing(&browser, "/docs/");
    browser.click(&link(&browser, "../"));
    wait_for_listing(&browser, "/");

    drop(browser);
    drop(driver);
    drop(server);
}

/// Without a browser: the README's listing screenshot is a small PNG.
pub fn listing_screenshot_is_committed() {
    let shot = fs::read(README_LISTING_SCREENSHOT).expect("the listing screenshot is committed");
    assert!(
        png_width(&shot).is_some(),
        "the listing screenshot is a PNG"
    );
    assert!(
        shot.len() < 100 * 1024,
        "the listing screenshot stays small"
    );
}

/// Lets the page download files into `dir` (Chrome DevTools through chromedriver).
fn allow_downloads(browser: &Session, dir: &Path) {
    let params = json!({ "behavior": "allow", "downloadPath": dir.to_string_lossy() });
    browser.call(
        "POST",
        "/goog/cdp/execute",
        Some(&json!({ "cmd": "Browser.setDownloadBehavior", "params": params })),
    );
}

/// Waits until the page is the loaded listing of `dir`.
fn wait_for_listing(browser: &Session, dir: &str) {
    let title = format!("Index of {dir}");
    browser.wait_for(
        &format!("the listing of {dir}"),
        &format!(
            "return location.pathname === {} && document.readyState === 'complete' &&
                    document.title === {} && document.querySelector('h1').textContent === {};",
            json!(dir),
            json!(title),
            json!(title)
        ),
    );
}

/// The texts of the page's links, in order.
fn link_texts(browser: &Session) -> Value {
    browser.exec("return [...document.querySelectorAll('table a')].map(a => a.textContent);")
}

/// The page's link whose text is `text`, as a WebDriver element.
fn link(browser: &Session, text: &str) -> String {
    let found = browser.exec(&format!(
        "return [...document.querySelectorAll('a')].find(a => a.textContent === {}) || null;",
        json!(text)
    ));
    found[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("no link {text:?} on the page: {found}"))
        .to_owned()
}

/// Waits for the one finished download in `dir`: its name and bytes.
fn wait_for_download(dir: &Path) -> (String, Vec<u8>) {
    let started = Instant::now();
    loop {
        let names: Vec<String> = fs::read_dir(dir)
            .expect("list the download directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let partial = names
            .iter()
            .any(|n| n.ends_with(".crdownload") || n.starts_with(".com.google"));
        if let [name] = names.as_slice() {
            if !partial {
                let bytes = fs::read(dir.join(name)).expect("read the download");
                return (name.clone(), bytes);
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no finished download in {} within {WAIT:?} (found {names:?})",
            dir.display()
        );
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

//! Uploads of files through the bundled page's drop zone and picker (SPEC "Uploads of any
//! file", last bullet; "Access control"), in headless Chromium: a 20 MiB file arrives
//! byte for byte with its progress bar at 100%, beside a small one whose name is taken
//! and one dropped on the zone; with `--auth`, an upload without credentials shows the
//! page's sign-in message and writes nothing, and the same upload signed in is saved.
//!
//! How a file is chosen: WebDriver "send keys" to the page's `<input type="file">` with
//! the path of a file the test wrote into its work directory (several paths, one a line,
//! choose several files), which is how chromedriver fills a real file chooser. A drop
//! is a `drop` event with a `DataTransfer` made in the page (WebDriver cannot drag from
//! the desktop); the page hands both to the same function.
//!
//! How the test signs in: as a person does. A `401` with `WWW-Authenticate: Basic` makes
//! Chromium ask for a user name and password, for the page's `XMLHttpRequest` and
//! `fetch` too; headless, the question waits forever for an answer (the request hangs,
//! and WebDriver has no command for it). `devtools::SignInDialog` answers it over
//! a DevTools connection of its own: "cancel" first (the page then gets the 401 and
//! shows its message), then alice's user name and password (Chromium sends the upload
//! again with them and keeps them for the next requests). Two other ways were weighed:
//! an `Authorization` header for the whole tab (`Network.setExtraHTTPHeaders` through
//! chromedriver's `goog/cdp/execute`) signs in, but leaves the anonymous upload hanging
//! on the question; credentials in the page's URL (`http://alice:secret@HOST/`) are used
//! by Chromium for the navigation only, not for the page's own requests.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::devtools::{Answer, SignInDialog};
use super::{copy_resources, target_dir, tool, Driver, Session, WorkDir, RESOURCES};
use crate::{binary_bytes, Fixture, Server};

/// The large file: 20 MiB, a space, parentheses and non-ASCII in its name.
const BIG_NAME: &str = "large file \u{e9} (20 MiB).bin.txt";
const BIG_LEN: usize = 20 << 20;
/// The small file, whose name is already taken in `uploads/` (saved as `notes-1.txt`).
const SMALL_NAME: &str = "notes.txt";
/// The file sent without, then with, credentials: over the 1 MiB the server reads of a
/// refused body before it closes, so the browser is still sending when the 401 comes.
const SIGNED_LEN: usize = 3 << 20;
/// How long a 20 MiB upload may take on a busy machine (a debug build of the server,
/// two browsers at once).
const UPLOAD_WAIT: Duration = Duration::from_secs(90);

/// A page test's processes, ended in this order when dropped: the browser session, the
/// driver (and any Chromium left), the server, then the work directory.
struct Run {
    browser: Session,
    _driver: Driver,
    _server: Server,
    root: PathBuf,
    work: WorkDir,
}

impl Run {
    /// The server on a copy of `resources/` with `args`, and a browser on its page.
    fn start(bin: &str, target_tmpdir: &str, suffix: &str, args: &[&str]) -> Run {
        let runtime = Path::new(bin)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("server");
        let name = format!("{runtime}-{suffix}");
        let chromedriver = tool("CHROMEDRIVER", &["chromedriver"]);
        let chromium = tool(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let target_tmpdir = Path::new(target_tmpdir);
        let target = target_dir(target_tmpdir);
        let work = WorkDir::new(target_tmpdir, &name);
        let root = work.path.join("root");
        copy_resources(Path::new(RESOURCES), &root);
        let profile = work.path.join("profile");
        fs::create_dir_all(&profile).expect("create the Chromium profile directory");
        let server = Server::builder(bin)
            .fixture(Fixture::at(&root))
            .args(args)
            .current_dir(&work.path)
            .inherit_rust_log()
            .log_file(work.path.join("server.log"))
            .start();
        let driver = Driver::start(&chromedriver, &work.path, &profile);
        let browser = Session::create(&driver, &chromium, &profile, &name, &target);
        browser.navigate(&format!("{}/", server.listening));
        browser.wait_for(
            "the page to load",
            "return document.readyState === 'complete' &&
                    document.getElementById('json-check').textContent === 'Valid JSON.';",
        );
        assert_eq!(
            browser.exec("return document.title;"),
            json!("File and upload server"),
            "the page loaded"
        );
        Run {
            browser,
            _driver: driver,
            _server: server,
            root,
            work,
        }
    }

    /// Writes a file to send into the work directory; its absolute path.
    fn file_to_send(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = self.work.path.join("to-send");
        fs::create_dir_all(&dir).expect("create the directory of the files to send");
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The names in `uploads/` but its `.gitignore` (temporaries included).
    fn uploads(&self) -> BTreeSet<String> {
        fs::read_dir(self.root.join("uploads"))
            .expect("list uploads/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".gitignore")
            .collect()
    }

    /// Chooses `files` in the page's file input, as a person does with the picker.
    fn choose(&self, files: &[&Path]) {
        let input = self.browser.find("#file-input");
        self.browser.choose_files(&input, files);
    }

    /// Waits until the page's file list has `count` rows, none waiting or uploading;
    /// the rows: name, state, HTTP status, progress value and max, percent text,
    /// outcome, links (href as written, text).
    fn finished_rows(&self, count: usize) -> Vec<Value> {
        let rows = self.browser.wait_for_within(
            &format!("{count} file(s) to finish uploading"),
            &format!(
                "const rows = [...document.querySelectorAll('#file-list li')];
                 if (rows.length !== {count} ||
                     rows.some(r => ['waiting', 'uploading'].includes(r.dataset.state))) return null;
                 return rows.map(r => ({{
                   name: r.querySelector('.file-name').textContent,
                   state: r.dataset.state,
                   status: Number(r.dataset.status),
                   value: r.querySelector('progress').value,
                   max: r.querySelector('progress').max,
                   percent: r.querySelector('.file-percent').textContent,
                   outcome: r.querySelector('.file-outcome').textContent,
                   links: [...r.querySelectorAll('.file-outcome a')]
                     .map(a => ({{ href: a.getAttribute('href'), text: a.textContent }})),
                 }}));"
            ),
            UPLOAD_WAIT,
        );
        rows.as_array().cloned().unwrap_or_default()
    }

    /// Fetches `href` in the page: its status and length.
    fn fetch_len(&self, href: &str) -> Value {
        self.browser.exec_async(&format!(
            "const done = arguments[arguments.length - 1];
             fetch({href}).then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength])),
                                e => done(String(e)));",
            href = json!(href)
        ))
    }
}

/// The one saved file of a finished row: its link's href, after checking the row.
fn saved_link(row: &Value, name: &str) -> String {
    assert_eq!(row["state"], json!("done"), "{name}: {row}");
    assert_eq!(row["status"], json!(201), "{name}: {row}");
    assert_eq!(row["value"], row["max"], "{name}: the bar is full: {row}");
    assert_eq!(row["max"], json!(100), "{row}");
    assert_eq!(row["percent"], json!("100%"), "{name}: {row}");
    let links = row["links"].as_array().expect("links");
    assert_eq!(links.len(), 1, "{name}: one link: {row}");
    links[0]["href"].as_str().expect("href").to_owned()
}

/// Starts recording every value the page's progress bars take (`window.progressSeen`,
/// by bar id), from the progress events as they come.
fn record_progress(browser: &Session) {
    browser.exec(
        "window.progressSeen = {};
         new MutationObserver(ms => { for (const m of ms) {
             if (m.target.tagName !== 'PROGRESS') continue;
             (window.progressSeen[m.target.id] ||= []).push(m.target.value);
         } }).observe(document.getElementById('file-list'),
                      { subtree: true, attributes: true, attributeFilter: ['value'] });",
    );
}

/// A 20 MiB file and a small one chosen together: a row and a bar each, both saved
/// (the small one under a numbered name, the file of that name untouched), each link
/// giving the file back, the bytes on disk equal to those sent, nothing else left in
/// `uploads/`.
pub fn files_end_to_end(bin: &str, target_tmpdir: &str) {
    let run = Run::start(bin, target_tmpdir, "files", &[]);
    let big = binary_bytes(BIG_LEN);
    let small = b"a small text file, sent with the big one\n".repeat(50);
    let big_path = run.file_to_send(BIG_NAME, &big);
    let small_path = run.file_to_send(SMALL_NAME, &small);
    let taken = b"already here, never overwritten\n";
    fs::write(run.root.join("uploads").join(SMALL_NAME), taken).expect("write notes.txt");

    // The drop zone is a button with a name, and opens the picker.
    let zone = run.browser.exec(
        "const z = document.getElementById('drop-zone');
         return [z.tagName, z.type, z.textContent.replace(/\\s+/g, ' ').trim()];",
    );
    assert_eq!(
        zone,
        json!([
            "BUTTON",
            "button",
            "Drop files here or click to choose files"
        ]),
        "the drop zone"
    );
    // Enter on the drop zone (real key events) opens the picker: the input's click()
    // is replaced for this check, as a real file chooser would wait for a person.
    run.browser.exec(
        "const i = document.getElementById('file-input');
         window.pickerOpened = 0;
         i.click = () => { window.pickerOpened += 1; };",
    );
    let zone_element = run.browser.find("#drop-zone");
    run.browser.type_text(&zone_element, "\u{e007}");
    let opened = run
        .browser
        .exec("delete document.getElementById('file-input').click; return window.pickerOpened;");
    assert_eq!(
        opened,
        json!(1),
        "Enter on the drop zone opens the file picker once"
    );

    record_progress(&run.browser);
    run.choose(&[&big_path, &small_path]);
    let rows = run.finished_rows(2);
    eprintln!("rows: {}", json!(rows));
    assert_eq!(rows[0]["name"], json!(BIG_NAME), "{rows:?}");
    assert_eq!(rows[1]["name"], json!(SMALL_NAME), "{rows:?}");
    let big_href = saved_link(&rows[0], BIG_NAME);
    let small_href = saved_link(&rows[1], SMALL_NAME);
    assert_eq!(
        rows[0]["links"][0]["text"],
        json!(format!("/uploads/{BIG_NAME}")),
        "the link shows the saved name: {rows:?}"
    );
    assert_eq!(
        small_href, "/uploads/notes-1.txt",
        "a taken name gets a number"
    );

    // The big bar was fed by progress events: values that only grow, up to 100.
    let seen = run.browser.exec("return window.progressSeen;");
    let big_seen: Vec<u64> = seen["file-progress-1"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    eprintln!("progress of the 20 MiB upload: {big_seen:?}");
    assert_eq!(big_seen.last(), Some(&100), "the bar reached 100%: {seen}");
    assert!(
        big_seen.windows(2).all(|w| w[0] <= w[1]),
        "the bar never went back: {seen}"
    );

    // A drop on the drop zone (a DataTransfer made in the page, delivered as a drag from
    // the desktop is): dragover accepted, the zone highlighted while over it, the file
    // uploaded like a chosen one.
    let dropped = run.browser.exec(
        "const z = document.getElementById('drop-zone');
         const dt = new DataTransfer();
         dt.items.add(new File(['dropped on the zone\\n'.repeat(100)], 'dropped.txt',
                               { type: 'text/plain' }));
         const ev = (type) => new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true });
         z.dispatchEvent(ev('dragenter'));
         const accepted = !z.dispatchEvent(ev('dragover'));
         const highlighted = z.classList.contains('dragging');
         z.dispatchEvent(ev('drop'));
         return [accepted, highlighted, z.classList.contains('dragging')];",
    );
    assert_eq!(
        dropped,
        json!([true, true, false]),
        "the drop zone accepts the drag, is highlighted, then not"
    );
    let rows = run.finished_rows(3);
    assert_eq!(rows[2]["name"], json!("dropped.txt"), "{rows:?}");
    let dropped_href = saved_link(&rows[2], "dropped.txt");
    assert_eq!(dropped_href, "/uploads/dropped.txt");
    assert_eq!(
        fs::read(run.root.join("uploads/dropped.txt")).expect("dropped.txt"),
        b"dropped on the zone\n".repeat(100),
        "the dropped file on disk"
    );

    // On disk: exactly the bytes sent, the taken name untouched, nothing else.
    let on_disk = fs::read(run.root.join("uploads").join(BIG_NAME)).expect("the saved big file");
    assert_eq!(on_disk.len(), big.len(), "the saved file's length");
    assert!(
        on_disk == big,
        "the saved file's bytes differ from those sent"
    );
    assert_eq!(
        fs::read(run.root.join("uploads/notes-1.txt")).expect("notes-1.txt"),
        small,
        "notes-1.txt"
    );
    assert_eq!(
        fs::read(run.root.join("uploads").join(SMALL_NAME)).expect("notes.txt"),
        taken,
        "the file of the taken name is untouched"
    );
    let expected: BTreeSet<String> = [BIG_NAME, SMALL_NAME, "notes-1.txt", "dropped.txt"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(run.uploads(), expected, "uploads/ (no temporary left)");

    // Each link gives its file back; the tab's list of uploads has both.
    assert_eq!(
        run.fetch_len(&big_href),
        json!([200, BIG_LEN]),
        "GET {big_href}"
    );
    assert_eq!(
        run.fetch_len(&small_href),
        json!([200, small.len()]),
        "GET {small_href}"
    );
    let listed = run.browser.exec(
        "return [...document.querySelectorAll('#uploads-list a')].map(a => a.getAttribute('href'));",
    );
    assert_eq!(
        listed,
        json!([big_href, small_href, dropped_href]),
        "the uploads list"
    );
}

/// With `-a '@/:ro' -a alice:HASH@/:rw`: the page loads without credentials; a file
/// upload and a JSON upload make the browser ask for a sign-in, and cancelled, show the
/// page's sign-in message and write nothing; the same file uploaded again, with alice's
/// credentials given when the browser asks, is saved byte for byte, and the next upload
/// goes without asking again.
pub fn files_need_sign_in(bin: &str, target_tmpdir: &str) {
    let hash = hash_password(bin, "secret");
    let alice = format!("alice:{hash}@/:rw");
    let run = Run::start(bin, target_tmpdir, "auth", &["-a", "@/:ro", "-a", &alice]);
    let dialog = SignInDialog::attach(&run.browser, Answer::Cancel);
    let bytes = binary_bytes(SIGNED_LEN);
    let path = run.file_to_send("signed.bin.txt", &bytes);

    // Without credentials: the browser asks, the person cancels, the page shows the 401
    // as a sign-in message; nothing is written.
    run.choose(&[&path]);
    let rows = run.finished_rows(1);
    let row = &rows[0];
    assert_eq!(row["state"], json!("error"), "{row}");
    assert_eq!(row["status"], json!(401), "{row}");
    let outcome = row["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("Sign in to upload (401)") && outcome.contains("401 Unauthorized"),
        "the 401 is shown as a sign-in message: {outcome:?}"
    );
    assert_eq!(row["links"], json!([]), "no link: {row}");
    assert_eq!(dialog.asked(), 1, "the browser asked for a sign-in");
    run.browser.click(&run.browser.find("#upload-button"));
    let json_refused = run.browser.wait_for(
        "the JSON upload's 401",
        "const r = document.getElementById('upload-result');
         return !r.hidden && r.dataset.status === '401' ? r.textContent : null;",
    );
    assert!(
        json_refused
            .as_str()
            .is_some_and(|t| t.starts_with("Sign in to upload (401)")),
        "the JSON upload's 401: {json_refused}"
    );
    assert_eq!(
        dialog.asked(),
        2,
        "the browser asked again for the JSON upload"
    );
    assert_eq!(
        run.uploads(),
        BTreeSet::new(),
        "uploads without credentials wrote nothing"
    );

    // Upload again, and sign in as alice when the browser asks: saved.
    dialog.answer_with(Answer::SignIn {
        user: "alice".into(),
        password: "secret".into(),
    });
    run.choose(&[&path]);
    let rows = run.finished_rows(2);
    let href = saved_link(&rows[1], "signed.bin.txt");
    assert_eq!(href, "/uploads/signed.bin.txt", "{rows:?}");
    assert_eq!(dialog.asked(), 3, "the browser asked once more");
    let on_disk = fs::read(run.root.join("uploads/signed.bin.txt")).expect("the saved file");
    assert!(
        on_disk == bytes,
        "the saved file's bytes differ from those sent"
    );

    // Signed in, the browser sends the credentials by itself: no question, and the JSON
    // editor's upload is saved too.
    run.browser.click(&run.browser.find("#upload-button"));
    let created = run.browser.wait_for(
        "the JSON upload's 201",
        "const r = document.getElementById('upload-result');
         return !r.hidden && r.dataset.status === '201' ? r.textContent : null;",
    );
    assert_eq!(dialog.asked(), 3, "no question once signed in: {created}");
    let names = run.uploads();
    assert_eq!(names.len(), 2, "uploads/ after signing in: {names:?}");
    assert!(names.contains("signed.bin.txt"), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with(".json")),
        "the JSON upload: {names:?}"
    );
    drop(dialog);
}

/// With `--max-upload 1048576`: a 3 MiB file is refused with the page's message for a
/// 413, and with the browser offline an upload shows the network error; nothing is
/// written either time, and each refused row says it was not saved.
pub fn files_refused(bin: &str, target_tmpdir: &str) {
    let run = Run::start(bin, target_tmpdir, "refused", &["--max-upload", "1048576"]);
    let path = run.file_to_send("too big.txt", &binary_bytes(3 << 20));

    run.choose(&[&path]);
    let rows = run.finished_rows(1);
    let row = &rows[0];
    assert_eq!(row["state"], json!("error"), "{row}");
    assert_eq!(row["status"], json!(413), "{row}");
    assert_eq!(row["percent"], json!("not saved"), "{row}");
    let outcome = row["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("Too large (413)") && outcome.contains("413"),
        "the 413 is shown as a readable error: {outcome:?}"
    );
    assert_eq!(
        run.uploads(),
        BTreeSet::new(),
        "a refused upload wrote nothing"
    );

    // The network gone (Chromium's own emulation): the page says the upload did not finish.
    run.browser.cdp("Network.enable", json!({}));
    run.browser.cdp(
        "Network.emulateNetworkConditions",
        json!({ "offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
    );
    let small = run.file_to_send("small.txt", b"small enough\n");
    run.choose(&[&small]);
    let rows = run.finished_rows(2);
    let row = &rows[1];
    assert_eq!(row["state"], json!("error"), "{row}");
    assert_eq!(row["status"], json!(0), "{row}");
    let outcome = row["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("Could not reach the server"),
        "a network error is shown as such: {outcome:?}"
    );
    assert_eq!(run.uploads(), BTreeSet::new(), "nothing written offline");

    // Back online, the same file is saved.
    run.browser.cdp(
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
    );
    run.choose(&[&small]);
    let rows = run.finished_rows(3);
    assert_eq!(saved_link(&rows[2], "small.txt"), "/uploads/small.txt");
    assert_eq!(
        run.uploads(),
        BTreeSet::from(["small.txt".to_owned()]),
        "uploads/ once back online"
    );
}

/// The PHC string `bin --hash-password` prints for `password`.
fn hash_password(bin: &str, password: &str) -> String {
    let mut child = Command::new(bin)
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin} --hash-password: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("wait for --hash-password");
    assert!(out.status.success(), "--hash-password: {out:?}");
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        hash.starts_with("$argon2id$"),
        "--hash-password printed {hash:?}"
    );
    hash
}

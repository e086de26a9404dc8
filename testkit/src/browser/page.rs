//! The bundled page (`resources/index.html`) in headless Chromium, over HTTP and over
//! HTTPS, and, without a browser, that it is self-contained (see [`super`]).

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

use super::{
    copy_resources, is_upload_path, png_width, target_dir, tool, Driver, Session, WorkDir,
    README_SCREENSHOT, RESOURCES, SERVED_TYPES,
};
use crate::{binary_bytes, Fixture, Server};

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
        // Over TLS the server offers h2 first (ALPN), and Chromium takes it: the page
        // and what it loads came over HTTP/2 (Resource Timing's nextHopProtocol).
        let protocols = browser.exec(
            "return [performance.getEntriesByType('navigation')[0].nextHopProtocol,
                     ...performance.getEntriesByType('resource').map(e => e.nextHopProtocol)];",
        );
        let protocols = protocols.as_array().expect("protocols");
        assert!(
            protocols.len() >= 3 && protocols.iter().all(|p| p == "h2"),
            "not all over h2: {protocols:?}"
        );
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
    // The page, its script and its stylesheet arrived compressed (--compress is on by
    // default) and rendered: what went over the wire (Resource Timing's encodedBodySize)
    // is smaller than what the browser decoded, which is the file's size, and a fetch of
    // the script names the coding Chromium chose (br or zstd over HTTPS, gzip at least).
    let sizes = browser.exec(
        "return ['/', '/app.js', '/app.css'].map(p => {
           const e = performance.getEntriesByName(new URL(p, location.href).href)[0];
           return e ? [p, e.encodedBodySize, e.decodedBodySize] : [p, null, null];
         });",
    );
    for (row, file) in
        sizes
            .as_array()
            .expect("sizes")
            .iter()
            .zip(["index.html", "app.js", "app.css"])
    {
        let size = fs::metadata(root.join(file)).expect("a resource").len();
        let (encoded, decoded) = (row[1].as_u64(), row[2].as_u64());
        assert_eq!(decoded, Some(size), "{file} decoded by Chromium: {row}");
        assert!(
            encoded.is_some_and(|e| e > 0 && e < size),
            "{file} did not arrive compressed: {row}"
        );
    }
    let coding = browser.exec_async(
        "const done = arguments[arguments.length - 1];
         fetch('/app.js', {cache: 'no-store'})
           .then(r => r.text().then(t => done([r.headers.get('Content-Encoding'), t.length])));",
    );
    let app_js = fs::read_to_string(root.join("app.js")).expect("app.js");
    assert!(
        matches!(coding[0].as_str(), Some("gzip" | "br" | "zstd")),
        "app.js fetched without a coding: {coding}"
    );
    assert_eq!(
        coding[1].as_u64(),
        Some(app_js.encode_utf16().count() as u64)
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

    // A file chosen with the picker: its row, its full bar and the link to it (shown in
    // the screenshot too; `files` tests the file uploads in depth).
    let report = work.path.join("report 2026.pdf");
    fs::write(&report, binary_bytes(180_000)).expect("write the file to upload");
    browser.choose_files(&browser.find("#file-input"), &[&report]);
    let row = browser.wait_for(
        "the file upload",
        "const r = document.querySelector('#file-list li');
         return r && r.dataset.state !== 'waiting' && r.dataset.state !== 'uploading'
           ? { state: r.dataset.state, value: r.querySelector('progress').value,
               href: r.querySelector('.file-outcome a')?.getAttribute('href') ?? null }
           : null;",
    );
    let report_href = "/uploads/report%202026.pdf";
    assert_eq!(
        row,
        json!({ "state": "done", "value": 100, "href": report_href }),
        "the file's row"
    );
    assert_eq!(
        fs::read(root.join("uploads/report 2026.pdf")).ok(),
        Some(binary_bytes(180_000)),
        "the uploaded file on disk"
    );

    // The screenshot shows the page after a successful upload of each kind.
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
    assert_eq!(
        listed,
        json!([href, report_href]),
        "the uploads list after going back"
    );

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
    for needle in [
        "new XMLHttpRequest()",
        "xhr.upload.addEventListener(\"progress\"",
        "new FormData()",
        "xhr.open(\"POST\", \"/upload\")",
    ] {
        assert!(
            js.contains(needle),
            "app.js posts files as multipart/form-data with upload progress: {needle}"
        );
    }
    for needle in [
        "<button type=\"button\" id=\"drop-zone\"",
        "<input type=\"file\" id=\"file-input\"",
        "<label for=\"file-input\"",
    ] {
        assert!(html.contains(needle), "index.html has {needle}");
    }
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

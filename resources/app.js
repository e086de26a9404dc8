// The bundled page. Two ways to upload:
// - files, dropped on the drop zone or chosen with the picker (the drop zone is also the
//   button that opens it): each file is its own multipart/form-data POST to /upload, sent
//   with XMLHttpRequest (fetch reports no upload progress), one after another, with a
//   progress bar fed by the upload's progress events and a link to each saved file;
// - a JSON document, checked as it is typed and posted with fetch.
// The server's answers are shown as text; the uploads made from this tab are listed
// (kept in sessionStorage, so the list survives following a link and coming back).
"use strict";

(function () {
  const STORE_KEY = "uploads";
  // The server answers with paths like /uploads/<uuid>.json or /uploads/report%201.pdf
  // (one percent-encoded segment); anything else is shown as text, never used as a link.
  const UPLOAD_PATH = /^\/uploads\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$/;

  const form = document.getElementById("upload-form");
  const input = document.getElementById("json-input");
  const check = document.getElementById("json-check");
  const contentType = document.getElementById("content-type");
  const button = document.getElementById("upload-button");
  const result = document.getElementById("upload-result");
  const list = document.getElementById("uploads-list");
  const empty = document.getElementById("uploads-empty");
  const curl = document.getElementById("curl-example");
  const dropZone = document.getElementById("drop-zone");
  const fileInput = document.getElementById("file-input");
  const fileList = document.getElementById("file-list");
  const filesStatus = document.getElementById("files-status");

  curl.textContent = "curl -i " + window.location.origin + "/sample.txt";

  function isUploadPath(path) {
    return typeof path === "string" && UPLOAD_PATH.test(path) && !/^\/uploads\/\.+$/.test(path);
  }

  function loadUploads() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(STORE_KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((u) => u && isUploadPath(u.path)) : [];
    } catch (_) {
      return [];
    }
  }

  const uploads = loadUploads();

  function saveUploads() {
    try {
      window.sessionStorage.setItem(STORE_KEY, JSON.stringify(uploads));
    } catch (_) {
      // Storage can be full or disabled; the list still works for this page view.
    }
  }

  function remember(path) {
    uploads.push({ path: path, at: Date.now() });
    saveUploads();
    renderUploads();
  }

  // A link to a saved file: the path as the server sent it (percent-encoded), the name
  // as a person reads it.
  function link(path) {
    const a = document.createElement("a");
    a.href = path;
    try {
      a.textContent = decodeURIComponent(path);
    } catch (_) {
      a.textContent = path;
    }
    return a;
  }

  function renderUploads() {
    list.replaceChildren();
    for (const u of uploads) {
      const li = document.createElement("li");
      li.append(link(u.path));
      const when = new Date(u.at);
      const time = document.createElement("time");
      time.dateTime = when.toISOString();
      time.textContent = when.toLocaleTimeString();
      li.append(time);
      list.append(li);
    }
    empty.hidden = uploads.length > 0;
  }

  // ---- What a refusal means, for both kinds of upload --------------------------------

  // The server's error pages are small HTML documents: their heading and text.
  function errorText(status, statusText, type, body) {
    const fallback = (status + " " + statusText).trim();
    if ((type || "").startsWith("text/html")) {
      const doc = new DOMParser().parseFromString(body, "text/html");
      const title = doc.querySelector("h1") || doc.querySelector("title");
      const detail = doc.querySelector("p");
      const head = title ? title.textContent.trim() : fallback;
      return detail ? head + ": " + detail.textContent.trim() : head;
    }
    const plain = (body || "").trim().slice(0, 300);
    return plain ? fallback + ": " + plain : fallback;
  }

  // The sentence shown for a refused upload: what to do about the common cases, then
  // the server's own words.
  function refusal(status, detail) {
    switch (status) {
      case 401:
        return (
          "Sign in to upload (401): this server takes uploads only from signed-in users. " +
          "Upload again and give your user name and password when the browser asks. " +
          "The server said: " + detail
        );
      case 403:
        return "Not allowed (403): this account may not upload here. The server said: " + detail;
      case 413:
        return "Too large (413): this is over the server's upload limit; nothing was saved. The server said: " + detail;
      case 429:
        return "Too many failed sign-ins (429): wait a minute, then try again. The server said: " + detail;
      case 507:
        return "The server's disk is full (507): nothing was saved; try again once there is space. The server said: " + detail;
      default:
        return "Refused: " + detail;
    }
  }

  const NETWORK_ERROR =
    "Could not reach the server, or the connection was cut before it answered: the upload did not finish.";

  // ---- Files: the drop zone, the picker, one request per file --------------------------

  const queue = [];
  let sending = false;
  let fileCount = 0;

  function formatSize(bytes) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let n = bytes;
    let u = 0;
    while (n >= 1024 && u < units.length - 1) {
      n /= 1024;
      u += 1;
    }
    return (u === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[u];
  }

  function announce(text) {
    filesStatus.textContent = text;
  }

  // One row of the file list: the name (the progress bar's label), size, bar, percent
  // and the outcome.
  function fileItem(file) {
    fileCount += 1;
    const id = "file-progress-" + fileCount;
    const li = document.createElement("li");
    li.className = "file-item";
    li.dataset.state = "waiting";
    const name = document.createElement("label");
    name.className = "file-name";
    name.htmlFor = id;
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "file-size";
    size.textContent = formatSize(file.size);
    const bar = document.createElement("progress");
    bar.id = id;
    bar.max = 100;
    bar.value = 0;
    const percent = document.createElement("span");
    percent.className = "file-percent";
    percent.setAttribute("aria-hidden", "true");
    percent.textContent = "0%";
    const outcome = document.createElement("p");
    outcome.className = "file-outcome";
    outcome.textContent = "Waiting…";
    li.append(name, size, bar, percent, outcome);
    fileList.append(li);
    return { file, li, size, bar, percent, outcome };
  }

  function setProgress(item, fraction) {
    const value = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
    if (value > item.bar.value || value === 100) {
      item.bar.value = value;
      item.percent.textContent = value + "%";
    }
  }

  function finish(item, state, status, ...parts) {
    if (state === "error") item.percent.textContent = "not saved";
    item.li.dataset.state = state;
    item.li.dataset.status = String(status);
    item.outcome.className = "file-outcome " + (state === "done" ? "ok" : "error");
    item.outcome.replaceChildren(...parts);
    announce(item.file.name + ": " + item.outcome.textContent);
  }

  function answered(item, xhr) {
    const status = xhr.status;
    const body = xhr.responseText || "";
    if (status === 201) {
      setProgress(item, 1);
      let paths = [];
      try {
        const answer = JSON.parse(body);
        if (answer && Array.isArray(answer.paths)) {
          paths = answer.paths;
        } else if (answer && typeof answer.path === "string") {
          paths = [answer.path];
        }
      } catch (_) {
        paths = [xhr.getResponseHeader("Location") || ""];
      }
      const good = paths.filter(isUploadPath);
      if (good.length === 0) {
        finish(item, "done", 201, "Saved (201), at an unexpected path: " + paths.join(", "));
        return;
      }
      const parts = ["Saved (201): "];
      good.forEach((path, i) => {
        if (i > 0) parts.push(", ");
        parts.push(link(path));
        remember(path);
      });
      finish(item, "done", 201, ...parts);
      return;
    }
    const detail = errorText(status, xhr.statusText, xhr.getResponseHeader("Content-Type"), body);
    finish(item, "error", status, refusal(status, detail));
  }

  function send(item) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      item.li.dataset.state = "uploading";
      item.outcome.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable && e.total > 0) {
          setProgress(item, e.loaded / e.total);
        }
      });
      xhr.upload.addEventListener("load", () => setProgress(item, 1));
      xhr.addEventListener("load", () => {
        answered(item, xhr);
        resolve();
      });
      xhr.addEventListener("error", () => {
        finish(item, "error", 0, NETWORK_ERROR);
        resolve();
      });
      xhr.addEventListener("abort", () => {
        finish(item, "error", 0, "The upload was stopped.");
        resolve();
      });
      const body = new FormData();
      body.append("file", item.file, item.file.name);
      xhr.open("POST", "/upload");
      xhr.send(body);
    });
  }

  async function pump() {
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0) {
        await send(queue.shift());
      }
    } finally {
      sending = false;
    }
  }

  function addFiles(files, skipped) {
    for (const name of skipped) {
      const item = fileItem({ name: name, size: 0 });
      item.size.textContent = "folder";
      item.bar.hidden = true;
      item.percent.hidden = true;
      finish(item, "error", 0, "A folder: only files are uploaded.");
    }
    for (const file of files) {
      queue.push(fileItem(file));
    }
    pump();
  }

  fileInput.addEventListener("change", () => {
    addFiles([...fileInput.files], []);
    fileInput.value = ""; // choosing the same file again is a new upload
  });

  dropZone.addEventListener("click", () => fileInput.click());

  for (const type of ["dragenter", "dragover"]) {
    dropZone.addEventListener(type, (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("dragging");
    });
  }
  dropZone.addEventListener("dragleave", (e) => {
    if (!dropZone.contains(e.relatedTarget)) dropZone.classList.remove("dragging");
  });
  dropZone.addEventListener("drop", (e) => {
    e.preventDefault();
    dropZone.classList.remove("dragging");
    const files = [];
    const folders = [];
    const items = e.dataTransfer.items ? [...e.dataTransfer.items] : [];
    if (items.length > 0) {
      for (const it of items) {
        if (it.kind !== "file") continue;
        const entry = it.webkitGetAsEntry ? it.webkitGetAsEntry() : null;
        const file = it.getAsFile();
        if (entry && entry.isDirectory) {
          folders.push(entry.name);
        } else if (file) {
          files.push(file);
        }
      }
    } else {
      files.push(...e.dataTransfer.files);
    }
    addFiles(files, folders);
  });
  // A file dropped beside the zone is refused, rather than opened in place of the page.
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (!dropZone.contains(e.target)) e.dataTransfer.dropEffect = "none";
  });
  window.addEventListener("drop", (e) => e.preventDefault());

  // ---- JSON ----------------------------------------------------------------------------

  function checkJson() {
    const text = input.value;
    if (text.trim() === "") {
      check.textContent = "Empty: the server will refuse this (400).";
      input.setAttribute("aria-invalid", "true");
      return;
    }
    try {
      JSON.parse(text);
      check.textContent = "Valid JSON.";
      input.removeAttribute("aria-invalid");
    } catch (err) {
      check.textContent =
        "Not valid JSON (" + err.message + "). You can still send it to see the server's answer.";
      input.setAttribute("aria-invalid", "true");
    }
  }

  function showResult(kind, status, ...parts) {
    result.hidden = false;
    result.className = "result " + kind;
    result.dataset.status = String(status);
    const p = document.createElement("p");
    p.append(...parts);
    result.replaceChildren(p);
  }

  async function responseErrorText(response) {
    let body = "";
    try {
      body = await response.text();
    } catch (_) {
      // The status line is enough.
    }
    return errorText(response.status, response.statusText, response.headers.get("Content-Type"), body);
  }

  async function upload(event) {
    event.preventDefault();
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch("/upload", {
        method: "POST",
        headers: { "Content-Type": contentType.value },
        body: input.value,
      });
      if (response.status === 201) {
        let path = response.headers.get("Location") || "";
        try {
          const answer = await response.json();
          if (answer && typeof answer.path === "string") {
            path = answer.path;
          }
        } catch (_) {
          // The Location header is enough.
        }
        if (isUploadPath(path)) {
          remember(path);
          showResult("ok", 201, "Created (201): ", link(path));
        } else {
          showResult("ok", 201, "Created (201), at an unexpected path: " + path);
        }
      } else {
        const text = await responseErrorText(response);
        showResult("error", response.status, refusal(response.status, text));
      }
    } catch (err) {
      showResult("error", 0, NETWORK_ERROR + " (" + err.message + ")");
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  input.addEventListener("input", checkJson);
  form.addEventListener("submit", upload);
  checkJson();
  renderUploads();
})();

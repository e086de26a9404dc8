// The bundled page: checks the JSON as it is typed, posts it to /upload with fetch, shows
// the server's answer, and lists the uploads made from this tab (kept in sessionStorage,
// so the list survives following a link and coming back).
"use strict";

(function () {
  const STORE_KEY = "uploads";
  // The server answers with paths like /uploads/<uuid>.json; anything else is shown as
  // text, never used as a link.
  const UPLOAD_PATH = /^\/uploads\/[A-Za-z0-9._-]+\.json$/;

  const form = document.getElementById("upload-form");
  const input = document.getElementById("json-input");
  const check = document.getElementById("json-check");
  const contentType = document.getElementById("content-type");
  const button = document.getElementById("upload-button");
  const result = document.getElementById("upload-result");
  const list = document.getElementById("uploads-list");
  const empty = document.getElementById("uploads-empty");
  const curl = document.getElementById("curl-example");

  curl.textContent = "curl -i " + window.location.origin + "/sample.txt";

  function loadUploads() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(STORE_KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((u) => u && UPLOAD_PATH.test(u.path)) : [];
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

  function link(path) {
    const a = document.createElement("a");
    a.href = path;
    a.textContent = path;
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

  // Error pages from the server are small HTML documents: use their heading and text.
  async function errorText(response) {
    const fallback = response.status + " " + response.statusText;
    let body = "";
    try {
      body = await response.text();
    } catch (_) {
      return fallback;
    }
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("text/html")) {
      const doc = new DOMParser().parseFromString(body, "text/html");
      const title = (doc.querySelector("h1") || doc.querySelector("title"));
      const detail = doc.querySelector("p");
      const head = title ? title.textContent.trim() : fallback;
      return detail ? head + ": " + detail.textContent.trim() : head;
    }
    const plain = body.trim().slice(0, 300);
    return plain ? fallback + ": " + plain : fallback;
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
        if (UPLOAD_PATH.test(path)) {
          uploads.push({ path: path, at: Date.now() });
          saveUploads();
          renderUploads();
          showResult("ok", 201, "Created (201): ", link(path));
        } else {
          showResult("ok", 201, "Created (201), at an unexpected path: " + path);
        }
      } else {
        const text = await errorText(response);
        showResult("error", response.status, "Refused: " + text);
      }
    } catch (err) {
      showResult("error", 0, "Could not reach the server: " + err.message);
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

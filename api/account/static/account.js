// The account page's only script: a download with a progress bar, and focus moved to a message
// the page opens with (a confirmation, a list of problems in a form) so that a screen reader
// reads it first. Without it (or when the server answers with anything but the ZIP: a fresher
// sign-in, an expired link) the link is followed as a plain link, and everything works without
// JavaScript too.
"use strict";

(function () {
  function size(bytes) {
    if (bytes < 1000) return bytes + " bytes";
    if (bytes < 1e6) return (bytes / 1e3).toFixed(1) + " kB";
    if (bytes < 1e9) return (bytes / 1e6).toFixed(1) + " MB";
    return (bytes / 1e9).toFixed(2) + " GB";
  }

  function fileName(response, fallback) {
    var header = response.headers.get("content-disposition") || "";
    var match = /filename="([^"]+)"/.exec(header);
    return match ? match[1] : fallback;
  }

  function save(blob, name) {
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  async function download(link) {
    var status = document.getElementById("download-status");
    var box = document.getElementById("download-progress");
    var bar = document.getElementById("download-bar");
    var response;
    try {
      response = await fetch(link.href, { credentials: "same-origin", redirect: "manual" });
    } catch (e) {
      window.location.assign(link.href);
      return;
    }
    var type = response.headers.get("content-type") || "";
    if (response.type === "opaqueredirect" || !response.ok || type.indexOf("application/zip") !== 0 || !response.body) {
      // A step-up sign-in or a friendly error page: let the browser follow the link itself.
      window.location.assign(link.href);
      return;
    }
    link.setAttribute("aria-disabled", "true");
    box.hidden = false;
    var total = Number(response.headers.get("content-length")) || 0;
    if (total) bar.max = total; else bar.removeAttribute("value");
    var reader = response.body.getReader();
    var chunks = [];
    var received = 0;
    status.textContent = "Downloading…";
    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      chunks.push(step.value);
      received += step.value.length;
      if (total) bar.value = received;
      bar.setAttribute("aria-valuetext", size(received) + " received");
    }
    bar.max = 1;
    bar.value = 1;
    var name = fileName(response, link.dataset.filename || "my-data.zip");
    save(new Blob(chunks, { type: "application/zip" }), name);
    status.textContent = "Download complete: " + size(received) + ", saved as " + name + ".";
    link.removeAttribute("aria-disabled");
    await refresh();
  }

  // The copy's state as the server now has it (downloads left, or used with a new one offered),
  // in place of the state the page was opened with.
  async function refresh() {
    var state = document.getElementById("export-state");
    if (!state) return;
    try {
      var response = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (!response.ok) return;
      var page = new DOMParser().parseFromString(await response.text(), "text/html");
      var fresh = page.getElementById("export-state");
      if (fresh) state.replaceWith(fresh);
    } catch (e) {
      // The page as it was is still true enough: the status line says the download finished.
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var message = document.querySelector("[data-focus]");
    if (message) message.focus();
  });

  // Times are written in the browser's own time zone: the server reads it from this cookie
  // (it holds a zone name such as Europe/Berlin, nothing else).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      document.cookie = "dsar_zone=" + zone + "; path=/account; max-age=31536000; SameSite=Lax" +
        (window.location.protocol === "https:" ? "; Secure" : "");
    }
  } catch (e) {
    // No Intl: times stay in UTC, as the page says.
  }

  // The categories are summaries with their counts; on a wide screen they start open, and
  // one that a link points at (#cat-profile) opens wherever it is read.
  document.addEventListener("DOMContentLoaded", function () {
    if (window.matchMedia("(min-width: 48rem)").matches) {
      document.querySelectorAll("details[data-open-wide]").forEach(function (d) { d.open = true; });
    }
    openTarget();
  });
  window.addEventListener("hashchange", openTarget);

  function openTarget() {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    // A large copy is saved by the browser itself, straight to disk: start it the plain way.
    var plain = document.querySelector("a[data-autostart]:not([data-download])");
    if (plain) window.location.assign(plain.href);
    var link = document.querySelector("a[data-download]");
    if (!link || !window.fetch || !window.ReadableStream) return;
    var busy = false;
    link.addEventListener("click", function (event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      download(link).catch(function () {
        document.getElementById("download-status").textContent =
          "The download stopped before it was complete. Please try again.";
      }).finally(function () { busy = false; });
    });
    if (link.hasAttribute("data-autostart")) link.click();
  });
})();

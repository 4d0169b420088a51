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
    var state = document.getElementById("export-status");
    if (state) state.textContent = "Downloaded";
    var exact = document.getElementById("export-size");
    if (exact) exact.textContent = size(received);
    link.removeAttribute("aria-disabled");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var message = document.querySelector("[data-focus]");
    if (message) message.focus();
  });

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

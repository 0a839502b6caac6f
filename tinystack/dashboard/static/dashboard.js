// tinystack dashboard: the little script the pages use. Everything works without it for reading; with it,
// parts of a page that show a changing state refresh themselves (an element with data-poll="URL" is replaced
// by what that URL answers, every data-interval milliseconds, until the answer has no data-poll any more).
(function () {
  "use strict";
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var interval = parseInt(el.getAttribute("data-interval") || "2000", 10);
    window.setTimeout(function () {
      if (!document.body.contains(el)) { return; }
      fetch(url, {headers: {"X-Partial": "1"}, credentials: "same-origin"}).then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.text();
      }).then(function (html) {
        // A <template> parses table parts (tbody, tr) as they are; a <div> would drop their tags.
        var box = document.createElement("template");
        box.innerHTML = html.trim();
        var fresh = box.content.firstElementChild;
        if (!fresh) { return; }
        el.replaceWith(fresh);
        activate(fresh);
      }).catch(function () { poll(el); });
    }, interval);
  }
  function activate(root) {
    if (root.hasAttribute && root.hasAttribute("data-poll")) { poll(root); }
    root.querySelectorAll("[data-poll]").forEach(poll);
  }
  // A form with data-upload-progress="ID" is sent by XMLHttpRequest, whose upload events move the <progress> in
  // the element ID; the answer (the page the form's redirect leads to, with its message) then replaces this one.
  // Without JavaScript the same form is posted as it is.
  function uploadWithProgress(form) {
    var box = document.getElementById(form.getAttribute("data-upload-progress"));
    if (!box || !window.XMLHttpRequest || !window.FormData) { return; }
    var bar = box.querySelector("progress"), percent = box.querySelector("[id$=percent]"),
        state = box.querySelector("[id$=state]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      var button = form.querySelector("[type=submit]");
      if (button) { button.disabled = true; }
      box.hidden = false;
      function show(value, text) {
        bar.value = value;
        percent.textContent = value + " %";
        state.textContent = text;
      }
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable && e.total > 0) { show(Math.floor(100 * e.loaded / e.total), "Uploading"); }
      });
      xhr.upload.addEventListener("load", function () { show(100, "Uploaded; the image service is saving it"); });
      xhr.addEventListener("load", function () {
        // The answer is a whole page: shown as the page, at the URL the redirect led to (an error page stays at
        // the form's page's URL: the form's own URL answers only POST).
        if (xhr.responseURL && xhr.responseURL !== form.action) {
          window.history.replaceState(null, "", xhr.responseURL);
        }
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        if (button) { button.disabled = false; }
        state.textContent = "The upload failed (the connection was lost); try again.";
      });
      xhr.open(form.method.toUpperCase(), form.action);
      xhr.send(new FormData(form));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    activate(document);
    document.querySelectorAll("form[data-upload-progress]").forEach(uploadWithProgress);
    var sw = document.getElementById("project-switcher");
    if (sw) { sw.addEventListener("change", function () { sw.form.submit(); }); }
  });
}());

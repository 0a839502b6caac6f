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
  document.addEventListener("DOMContentLoaded", function () {
    activate(document);
    var sw = document.getElementById("project-switcher");
    if (sw) { sw.addEventListener("change", function () { sw.form.submit(); }); }
  });
}());

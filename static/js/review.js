/*
 * Review comments on the diff of a merge request (progressive enhancement: every action
 * below is a plain form that also works without this script).
 *
 * Stable selectors (for browser tests and for the pages that include the review partials):
 *   diff lines this script enhances    [data-path][data-side][data-line]   (side: "old" | "new")
 *   comment on a line                  button[data-action="comment-line"]  (shift-click a second
 *                                      line's button, or press it with Shift, to comment on the range)
 *   the line comment form              form.review-line-form  textarea[name=body]
 *                                      button[data-action="submit-comment"]  button[data-action="cancel-comment"]
 *   a thread                           section.review-thread[data-thread-id]  (#thread-<id>)
 *   reply                              form.thread-reply textarea[name=body]  button[data-action="reply"]
 *   resolve / unresolve                button[data-action="resolve"]  button[data-action="unresolve"]
 *   general comment                    form.general-comment textarea[name=body]  button[data-action="comment"]
 *   verdict                            form.review-verdict textarea[name=body]
 *                                      button[name=verdict][value=approve]
 *                                      button[name=verdict][value=request_changes]
 *   request a review                   form.review-request input[name=username]
 *                                      button[data-action="request-review"]
 *   summary                            .review-summary[data-approvals][data-unresolved]
 *
 * Without JavaScript, pages link "comment on this line" (a.line-comment-link, hidden once the
 * button is there) to
 *   /d/<slug>/merge-requests/<n>/comment?path=<path>&side=<old|new>&line=<n>[&line_end=<m>]&next=<page>
 */
(function () {
  "use strict";
  if (window.quireReview) return;

  var match = window.location.pathname.match(/^(\/d\/[^/]+\/merge-requests\/\d+)/);
  if (!match) return;
  var base = match[1];
  var anchor = null; // the last line chosen: {path, side, line}

  function csrfToken() {
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  function lineLabel(el) {
    return el.getAttribute("data-side") + " line " + el.getAttribute("data-line") +
      " of " + el.getAttribute("data-path");
  }

  function rowOf(el) {
    return el.closest("tr") || el;
  }

  function columnCount(row) {
    if (row.tagName !== "TR") return 1;
    var n = 0;
    Array.prototype.forEach.call(row.children, function (cell) {
      n += cell.colSpan || 1;
    });
    return n;
  }

  // Insert `node` after the diff line `el`: in a table, inside a full-width row of its own.
  function insertAfterLine(el, node, className) {
    var row = rowOf(el);
    if (row.tagName === "TR") {
      var tr = document.createElement("tr");
      tr.className = className;
      var td = document.createElement("td");
      td.colSpan = columnCount(row);
      td.appendChild(node);
      tr.appendChild(td);
      var next = row.nextElementSibling;
      // after the threads already shown under this line
      while (next && (next.classList.contains("review-thread-row") ||
                      next.classList.contains("thread-row"))) {
        row = next;
        next = row.nextElementSibling;
      }
      row.parentNode.insertBefore(tr, next);
      return tr;
    }
    node.classList.add(className);
    row.parentNode.insertBefore(node, row.nextSibling);
    return node;
  }

  function closeForms() {
    document.querySelectorAll(".review-form-row").forEach(function (row) {
      row.remove();
    });
    document.querySelectorAll(".line-selected").forEach(function (el) {
      el.classList.remove("line-selected");
    });
  }

  function markRange(path, side, lo, hi) {
    document.querySelectorAll("[data-path][data-side][data-line]").forEach(function (el) {
      var n = parseInt(el.getAttribute("data-line"), 10);
      if (el.getAttribute("data-path") === path && el.getAttribute("data-side") === side &&
          n >= lo && n <= hi) {
        el.classList.add("line-selected");
      }
    });
  }

  function buildForm(path, side, lo, hi) {
    var form = document.createElement("form");
    form.className = "review-line-form stack";
    form.method = "post";
    form.action = base + "/threads";
    var id = "review-line-body-" + Date.now();
    var what = lo === hi ? "line " + lo : "lines " + lo + "–" + hi;
    var fields = { csrf_token: csrfToken(), path: path, side: side, line_start: lo, line_end: hi,
      next: window.location.pathname };
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    var label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = "Comment on " + what + " (" + side + " version) of " + path;
    var textarea = document.createElement("textarea");
    textarea.id = id;
    textarea.name = "body";
    textarea.rows = 3;
    textarea.required = true;
    textarea.maxLength = 65536;
    var actions = document.createElement("div");
    actions.className = "form-actions";
    var submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "button button-small";
    submit.setAttribute("data-action", "submit-comment");
    submit.textContent = "Comment";
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button button-small button-secondary";
    cancel.setAttribute("data-action", "cancel-comment");
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", function () {
      closeForms();
      anchor = null;
    });
    var status = document.createElement("p");
    status.className = "review-form-status";
    status.setAttribute("role", "status");
    actions.appendChild(submit);
    actions.appendChild(cancel);
    form.appendChild(label);
    form.appendChild(textarea);
    form.appendChild(actions);
    form.appendChild(status);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") cancel.click();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
    return form;
  }

  function openForm(el, extend) {
    var path = el.getAttribute("data-path");
    var side = el.getAttribute("data-side");
    var line = parseInt(el.getAttribute("data-line"), 10);
    var lo = line, hi = line;
    if (extend && anchor && anchor.path === path && anchor.side === side) {
      lo = Math.min(anchor.line, line);
      hi = Math.max(anchor.line, line);
    } else {
      anchor = { path: path, side: side, line: line };
    }
    closeForms();
    markRange(path, side, lo, hi);
    var last = el;
    document.querySelectorAll("[data-path][data-side][data-line]").forEach(function (cand) {
      if (cand.getAttribute("data-path") === path && cand.getAttribute("data-side") === side &&
          parseInt(cand.getAttribute("data-line"), 10) === hi) {
        last = cand;
      }
    });
    var form = buildForm(path, side, lo, hi);
    insertAfterLine(last, form, "review-form-row");
    form.querySelector("textarea").focus();
  }

  function addLineButtons(root) {
    (root || document).querySelectorAll("[data-path][data-side][data-line]").forEach(function (el) {
      if (el.querySelector('button[data-action="comment-line"]')) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "comment-line-button";
      button.setAttribute("data-action", "comment-line");
      button.setAttribute("aria-label", "Comment on " + lineLabel(el) +
        " (Shift: comment on the lines from the last one chosen)");
      button.title = "Comment (Shift-click to comment on a range)";
      button.textContent = "+";
      button.addEventListener("click", function (event) {
        event.preventDefault();
        openForm(el, event.shiftKey);
      });
      var cell = el.tagName === "TR" ? (el.querySelector("td.code") || el.lastElementChild) : el;
      cell.insertBefore(button, cell.firstChild);
      // The page's no-JavaScript link for this line gives way to the button.
      var row = el.tagName === "TR" ? el : el.previousElementSibling;
      var link = row && row.querySelector("a.line-comment-link");
      if (link) link.hidden = true;
    });
  }

  // Send a form with fetch and swap in the thread the server renders; fall back to a normal
  // submission whenever something unexpected comes back.
  function sendForm(form, onThread) {
    var status = form.querySelector(".review-form-status");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") === -1) throw new Error("not json");
      return response.json().then(function (data) {
        if (!response.ok) {
          if (status) status.textContent = (data.error && data.error.message) || "Could not save.";
          buttons.forEach(function (b) { b.disabled = false; });
          return;
        }
        onThread(data);
        updateSummary(data);
      });
    }).catch(function (err) {
      if (window.console) console.error("review.js", err);
      buttons.forEach(function (b) { b.disabled = false; });
      HTMLFormElement.prototype.submit.call(form);
    });
  }

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.querySelector("section.review-thread");
  }

  function updateSummary(data) {
    if (typeof data.unresolved !== "number") return;
    document.querySelectorAll(".review-summary").forEach(function (el) {
      el.setAttribute("data-unresolved", data.unresolved);
      var span = el.querySelector(".review-unresolved");
      if (span) {
        span.textContent = data.unresolved + " unresolved thread" + (data.unresolved === 1 ? "" : "s");
      }
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !window.fetch) return;
    if (form.matches(".review-form-row form.review-line-form, form.review-line-form.review-form-row")) {
      event.preventDefault();
      sendForm(form, function (data) {
        var thread = fragment(data.html);
        var row = form.closest(".review-form-row");
        if (row.tagName === "TR") {
          row.className = "review-thread-row";
          var td = row.firstElementChild;
          td.innerHTML = "";
          td.appendChild(thread);
        } else {
          row.replaceWith(thread);
        }
        document.querySelectorAll(".line-selected").forEach(function (el) {
          el.classList.remove("line-selected");
        });
        anchor = null;
        thread.setAttribute("tabindex", "-1");
        thread.focus();
      });
    } else if (form.matches("section.review-thread form.thread-reply, section.review-thread form.thread-resolve")) {
      event.preventDefault();
      var section = form.closest("section.review-thread");
      var wasReply = form.classList.contains("thread-reply");
      sendForm(form, function (data) {
        var thread = fragment(data.html);
        section.replaceWith(thread);
        var focus = wasReply ? thread.querySelector("form.thread-reply textarea")
          : thread.querySelector("form.thread-resolve button");
        if (focus) focus.focus();
      });
    }
  });

  window.quireReview = { base: base, addLineButtons: addLineButtons };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { addLineButtons(); });
  } else {
    addLineButtons();
  }
})();

// Shared by the review pages: API calls with the session's CSRF token, and the queue's keyboard.
"use strict";

const Review = (() => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // fetch JSON from the API with the session cookie; resolves {ok, status, body}
  async function api(method, url, body, headers) {
    const init = {method, credentials: "same-origin", headers: Object.assign({"Accept": "application/json"}, headers || {})};
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return {ok: false, status: 0, body: {error: {message: String(err)}}};
    }
    let parsed = null;
    try { parsed = await response.json(); } catch (err) { parsed = null; }
    return {ok: response.ok, status: response.status, body: parsed};
  }

  function errorMessage(result) {
    const err = result.body && result.body.error;
    return err ? err.message : "HTTP " + result.status;
  }

  // true when a key press belongs to a text field, not to the page's shortcuts
  function typing(event) {
    const el = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return true;
    if (!el || !el.tagName) return false;
    const tag = el.tagName.toLowerCase();
    return tag === "textarea" || tag === "select" || el.isContentEditable ||
      (tag === "input" && !["checkbox", "radio", "button", "submit"].includes(el.type));
  }

  return {api, errorMessage, typing};
})();

// the queue: j/k move, Enter or o opens, a click on a row opens
(() => {
  const rows = Array.from(document.querySelectorAll("#queue-table .ticket-row"));
  if (!rows.length) return;
  let current = 0;
  const select = (i) => {
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((row, k) => row.classList.toggle("selected", k === current));
    rows[current].focus({preventScroll: false});
  };
  rows.forEach((row, i) => {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      window.location.href = row.dataset.href;
    });
    row.addEventListener("focus", () => { current = i; rows.forEach((r, k) => r.classList.toggle("selected", k === i)); });
  });
  document.addEventListener("keydown", (event) => {
    if (Review.typing(event)) return;
    if (event.key === "j") { select(current + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current - 1); event.preventDefault(); }
    else if (event.key === "Enter" || event.key === "o") { window.location.href = rows[current].dataset.href; event.preventDefault(); }
  });
  select(0);
})();

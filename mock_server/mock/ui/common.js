"use strict";
// Shared by the mock's page (/__mock/ui) and the guard's page (/__guard/ui).
// Everything shown comes from requests anyone could send: it is only ever written as text
// (textContent, createTextNode), never parsed as markup.
const UI = (() => {
  const TOKEN_KEY = "sora-mock-admin-token";
  let token = sessionStorage.getItem(TOKEN_KEY);

  // An element with a class and text; children are nodes or strings (written as text).
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  function setText(id, text) {
    document.getElementById(id).textContent = text;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function setToken(value) {
    token = value || null;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  function hasToken() {
    return Boolean(token);
  }

  class Unauthorized extends Error {}

  // One call of the server's own JSON API: same origin, JSON in and out, the token as a bearer header.
  async function api(path, method = "GET", body = undefined) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (response.status === 401 && data && data.error && data.error.code === "invalid_admin_token") {
      throw new Unauthorized(data.error.message);
    }
    return { status: response.status, ok: response.ok, data, text };
  }

  // "refused: timestamps — message" for an error envelope; the raw text otherwise.
  function refusal(answer, lead = "refused") {
    const error = answer.data && answer.data.error;
    if (error && typeof error === "object") {
      const param = error.param ? String(error.param) + " — " : "";
      return `${lead}: ${param}${String(error.message ?? "")} (${answer.status} ${String(error.code ?? "")})`;
    }
    return `${lead}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
  }

  function clock(seconds) {
    const date = new Date(seconds * 1000);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  }

  // A list fed from a seq-numbered log (the journal, the guard's requests): new rows go on top, under
  // the list's .head, at most `max` of them stay, and the empty note and the "(N shown, …)" line
  // follow what is shown. Each row carries its entry's seq in data-seq.
  function feed(listId, emptyId, countId, max, note) {
    const list = document.getElementById(listId);
    const rows = () => [...list.querySelectorAll(":scope > .row")];
    let lastSeq = 0;
    function show() {
      const shown = rows().length;
      document.getElementById(emptyId).classList.toggle("hidden", shown > 0);
      setText(countId, shown ? `(${shown} shown, ${note})` : "");
    }
    return {
      // The seq to read after: the newest shown, or 0 after a reset.
      after: () => lastSeq,
      add(entries, makeRow) {
        const head = list.querySelector(".head");
        for (const entry of entries) {
          const row = makeRow(entry);
          row.dataset.seq = String(entry.seq);
          head.after(row);
          lastSeq = Math.max(lastSeq, entry.seq);
        }
        for (const row of rows().slice(max)) row.remove(); // the oldest beyond max
        show();
      },
      // Drop the rows older than `oldest` (the log's oldest seq still kept); null: the log is empty.
      keepFrom(oldest) {
        for (const row of rows()) if (oldest === null || Number(row.dataset.seq) < oldest) row.remove();
        if (oldest === null) lastSeq = 0;
      },
      clear() {
        this.keepFrom(null);
      },
    };
  }

  // A button that asks first: the first click shows "confirm"/"cancel" beside it.
  function confirmButton(button, question, action) {
    const box = el("span", "confirm hidden", el("span", "question", question));
    const yes = el("button", "danger", "Yes, " + button.textContent.toLowerCase());
    const no = el("button", "", "Cancel");
    box.append(" ", yes, " ", no);
    button.after(box);
    button.addEventListener("click", () => box.classList.remove("hidden"));
    no.addEventListener("click", () => box.classList.add("hidden"));
    yes.addEventListener("click", async () => {
      box.classList.add("hidden");
      await action();
    });
  }

  // The token gate: main content stays hidden until the API answers with the given token.
  function gate(onOpen) {
    const form = document.getElementById("token-form");
    const main = document.getElementById("main");
    const input = document.getElementById("token-input");
    const forget = document.getElementById("forget-token");
    const guarded = () => document.querySelectorAll(".needs-token");
    function locked(message) {
      main.classList.add("hidden");
      for (const node of guarded()) node.classList.add("hidden");
      form.classList.remove("hidden");
      setText("token-message", message);
      setText("status", "locked: the admin token is needed");
      input.focus();
    }
    function opened() {
      form.classList.add("hidden");
      main.classList.remove("hidden");
      for (const node of guarded()) node.classList.remove("hidden");
      forget.classList.toggle("hidden", !hasToken());
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      setToken(input.value.trim());
      input.value = "";
      onOpen();
    });
    forget.addEventListener("click", () => {
      setToken(null);
      locked("Token forgotten. Enter the admin token to see the page again.");
    });
    return { locked, opened };
  }

  return { el, setText, clear, api, refusal, clock, confirmButton, feed, gate, setToken, hasToken, Unauthorized };
})();

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

  return { el, setText, clear, api, refusal, clock, confirmButton, gate, setToken, hasToken, Unauthorized };
})();

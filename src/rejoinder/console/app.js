// The console's shell: sign-in (the key lives in this tab's sessionStorage only), the calls to
// the gateway's API, the hash router, and the small DOM helpers every page uses. Every text that
// comes from the API is put in the page as text, never as HTML.
import { playground } from "./playground.js";
import { responses, conversations } from "./stored.js";
import { prompts } from "./prompts.js";
import { keys, usage } from "./admin.js";

const PAGES = { playground, responses, conversations, prompts, keys, usage };
export const session = {
  key: sessionStorage.getItem("rejoinder.key"),
  admin: sessionStorage.getItem("rejoinder.admin") === "1",
  open: sessionStorage.getItem("rejoinder.open") === "1",
};
// What a key is on a gateway without a master key: any text that is not a project's key (sk-rj-…)
// stands for no key, that is for the admin.
const OPEN_KEY = "open";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

function headers(extra) {
  return { Authorization: `Bearer ${session.key}`, ...extra };
}

/** A JSON call to the gateway (`path` under /v1); throws ApiError with the envelope's message. */
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const answer = await fetch(`/v1${path}`, init);
  const text = await answer.text();
  const parsed = text && answer.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text;
  if (!answer.ok) throw new ApiError(answer.status, parsed);
  return parsed;
}

/** A streamed call: each server-sent event's JSON to `onEvent` as it arrives. */
export async function stream(path, { method = "GET", body, signal } = {}, onEvent) {
  const init = { method, signal, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const answer = await fetch(`/v1${path}`, init);
  if (!answer.ok) throw new ApiError(answer.status, await answer.json().catch(() => null));
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const blocks = pending.split("\n\n");
    pending = blocks.pop();
    for (const block of blocks) {
      const data = block.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n");
      if (data && data !== "[DONE]") onEvent(JSON.parse(data));
    }
  }
}

/** An element: `el("tag.class", {attr: value, onclick: fn}, children…)`; strings become text. */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag);
  if (classes.length) node.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

let fieldCount = 0;
/** A labelled control: the label names it for screen readers and clicks. */
export function field(text, control) {
  control.id ||= `f${++fieldCount}`;
  return el("div", {}, el("label", { for: control.id }, text), control);
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A table whose header and rows are given as lists of cells (strings or nodes), in a box that
 * scrolls sideways rather than letting a wide table push the page. */
export function table(columns, rows, className = "") {
  const head = el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c))));
  const body = rows instanceof Node ? rows : el("tbody", {}, rows.map((cells) => (cells instanceof Node ? cells : el("tr", {}, cells.map((cell) => el("td", {}, cell))))));
  return el("div.scroll", {}, el(`table${className ? `.${className}` : ""}`, {}, head, body));
}

/** A button that copies `text()` to the clipboard and says so. */
export function copyButton(label, text) {
  const button = el("button", { type: "button" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed: select the text";
    }
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

export function errorBox(error) {
  return el("p.error", { role: "alert" }, error instanceof ApiError ? `${error.message}${error.code ? ` (${error.code})` : ""}` : String(error.message || error));
}

/** A form's submit handler: the page stays, `action` runs, and its error shows in `status`. */
export function submitted(status, action) {
  return async (event) => {
    event.preventDefault();
    try {
      await action();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
}

/** Replace a container's content with the result of an async render, or its error. */
export async function fill(container, render) {
  try {
    container.replaceChildren(...[await render()].flat(Infinity));
  } catch (error) {
    container.replaceChildren(errorBox(error));
  }
}

/** Markdown's common subset as DOM: paragraphs, fenced code blocks and inline code. */
export function markdown(text) {
  const nodes = [];
  const parts = text.split(/```[^\n]*\n?/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      nodes.push(el("pre", {}, el("code", {}, part.replace(/\n$/, ""))));
      return;
    }
    for (const paragraph of part.split(/\n{2,}/)) {
      if (!paragraph.trim()) continue;
      const p = el("p");
      paragraph.split(/(`[^`]+`)/).forEach((piece, j) => p.append(j % 2 ? el("code", {}, piece.slice(1, -1)) : piece));
      nodes.push(p);
    }
  });
  return nodes;
}

/** The text of a Response's output messages. */
export function outputText(response) {
  return (response.output || [])
    .filter((item) => item.type === "message")
    .flatMap((item) => item.content || [])
    .filter((part) => part.type === "output_text")
    .map((part) => part.text)
    .join("");
}

/** Whether the gateway has no master key (`GET /console/open`, which needs none). */
async function gatewayIsOpen() {
  const answer = await fetch("/console/open").catch(() => null);
  return Boolean(answer && answer.ok && (await answer.json()).open);
}

/** Sign in with `key`; `open` is the promise of `gatewayIsOpen()` the sign-in page asked once. */
async function signInWith(key, status, open) {
  session.key = key;
  try {
    session.admin = (await api("/console/me")).admin;
    session.open = await open;
    sessionStorage.setItem("rejoinder.key", session.key);
    sessionStorage.setItem("rejoinder.admin", session.admin ? "1" : "0");
    sessionStorage.setItem("rejoinder.open", session.open ? "1" : "0");
    location.hash = "#/playground";
    route();
  } catch (error) {
    session.key = null;
    status.replaceChildren(errorBox(error));
  }
}

function signIn(main) {
  const key = el("input", { type: "password", autocomplete: "off", required: true });
  const status = el("p", { role: "status" });
  const notice = el("div", { "aria-live": "polite" });
  const open = gatewayIsOpen();
  const form = el(
    "form.panel.signin",
    { onsubmit: (event) => (event.preventDefault(), signInWith(key.value.trim(), status, open)) },
    el("h1", {}, "Sign in"),
    notice,
    el("p.muted", {}, "With a project's API key (sk-rj-…) or the master key. It stays in this tab only."),
    field("API key", key),
    el("p", {}, el("button.primary", { type: "submit" }, "Sign in")),
    status,
  );
  main.replaceChildren(form);
  key.focus();
  open.then((isOpen) => {
    if (!isOpen) return;
    notice.replaceChildren(
      el(
        "div.notice",
        {},
        el("p", {}, el("strong", {}, "This gateway is open."), " It has no master key, so anyone who can reach it is its admin: any text signs in as admin, and a project's key signs in as that project."),
        el("p", {}, "Set REJOINDER_MASTER_KEY (or master_key in the config file) to require a key."),
        el("p", {}, el("button", { type: "button", onclick: () => signInWith(OPEN_KEY, status, open) }, "Continue as admin")),
      ),
    );
  });
}

function route() {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const signout = document.getElementById("signout");
  if (!session.key) {
    nav.hidden = signout.hidden = document.getElementById("open").hidden = true;
    signIn(main);
    return;
  }
  nav.hidden = signout.hidden = false;
  document.getElementById("open").hidden = !session.open;
  for (const link of nav.querySelectorAll("[data-admin]")) link.hidden = !session.admin;
  const [name = "playground", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = PAGES[name] || playground;
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  page(main, rest.map(decodeURIComponent));
  main.focus();
}

// Signing out forgets the key and reloads the page, so nothing of this user's (a chat, a form, a
// response's id to continue from) is left for the next one to see or run on.
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.clear();
  history.replaceState(null, "", location.pathname);
  location.reload();
});
window.addEventListener("hashchange", route);
route();

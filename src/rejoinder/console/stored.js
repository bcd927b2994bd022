// Stored responses (a filtered list and one response's detail) and conversations (a list, then
// one conversation's items and metadata): what the key's project keeps.
import { api, el, errorBox, field, fill, outputText, pretty, stream, submitted, table, when } from "./app.js";
import { readable } from "./items.js";

/** A table with a "Load more" button, fed page by page from `load(after)`. */
function paged(columns, load, row) {
  const tbody = el("tbody");
  const more = el("button", { type: "button" }, "Load more");
  const status = el("p", { role: "status" });
  let after = null;
  const next = async () => {
    more.disabled = true;
    try {
      const page = await load(after);
      tbody.append(...page.data.map(row));
      if (!page.data.length && !after) status.textContent = "Nothing here yet.";
      after = page.last_id;
      more.hidden = !page.has_more;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      more.disabled = false;
    }
  };
  next();
  return [table(columns, tbody, "wide"), status, more];
}

function linkRow(href, cells) {
  const go = () => (location.hash = href);
  return el("tr.link", { tabindex: 0, onclick: go, onkeydown: (event) => event.key === "Enter" && go() }, cells.map((cell) => el("td", {}, cell)));
}

export function responses(main, [id]) {
  if (id) return response(main, id);
  const model = el("input", { placeholder: "any" });
  const status = el("select", {}, ["", "completed", "failed", "incomplete", "cancelled", "in_progress", "queued"].map((s) => el("option", { value: s }, s || "any")));
  const key = el("input", { placeholder: "key_… (any)" });
  const since = el("input", { type: "date" });
  const until = el("input", { type: "date" });
  const list = el("div");
  const load = () => {
    const query = new URLSearchParams({ limit: "20" });
    if (model.value) query.set("model", model.value);
    if (status.value) query.set("status", status.value);
    if (key.value) query.set("key_id", key.value);
    if (since.value) query.set("since", String(Date.parse(since.value) / 1000));
    if (until.value) query.set("until", String(Date.parse(until.value) / 1000 + 86400));
    list.replaceChildren(
      ...paged(
        ["Created", "Model", "Status", "Key", "Output", "Id"],
        (after) => api(`/console/responses?${query}${after ? `&after=${after}` : ""}`),
        (r) => linkRow(`#/responses/${r.id}`, [when(r.created_at), r.model, el(`span.badge.${r.status}`, {}, r.status), r.key_id ? el("code", {}, r.key_id) : "—", outputText(r.response).slice(0, 120), el("code", {}, r.id)]),
      ),
    );
  };
  main.append(
    el("h1", {}, "Responses"),
    el("form.panel.row", { "aria-label": "Filters", onsubmit: (event) => (event.preventDefault(), load()) }, field("Model", model), field("Status", status), field("Key", key), field("From", since), field("To", until), el("button", { type: "submit" }, "Filter")),
    list,
  );
  load();
}

async function response(main, id) {
  const body = el("div");
  main.append(el("p", {}, el("a", { href: "#/responses" }, "← Responses")), el("h1", {}, id), body);
  await fill(body, async () => {
    const r = await api(`/responses/${encodeURIComponent(id)}`);
    const inputs = await api(`/responses/${encodeURIComponent(id)}/input_items?order=asc&limit=100`);
    const chain = el("div");
    const parts = [
      el("p", {}, el(`span.badge.${r.status}`, {}, r.status), ` ${r.model} · created ${when(r.created_at)}`, r.completed_at ? ` · completed ${when(r.completed_at)} (${r.completed_at - r.created_at} s)` : ""),
      r.usage ? el("p.muted", {}, `Usage: ${r.usage.input_tokens} input, ${r.usage.output_tokens} output, ${r.usage.total_tokens} total tokens`) : "",
      r.error ? el("p.error", {}, r.error.message) : "",
      el("h2", {}, "Input"),
      readable(inputs.data),
      el("h2", {}, "Output"),
      readable(r.output),
      el("details", {}, el("summary", {}, "The whole response as JSON"), el("pre", {}, pretty(r))),
      r.background ? [el("h2", {}, "Events"), events(id)] : "",
      el("h2", {}, "Chain"),
      chain,
      el("p", {}, el("button.danger", { type: "button", onclick: async () => { if (confirm(`Delete ${id}?`)) { await api(`/responses/${encodeURIComponent(id)}`, { method: "DELETE" }); location.hash = "#/responses"; } } }, "Delete")),
    ];
    walk(r, chain);
    return parts;
  });
}

/** The responses this one continues, back to the first (up to 20), and those that continue it. */
async function walk(r, container) {
  const links = [el("strong", {}, r.id)];
  const after = await api(`/console/responses?limit=20&previous_response_id=${encodeURIComponent(r.id)}`).then((page) => page.data, () => []);
  if (after.length) links.push(" → ", after.flatMap((next, i) => [i ? ", " : "", el("a", { href: `#/responses/${next.id}` }, next.id)]));
  let previous = r.previous_response_id;
  for (let i = 0; previous && i < 20; i++) {
    links.unshift(el("a", { href: `#/responses/${previous}` }, previous), " → ");
    try {
      previous = (await api(`/responses/${encodeURIComponent(previous)}`)).previous_response_id;
    } catch (error) {
      links.unshift(el("span.muted", {}, "(earlier ones are gone) "));
      break;
    }
  }
  container.replaceChildren(el("p", {}, links));
}

function events(id) {
  const list = el("div.timeline");
  stream(`/responses/${encodeURIComponent(id)}?stream=true`, {}, (event) =>
    list.append(el("details", {}, el("summary", {}, el("span.seq", {}, event.sequence_number), el("span", {}, event.type)), el("pre", {}, pretty(event)))),
  ).catch((error) => list.append(errorBox(error)));
  return list;
}

export function conversations(main, [id]) {
  if (id) return conversation(main, id);
  main.append(
    el("h1", {}, "Conversations"),
    ...paged(
      ["Created", "Metadata", "Id"],
      (after) => api(`/console/conversations?limit=20${after ? `&after=${after}` : ""}`),
      (c) => linkRow(`#/conversations/${c.id}`, [when(c.created_at), JSON.stringify(c.metadata), c.id]),
    ),
  );
}

async function conversation(main, id) {
  const body = el("div");
  main.append(el("p", {}, el("a", { href: "#/conversations" }, "← Conversations")), el("h1", {}, id), body);
  const path = `/conversations/${encodeURIComponent(id)}`;
  await fill(body, async () => {
    const c = await api(path);
    const items = await api(`${path}/items?order=asc&limit=100`);
    const metadata = el("textarea", { rows: 4, value: pretty(c.metadata || {}) });
    const saved = el("p", { role: "status" });
    return [
      el("p.muted", {}, `Created ${when(c.created_at)}`),
      el(
        "form.panel",
        {
          onsubmit: submitted(saved, async () => {
            await api(path, { method: "POST", body: { metadata: JSON.parse(metadata.value) } });
            saved.replaceChildren(el("span.ok", {}, "Saved."));
          }),
        },
        field("Metadata (JSON)", metadata),
        el("p.row", {}, el("button", { type: "submit" }, "Save metadata"), el("button.danger", { type: "button", onclick: async () => { if (confirm(`Delete ${id}?`)) { await api(path, { method: "DELETE" }); location.hash = "#/conversations"; } } }, "Delete conversation")),
        saved,
      ),
      el("h2", {}, `Items (${items.data.length}${items.has_more ? "+" : ""})`),
      readable(items.data),
    ];
  });
}

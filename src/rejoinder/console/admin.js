// For the master key: projects and their API keys (a new key's secret is shown once), and usage
// drawn from /v1/organization/usage and the latency histograms on /metrics.
import { api, copyButton, el, field, fill, session, submitted, table, when } from "./app.js";

const COLORS = ["#3b7ddd", "#e0793a", "#2f9e69", "#b0479b", "#c9a227", "#5a6ee0", "#d24d57", "#3aa7b8"];

/** A name and limits; with `shown` (a project), the form edits it: an emptied limit is lifted. */
function limitsForm(onsubmit, submitText, shown = null) {
  const label = (text) => (shown ? `Project's ${text.toLowerCase()}` : text);
  const name = el("input", { required: true, value: shown?.name });
  const models = el("input", { placeholder: "every model (e.g. gpt-4o*, claude-*)", value: shown?.allowed_models?.join(", ") });
  const rpm = el("input", { type: "number", min: 1, placeholder: "none", value: shown?.rpm });
  const tpm = el("input", { type: "number", min: 1, placeholder: "none", value: shown?.tpm });
  const budget = el("input", { type: "number", min: 0.01, step: 0.01, placeholder: "none", value: shown?.budget });
  const status = el("p", { role: "status" });
  const values = () => {
    const body = { name: name.value };
    const absent = shown ? null : undefined; // an edit sends null to lift a limit
    body.allowed_models = models.value.trim() ? models.value.split(",").map((m) => m.trim()).filter(Boolean) : absent;
    body.rpm = rpm.value ? Number(rpm.value) : absent;
    body.tpm = tpm.value ? Number(tpm.value) : absent;
    body.budget = budget.value ? Number(budget.value) : absent;
    return body;
  };
  return el(
    "form.panel",
    {
      onsubmit: submitted(status, async () => status.replaceChildren(await onsubmit(values()))),
    },
    el("div.row", {}, field(label("Name"), name), field(label("Allowed models (comma-separated)"), models)),
    el("div.row", {}, field(label("Requests per minute"), rpm), field(label("Tokens per minute"), tpm), field(label("Budget ($ a month)"), budget)),
    el("p", {}, el("button.primary", { type: "submit" }, submitText)),
    status,
  );
}

const limits = (x) => [x.allowed_models ? x.allowed_models.join(", ") : "all", x.rpm ?? "—", x.tpm ?? "—", x.budget != null ? `$${x.budget}/${x.budget_period || "month"}` : "—"];

export function keys(main, [projectId]) {
  if (!session.admin) return main.append(el("p.error", {}, "This page needs the master key."));
  if (projectId) return project(main, projectId);
  const list = el("div");
  main.append(
    el("h1", {}, "Projects and keys"),
    list,
    el("h2", {}, "New project"),
    limitsForm(async (body) => {
      const made = await api("/organization/projects", { method: "POST", body });
      location.hash = `#/keys/${made.id}`;
      return "";
    }, "Create project"),
  );
  fill(list, async () => {
    const found = await api("/organization/projects?limit=100");
    return table(
      ["Project", "Id", "Models", "RPM", "TPM", "Budget", "Managed"],
      found.data.map((p) => [el("a", { href: `#/keys/${p.id}` }, p.name), el("code", {}, p.id), ...limits(p), p.managed_by]),
    );
  });
}

async function project(main, id) {
  const base = `/organization/projects/${encodeURIComponent(id)}`;
  const body = el("div");
  main.append(el("p", {}, el("a", { href: "#/keys" }, "← Projects")), body);
  const show = () =>
    fill(body, async () => {
      const p = await api(base);
      const found = await api(`${base}/api_keys?limit=100`);
      const rows = found.data.map((k) => [
        k.name,
        el("code", {}, k.redacted_value),
        el("code", {}, k.id),
        ...limits(k),
        when(k.created_at),
        k.managed_by === "api" ? el("button.danger", { type: "button", onclick: async () => { if (confirm(`Revoke ${k.name}?`)) { await api(`${base}/api_keys/${k.id}`, { method: "DELETE" }); show(); } } }, "Revoke") : "config",
      ]);
      const secret = el("div", { "aria-live": "polite" });
      return [
        el("h1", {}, p.name),
        el("p.muted", {}, `${p.id} · ${p.status} · models ${limits(p)[0]} · rpm ${limits(p)[1]} · tpm ${limits(p)[2]} · budget ${limits(p)[3]}`),
        el("h2", {}, "API keys"),
        rows.length
          ? table(["Name", "Key", "Id", "Models", "RPM", "TPM", "Budget", "Created", ""], rows)
          : el("p.muted", {}, "No keys yet."),
        secret,
        p.status === "active"
          ? [
              el("h2", {}, "New key"),
              limitsForm(async (values) => {
                const made = await api(`${base}/api_keys`, { method: "POST", body: values });
                await show();
                body.querySelector("[aria-live]").replaceChildren(
                  el("p", {}, el("strong", {}, "Copy this key now: it is shown only once.")),
                  el("p.secret", { "aria-label": "New key" }, made.value),
                  el("p", {}, copyButton("Copy key", made.value)),
                );
                return "";
              }, "Create key"),
              p.managed_by === "api"
                ? el(
                    "details",
                    {},
                    el("summary", {}, "Edit project"),
                    limitsForm(async (values) => {
                      await api(base, { method: "POST", body: values });
                      await show();
                      return "";
                    }, "Save project", p),
                  )
                : "",
              p.managed_by === "api" && p.id !== "proj_default" ? el("p", {}, el("button.danger", { type: "button", onclick: async () => { if (confirm(`Archive ${p.name}? Its keys stop working.`)) { await api(base, { method: "DELETE" }); show(); } } }, "Archive project")) : "",
            ]
          : el("p.muted", {}, "Archived: its keys no longer work."),
      ];
    });
  await show();
}

/** A bar chart (SVG) of `series` (name → values per label), stacked; a series that is zero
 * throughout is left out, legend and all. `format` writes a value (the axis, the description). */
function bars(title, labels, series, format = String) {
  const names = Object.keys(series).filter((name) => series[name].some((value) => value > 0));
  const totals = labels.map((_, i) => names.reduce((sum, name) => sum + series[name][i], 0));
  const top = Math.max(0, ...totals) || 1;
  const width = 360;
  const height = 150;
  const step = Math.min(48, (width - 50) / Math.max(1, labels.length));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 30}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${labels.map((l, i) => `${l} ${format(totals[i])}`).join(", ")}`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  add("line", { x1: 45, y1: height, x2: width, y2: height, class: "axis" });
  add("text", { x: 0, y: 12 }, format(top));
  add("text", { x: 0, y: height }, "0");
  labels.forEach((label, i) => {
    let y = height;
    names.forEach((name, n) => {
      const h = (series[name][i] / top) * (height - 10);
      if (h > 0) add("rect", { x: 50 + i * step + 2, y: y - h, width: Math.max(2, step - 4), height: h, fill: COLORS[n % COLORS.length] });
      y -= h;
    });
    if (labels.length <= 12 || i % Math.ceil(labels.length / 12) === 0) add("text", { x: 50 + i * step, y: height + 16 }, label);
  });
  const legend = el("div.legend", {}, names.map((name, n) => el("span", { style: `--c: ${COLORS[n % COLORS.length]}` }, name)));
  return el("figure.panel", {}, el("figcaption", {}, el("strong", {}, title)), svg, legend);
}

/** Per-model latency percentiles from the request-duration histograms on /metrics. */
function percentiles(text) {
  const buckets = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^rejoinder_request_duration_seconds_bucket\{(.*)\} ([0-9.e+]+)$/);
    if (!match) continue;
    const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const bound = labels.le === "+Inf" ? Infinity : Number(labels.le);
    const model = (buckets[labels.model] ||= {});
    model[bound] = (model[bound] || 0) + Number(match[2]);
  }
  return Object.entries(buckets).map(([model, counts]) => {
    const bounds = Object.keys(counts).map(Number).sort((a, b) => a - b);
    const total = counts[Infinity] || 0;
    const at = (q) => {
      let below = 0;
      let lower = 0;
      for (const bound of bounds) {
        if (counts[bound] >= q * total) return bound === Infinity ? lower : lower + ((bound - lower) * (q * total - below)) / Math.max(1, counts[bound] - below);
        below = counts[bound];
        lower = bound;
      }
      return lower;
    };
    return { model, total, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
  });
}

const money = (dollars) => (dollars >= 1 ? `$${dollars.toFixed(2)}` : `$${dollars.toFixed(4)}`);

/** The names of the projects and keys that usage `rows` name by id (a key once revoked keeps its
 * name; one the listing no longer has stays its id). */
async function namesOf(rows) {
  const projects = new Map();
  const keys = new Map();
  const found = await api("/organization/projects?limit=100&include_archived=true");
  for (const p of found.data) projects.set(p.id, p.name);
  const used = [...new Set(rows.map((r) => r.project).filter((id) => projects.has(id)))];
  await Promise.all(
    used.map(async (id) => {
      const listed = await api(`/organization/projects/${encodeURIComponent(id)}/api_keys?limit=100`).catch(() => ({ data: [] }));
      for (const k of listed.data) keys.set(k.id, `${k.name} (${projects.get(id)})`);
    }),
  );
  return { projects, keys };
}

export function usage(main) {
  if (!session.admin) return main.append(el("p.error", {}, "This page needs the master key."));
  const charts = el("div");
  main.append(el("h1", {}, "Usage (last 30 days)"), charts);
  fill(charts, async () => {
    const byModel = await api("/organization/usage?group_by=day&group_by=model");
    const byKey = await api("/organization/usage?group_by=project&group_by=key_id");
    const byDayKey = await api("/organization/usage?group_by=day&group_by=key_id");
    const days = [...new Set(byModel.data.map((r) => r.day))].sort();
    const models = [...new Set(byModel.data.map((r) => r.model))].sort();
    const series = (count) => Object.fromEntries(models.map((m) => [m, days.map((d) => byModel.data.filter((r) => r.day === d && r.model === m).reduce((s, r) => s + r[count], 0))]));
    const tokens = Object.fromEntries(models.flatMap((m) => [[`${m} in`, series("input_tokens")[m]], [`${m} out`, series("output_tokens")[m]]]));
    const dollars = series("cost");
    const total = byModel.data.reduce((sum, r) => sum + r.cost, 0);
    const metrics = await fetch("/metrics", { headers: { Authorization: `Bearer ${session.key}` } }).then((r) => (r.ok ? r.text() : ""));
    const latency = percentiles(metrics).filter((row) => row.total > 0);
    if (!days.length) return el("p.muted", {}, "No usage recorded yet (counts reach the database every few seconds).");
    const names = await namesOf(byKey.data);
    const keyOf = (r) => names.keys.get(r.key_id) || r.key_id || "(master key)";
    const keyNames = [...new Set(byDayKey.data.map(keyOf))].sort();
    const perKey = Object.fromEntries(keyNames.map((k) => [k, days.map((d) => byDayKey.data.filter((r) => r.day === d && keyOf(r) === k).reduce((s, r) => s + r.requests, 0))]));
    const ms = (s) => Math.round(s * 1000);
    const spread = { p50: latency.map((r) => ms(r.p50)), "p50 to p95": latency.map((r) => ms(r.p95) - ms(r.p50)) };
    return [
      el(
        "div.charts",
        {},
        bars("Requests per day", days, series("requests")),
        bars("Tokens per day", days, tokens),
        bars("Cost per day, $ (by each model's price)", days, dollars, money),
        bars("Errors per day", days, series("errors")),
        bars("Requests per key and day", days, perKey),
        latency.length ? bars("Latency by model, ms (p50, then up to p95)", latency.map((r) => r.model), spread) : "",
      ),
      el("h2", {}, "Latency by model (since this instance started)"),
      latency.length
        ? table(["Model", "Requests", "p50", "p95", "p99"], latency.map((r) => [r.model, r.total, ...[r.p50, r.p95, r.p99].map((s) => `${(s * 1000).toFixed(0)} ms`)]))
        : el("p.muted", {}, "No requests measured yet."),
      el("h2", {}, "By project and key"),
      el("p.muted", {}, `${money(total)} in 30 days. Cached input tokens are read from the upstream's prompt cache, at its lower price.`),
      table(
        ["Project", "Key", "Requests", "Errors", "Input tokens", "Cached", "Output tokens", "Cost"],
        byKey.data.map((r) => [names.projects.get(r.project) || r.project, keyOf(r), r.requests, r.errors, r.input_tokens, r.cached_tokens, r.output_tokens, `$${r.cost.toFixed(4)}`]),
      ),
    ];
  });
}

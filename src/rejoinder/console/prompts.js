// Prompt templates: the list, a new prompt, and one prompt's versions: edit as a new version
// with a live preview of the rendered template, the difference between two versions, and which
// version is the default.
import { api, el, errorBox, field, fill, pretty, submitted, table, when } from "./app.js";

const EXAMPLE = { instructions: "You are {{ persona }}. Answer briefly.", input: [{ role: "user", content: "Tell me about {{ topic }}." }] };

export function prompts(main, [id]) {
  if (id) return prompt(main, id);
  const list = el("div");
  const newId = el("input", { placeholder: "generated when empty" });
  const template = el("textarea", { rows: 8, value: pretty(EXAMPLE) });
  const status = el("p", { role: "status" });
  main.append(
    el("h1", {}, "Prompts"),
    list,
    el(
      "form.panel",
      {
        "aria-label": "New prompt",
        onsubmit: submitted(status, async () => {
          const body = { template: JSON.parse(template.value) };
          if (newId.value.trim()) body.id = newId.value.trim();
          const made = await api("/prompts", { method: "POST", body });
          location.hash = `#/prompts/${made.id}`;
        }),
      },
      el("h2", {}, "New prompt"),
      field("Id", newId),
      field("Template (a create-request body without prompt; texts are Jinja2)", template),
      el("p", {}, el("button.primary", { type: "submit" }, "Create")),
      status,
    ),
  );
  fill(list, async () => {
    const found = await api("/prompts");
    if (!found.data.length) return el("p.muted", {}, "No prompts yet.");
    return table(
      ["Id", "Default version", "Source", "Created"],
      found.data.map((p) => [el("a", { href: `#/prompts/${encodeURIComponent(p.id)}` }, p.id), p.default_version, p.source, when(p.created_at)]),
    );
  });
}

async function versions(id) {
  return (await api(`/console/prompts/${encodeURIComponent(id)}/versions`)).data;
}

/** One prompt: the template of `kept.version` (else the default) in the editor, and the preview's
 * variables as `kept.variables` left them, so saving a version or a default keeps the user's place. */
async function prompt(main, id, kept = {}) {
  const body = el("div");
  main.append(el("p", {}, el("a", { href: "#/prompts" }, "← Prompts")), el("h1", {}, id), body);
  await fill(body, async () => {
    const all = await versions(id);
    const current = all.find((v) => v.version === v.default_version) || all[all.length - 1];
    const editing = all.find((v) => v.version === kept.version) || current;
    const readOnly = current.source !== "api";
    const template = el("textarea", { rows: 12, value: pretty(editing.template), readonly: readOnly });
    const variables = el("textarea", { rows: 4, value: kept.variables ?? pretty({ persona: "a librarian", topic: "maps" }) });
    const again = (version) => prompt(main.replaceChildren() || main, id, { version, variables: variables.value });
    const preview = el("div", { "aria-live": "polite" });
    const status = el("p", { role: "status" });
    let timer = null;
    const render = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        try {
          const shown = await api("/console/prompts/preview", { method: "POST", body: { template: JSON.parse(template.value), variables: JSON.parse(variables.value) } });
          preview.replaceChildren(el("pre", { "aria-label": "Rendered" }, [shown.instructions ? `instructions: ${shown.instructions}\n\n` : "", ...shown.input.map((m) => `${m.role}: ${typeof m.content === "string" ? m.content : pretty(m.content)}\n`)]));
        } catch (error) {
          preview.replaceChildren(errorBox(error));
        }
      }, 250);
    };
    template.addEventListener("input", render);
    variables.addEventListener("input", render);
    render();
    const options = () => all.map((v) => el("option", { value: v.version }, `${v.version}${v.version === current.default_version ? " (default)" : ""}`));
    const left = el("select", {}, options());
    const right = el("select", {}, options());
    left.value = all[Math.max(0, all.length - 2)].version;
    right.value = all[all.length - 1].version;
    const diffBox = el("div");
    const showDiff = () => diffBox.replaceChildren(diff(pretty(all.find((v) => v.version === left.value).template), pretty(all.find((v) => v.version === right.value).template)));
    left.addEventListener("change", showDiff);
    right.addEventListener("change", showDiff);
    showDiff();
    const chosen = el("select", {}, options());
    chosen.value = current.default_version;
    return [
      el("p.muted", {}, `Default version ${current.default_version} of ${all.length} · editing version ${editing.version} · ${current.source === "api" ? "made through the API" : "from prompts_dir (read-only here)"}`),
      el(
        "div.grid",
        {},
        el(
          "form.panel",
          {
            "aria-label": "New version",
            onsubmit: submitted(status, async () => {
              const made = await api(`/prompts/${encodeURIComponent(id)}/versions`, { method: "POST", body: { template: JSON.parse(template.value) } });
              status.replaceChildren(el("span.ok", {}, `Version ${made.version} saved (the default stays ${made.default_version}).`));
              setTimeout(() => again(made.version), 600);
            }),
          },
          el("h2", {}, "Template"),
          field("Template (edit, then save as a new version)", template),
          el("p", {}, el("button.primary", { type: "submit", disabled: readOnly }, "Save as new version")),
          status,
        ),
        el("section.panel", { "aria-label": "Preview" }, el("h2", {}, "Preview"), field("Variables (JSON)", variables), preview),
        el(
          "section.panel",
          { "aria-label": "Versions" },
          el("h2", {}, "Versions"),
          el(
            "form.row",
            {
              onsubmit: submitted(status, async () => {
                await api(`/prompts/${encodeURIComponent(id)}`, { method: "POST", body: { default_version: chosen.value } });
                again(editing.version);
              }),
            },
            field("Default version", chosen),
            el("button", { type: "submit", disabled: readOnly }, "Set default"),
          ),
          el("div.row", {}, field("Compare version", left), field("with version", right)),
          diffBox,
        ),
      ),
    ];
  });
}

/** A line diff (longest common subsequence) of two texts. */
function diff(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const lengths = Array.from({ length: x.length + 1 }, () => new Array(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) for (let j = y.length - 1; j >= 0; j--) lengths[i][j] = x[i] === y[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
  const lines = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) lines.push(el("div", {}, `  ${x[i++]}`)), j++;
    else if (i < x.length && (j === y.length || lengths[i + 1][j] >= lengths[i][j + 1])) lines.push(el("div.del", {}, `- ${x[i++]}`));
    else lines.push(el("div.add", {}, `+ ${y[j++]}`));
  }
  return el("pre.diff", { "aria-label": "Difference" }, lines);
}

// The playground: a streamed run of any model the key may use, its output as it arrives (text as
// markdown once done, function and MCP calls as cards), beside a timeline of every event; the chat
// goes on through previous_response_id or a conversation, and the run copies as curl or Python.
import { api, copyButton, el, errorBox, field, markdown, pretty, stream } from "./app.js";

// The chat of this tab's signed-in user, kept while they move between pages (signing out reloads
// the page, which forgets it).
const state = { previous: null, transcript: [] };

export async function playground(main) {
  const model = el("select", { required: true });
  const instructions = el("textarea.prose", { rows: 3, placeholder: "You are a helpful assistant." });
  const input = el("textarea.prose", { rows: 4, placeholder: "Say hello." });
  const temperature = el("input", { type: "number", min: 0, max: 2, step: 0.1, placeholder: "default" });
  const maxTokens = el("input", { type: "number", min: 1, placeholder: "default" });
  const effort = el("select", {}, ["", "minimal", "low", "medium", "high"].map((v) => el("option", { value: v }, v || "default")));
  const format = el("select", {}, el("option", { value: "text" }, "text"), el("option", { value: "json_schema" }, "JSON schema"));
  const schema = el("textarea", { rows: 6, value: pretty({ type: "object", properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false }) });
  const schemaField = field("JSON schema", schema);
  schemaField.hidden = true;
  format.addEventListener("change", () => (schemaField.hidden = format.value !== "json_schema"));
  const tools = el("textarea", { rows: 5, placeholder: '[{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]' });
  const choice = el("select", {}, toolChoices([]));
  tools.addEventListener("input", () => {
    const was = choice.value;
    choice.replaceChildren(...toolChoices(functionNames(tools.value)));
    choice.value = [...choice.options].some((option) => option.value === was) ? was : "";
  });
  const conversation = el("input", { placeholder: "conv_… (optional)" });
  const promptId = el("input", { placeholder: "pmpt_… (optional)" });
  const variables = el("input", { placeholder: '{"topic": "maps"}' });
  const chat = el("div.chat", { "aria-live": "polite" });
  const timeline = el("div.timeline", { "aria-label": "Event timeline" });
  const status = el("p.muted", { role: "status" });
  const code = el("div");
  const run = el("button.primary", { type: "submit" }, "Run");

  const body = () => {
    const request = { model: model.value, stream: true };
    if (input.value) request.input = input.value;
    if (instructions.value.trim()) request.instructions = instructions.value;
    if (temperature.value !== "") request.temperature = Number(temperature.value);
    if (maxTokens.value !== "") request.max_output_tokens = Number(maxTokens.value);
    if (effort.value) request.reasoning = { effort: effort.value };
    if (format.value === "json_schema") request.text = { format: { type: "json_schema", name: "answer", schema: JSON.parse(schema.value), strict: true } };
    if (tools.value.trim()) request.tools = JSON.parse(tools.value);
    if (choice.value) request.tool_choice = choice.value.startsWith("function:") ? { type: "function", name: choice.value.slice(9) } : choice.value;
    if (promptId.value.trim()) request.prompt = { id: promptId.value.trim(), variables: variables.value.trim() ? JSON.parse(variables.value) : {} };
    if (conversation.value.trim()) request.conversation = conversation.value.trim();
    else if (state.previous) request.previous_response_id = state.previous;
    return request;
  };

  const form = el(
    "form.panel",
    {
      "aria-label": "Request",
      onsubmit: async (event) => {
        event.preventDefault();
        let request;
        try {
          request = body();
        } catch (error) {
          status.replaceChildren(errorBox(`Invalid JSON: ${error.message}`));
          return;
        }
        await send(request, { chat, timeline, status, code, run });
        input.value = "";
      },
    },
    el("h1", {}, "Playground"),
    field("Model", model),
    field("Instructions", instructions),
    field("Input", input),
    el("div.row", {}, field("Temperature", temperature), field("Max output tokens", maxTokens), field("Reasoning effort", effort)),
    field("Text format", format),
    schemaField,
    field("Tools (JSON: function and MCP tools)", tools),
    field("Tool choice", choice),
    el("div.row", {}, field("Prompt", promptId), field("Variables (JSON)", variables)),
    field("Conversation", conversation),
    el(
      "p.row",
      {},
      run,
      el("button", { type: "button", onclick: () => { state.previous = null; state.transcript = []; chat.replaceChildren(); timeline.replaceChildren(); status.textContent = "New chat."; } }, "New chat"),
    ),
    status,
    code,
  );
  main.append(
    el(
      "div.grid",
      {},
      form,
      el("section.panel", { "aria-label": "Output" }, el("h2", {}, "Output"), chat),
      el("section.panel", { "aria-label": "Events" }, el("h2", {}, "Events"), timeline),
    ),
  );
  for (const entry of state.transcript) chat.append(entry);
  try {
    const models = await api("/models");
    model.replaceChildren(...models.data.filter((m) => !m.id.endsWith("*")).map((m) => el("option", { value: m.id }, m.id)));
  } catch (error) {
    status.replaceChildren(errorBox(error));
  }
}

async function send(request, { chat, timeline, status, code, run }) {
  run.disabled = true;
  timeline.replaceChildren();
  code.replaceChildren(copies(request));
  const said = request.input === undefined ? `(prompt ${request.prompt?.id})` : typeof request.input === "string" ? request.input : pretty(request.input);
  const user = el("div.msg.user", {}, said);
  chat.append(user);
  state.transcript.push(user);
  const started = performance.now();
  const items = new Map(); // output_index → { node, text }
  status.textContent = "Running…";
  try {
    await stream("/responses", { method: "POST", body: request }, (event) => {
      timeline.append(
        el(
          "details",
          {},
          el("summary", {}, el("span.seq", {}, event.sequence_number), el("span", {}, event.type), el("span.at", {}, `+${Math.round(performance.now() - started)} ms`)),
          el("pre", {}, pretty(event)),
        ),
      );
      timeline.scrollTop = timeline.scrollHeight;
      show(event, items, chat);
    });
    status.textContent = `Done in ${Math.round(performance.now() - started)} ms.`;
  } catch (error) {
    status.replaceChildren(errorBox(error));
  } finally {
    run.disabled = false;
  }
}

function show(event, items, chat) {
  const item = event.item;
  if (event.type === "response.output_item.added") {
    const node = item.type === "message" ? el("div.msg") : card(item);
    items.set(event.output_index, { node, text: "" });
    chat.append(node);
    state.transcript.push(node);
  } else if (event.type === "response.output_text.delta") {
    const entry = items.get(event.output_index);
    entry.text += event.delta;
    entry.node.textContent = entry.text;
  } else if (event.type === "response.function_call_arguments.delta" || event.type === "response.mcp_call_arguments.delta") {
    const entry = items.get(event.output_index);
    entry.text += event.delta;
    entry.node.querySelector("pre").textContent = entry.text;
  } else if (event.type === "response.output_item.done") {
    const entry = items.get(event.output_index);
    if (item.type === "message") entry.node.replaceChildren(...markdown(entry.text));
    else entry.node.replaceWith((entry.node = card(item)));
  } else if (["response.completed", "response.incomplete", "response.failed"].includes(event.type)) {
    const response = event.response;
    state.previous = response.id;
    const usage = response.usage ? `${response.usage.input_tokens} in, ${response.usage.output_tokens} out` : "";
    const note = el("p.muted", {}, `${response.status} · `, el("a", { href: `#/responses/${encodeURIComponent(response.id)}` }, response.id), usage ? ` · ${usage}` : "");
    if (response.error) note.append(el("span.error", {}, ` · ${response.error.message}`));
    chat.append(note);
    state.transcript.push(note);
  }
}

/** A tool call as a card; a function call can be answered with its output, continuing the chat. */
function card(item) {
  const name = item.type === "mcp_call" ? `${item.server_label} · ${item.name}` : item.name || item.type;
  const node = el("div.card", {}, el("div.title", {}, `${item.type.replace(/_/g, " ")}: ${name}`), el("pre", {}, item.arguments || ""));
  if (item.output) node.append(el("div.muted", {}, "output"), el("pre", {}, item.output));
  if (item.error) node.append(el("p.error", {}, typeof item.error === "string" ? item.error : pretty(item.error)));
  if (item.type === "function_call" && item.status !== "in_progress") {
    const output = el("input", { placeholder: "The tool's output" });
    node.append(
      el(
        "form.row",
        {
          onsubmit: (event) => {
            event.preventDefault();
            const form = document.querySelector("form.panel");
            const request = { model: form.querySelector("select").value, stream: true, previous_response_id: state.previous, input: [{ type: "function_call_output", call_id: item.call_id, output: output.value }] };
            const parts = document.querySelectorAll("main section.panel");
            send(request, { chat: parts[0].querySelector(".chat"), timeline: parts[1].querySelector(".timeline"), status: form.querySelector("[role=status]"), code: document.createElement("div"), run: form.querySelector("button[type=submit]") });
          },
        },
        field("Tool output", output),
        el("button", { type: "submit" }, "Send output"),
      ),
    );
  }
  return node;
}

/** `tool_choice`'s options: the API's three, then each function the tools name. */
function toolChoices(names) {
  const fixed = [["", "default (auto)"], ["auto", "auto: the model decides"], ["required", "required: call a tool"], ["none", "none: answer in text"]];
  return [...fixed.map(([value, text]) => el("option", { value }, text)), ...names.map((name) => el("option", { value: `function:${name}` }, `function ${name}`))];
}

function functionNames(text) {
  try {
    const tools = JSON.parse(text);
    return Array.isArray(tools) ? tools.filter((tool) => tool.type === "function" && tool.name).map((tool) => tool.name) : [];
  } catch {
    return [];
  }
}

/** The run as curl and as Python SDK code. */
function copies(request) {
  const origin = location.origin;
  const curl = `curl ${origin}/v1/responses \\\n  -H "Authorization: Bearer $REJOINDER_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(request).replace(/'/g, "'\\''")}'`;
  const args = Object.entries(request).map(([name, value]) => `    ${name}=${python(value)},`).join("\n");
  const py = `import os\n\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${origin}/v1", api_key=os.environ["REJOINDER_API_KEY"])\nstream = client.responses.create(\n${args}\n)\nfor event in stream:\n    print(event.type)`;
  return el(
    "details",
    {},
    el("summary", {}, "Code for this run"),
    el("div.tabs", {}, copyButton("Copy curl", curl), copyButton("Copy Python", py)),
    el("pre", { "aria-label": "curl" }, curl),
    el("pre", { "aria-label": "Python" }, py),
  );
}

function python(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null) return "None";
  if (Array.isArray(value)) return `[${value.map(python).join(", ")}]`;
  if (typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${python(v)}`).join(", ")}}`;
  return JSON.stringify(value);
}

// Items as a person reads them: a message is who said what, a tool call is its name, arguments
// and (found by call_id among the same items) its output, reasoning is its summary; each keeps
// its JSON one click away. The response and conversation detail pages show their items so.
import { el, markdown, pretty } from "./app.js";

const CALLS = new Set(["function_call", "custom_tool_call", "mcp_call", "web_search_call", "file_search_call", "code_interpreter_call", "computer_call", "local_shell_call", "image_generation_call"]);
const OUTPUTS = new Set(["function_call_output", "custom_tool_call_output", "computer_call_output", "local_shell_call_output"]);

/** The readable view of `items`; a call's output is shown with its call when both are here. */
export function readable(items) {
  const outputs = new Map(items.filter((item) => OUTPUTS.has(item.type) && item.call_id).map((item) => [item.call_id, item]));
  const calls = new Set(items.filter((item) => CALLS.has(item.type)).map((item) => item.call_id).filter(Boolean));
  return items.filter((item) => !(OUTPUTS.has(item.type) && calls.has(item.call_id))).map((item) => one(item, outputs.get(item.call_id)));
}

function one(item, output) {
  const json = el("details", {}, el("summary", {}, "JSON"), el("pre", {}, pretty(output ? [item, output] : item)));
  if (item.type === "message" || (item.role && item.type === undefined)) return el("div.item", {}, el("div.who", {}, item.role), parts(item.content), json);
  if (item.type === "reasoning") {
    const summary = (item.summary || []).map((part) => part.text).join("\n\n");
    return el("div.item", {}, el("div.who", {}, "reasoning"), summary ? markdown(summary) : el("p.muted", {}, item.encrypted_content ? "(its content is sealed)" : "(no summary)"), json);
  }
  if (CALLS.has(item.type)) return el("div.item.call", {}, el("div.who", {}, item.type.replace(/_/g, " ")), call(item, output), json);
  if (OUTPUTS.has(item.type)) return el("div.item", {}, el("div.who", {}, `output of ${item.call_id}`), el("pre", {}, text(item.output)), json);
  if (item.type === "mcp_list_tools") {
    return el("div.item", {}, el("div.who", {}, `tools of ${item.server_label}`), el("p", {}, (item.tools || []).map((tool) => tool.name).join(", ") || "none"), json);
  }
  return el("div.item", {}, el("div.who", {}, item.type || "item"), json);
}

function call(item, output) {
  const name = item.type === "mcp_call" ? `${item.server_label} · ${item.name}` : item.name;
  const shown = [];
  if (name) shown.push(el("p", {}, el("strong", {}, name), item.status ? el("span.muted", {}, ` · ${item.status}`) : ""));
  if (item.arguments || item.input) shown.push(el("pre", { "aria-label": "Arguments" }, prettyJson(item.arguments ?? item.input)));
  if (item.action?.query) shown.push(el("p", {}, `Searched: ${item.action.query}`));
  if (item.queries) shown.push(el("p", {}, `Searched: ${item.queries.join("; ")}`), el("p.muted", {}, `${(item.results || []).length} results`));
  const result = output ? output.output : item.output;
  if (result !== undefined && result !== null) shown.push(el("div.muted", {}, "output"), el("pre", { "aria-label": "Output" }, text(result)));
  if (item.error) shown.push(el("p.error", {}, typeof item.error === "string" ? item.error : pretty(item.error)));
  return shown;
}

function parts(content) {
  if (typeof content === "string") return markdown(content);
  return (content || []).map((part) => {
    if (part.type === "input_text" || part.type === "output_text") return markdown(part.text);
    if (part.type === "refusal") return el("p.error", {}, `Refused: ${part.refusal}`);
    if (part.type === "input_image") return el("p.muted", {}, `[image ${part.file_id || (part.image_url || "").slice(0, 40)}]`);
    if (part.type === "input_file") return el("p.muted", {}, `[file ${part.filename || part.file_id || ""}]`);
    return el("p.muted", {}, `[${part.type}]`);
  });
}

function text(value) {
  return typeof value === "string" ? prettyJson(value) : pretty(value);
}

/** A JSON text indented, anything else as it is. */
function prettyJson(value) {
  try {
    return pretty(JSON.parse(value));
  } catch {
    return String(value);
  }
}

// The Vercel AI SDK's OpenAI provider on the Responses API, pointed at the gateway
// (tests/test_clients.py runs it with the gateway's URL): text, a stream, a tool the SDK runs
// through to the model's answer, and structured output. Prints one JSON line of what it got.
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

const rejoinder = createOpenAI({ baseURL: process.argv[2], apiKey: "unused" });

const text = (await generateText({ model: rejoinder.responses("chat"), prompt: "Say hello" })).text;

let streamed = "";
for await (const delta of streamText({ model: rejoinder.responses("chat"), prompt: "Say hello" }).textStream) streamed += delta;

const weather = tool({
  description: "The weather in a city.",
  inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }),
  execute: async ({ city }) => JSON.stringify({ city, sky: "sunny" }),
});
const withTool = await generateText({ model: rejoinder.responses("mock-call-weather"), prompt: "Weather in Paris?", tools: { get_weather: weather }, stopWhen: stepCountIs(3) });

const schema = jsonSchema({ type: "object", properties: { city: { type: "string" }, temperature_c: { type: "integer" } }, required: ["city", "temperature_c"], additionalProperties: false });
const object = (await generateObject({ model: rejoinder.responses("mock-json"), schema, prompt: "Weather in Paris as JSON" })).object;

console.log(JSON.stringify({ text, streamed, toolCalls: withTool.steps[0].toolCalls.map((c) => [c.toolName, c.input]), answer: withTool.text, steps: withTool.steps.length, object }));

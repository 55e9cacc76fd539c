// The official OpenAI Node SDK against hippo serve (run by tests/ref/test_serve_node.py).
// argv: BASE_URL API_KEY EXPECTED_JSON, where EXPECTED_JSON holds {prompt, greedy}: the greedy
// continuation `hippo generate --temp 0` made for the prompt (max_tokens 24).
import assert from "node:assert/strict";
import fs from "node:fs";
import OpenAI from "openai";

const [baseURL, apiKey, expectedPath] = process.argv.slice(2);
const expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const models = await client.models.list();
assert.equal(models.data.length, 1);
const model = models.data[0].id;

// Completions: greedy text equals `hippo generate --temp 0`.
const c = await client.completions.create({ model, prompt: expected.prompt, max_tokens: 24, temperature: 0 });
assert.equal(c.choices[0].text, expected.greedy);
assert.equal(c.usage.completion_tokens + c.usage.prompt_tokens, c.usage.total_tokens);

// Streaming concatenates to the same text.
const stream = await client.completions.create({ model, prompt: expected.prompt, max_tokens: 24, temperature: 0, stream: true });
let streamed = "";
let sawUsage = false;
for await (const chunk of stream) {
  for (const ch of chunk.choices) streamed += ch.text;
  if (chunk.usage) sawUsage = true;
}
assert.equal(streamed, expected.greedy);
assert.ok(sawUsage, "the stream ends with a usage chunk");

// Seeded sampling reproduces.
const s1 = await client.completions.create({ model, prompt: "seed", max_tokens: 16, temperature: 1, seed: 3 });
const s2 = await client.completions.create({ model, prompt: "seed", max_tokens: 16, temperature: 1, seed: 3 });
assert.equal(s1.choices[0].text, s2.choices[0].text);

// Logprobs with echo and max_tokens 0: scoring a prompt (lm-evaluation-harness's way).
const sc = await client.completions.create({ model, prompt: expected.prompt, max_tokens: 0, echo: true, logprobs: 2, temperature: 0 });
const lp = sc.choices[0].logprobs;
assert.equal(sc.choices[0].text, expected.prompt);
assert.equal(lp.tokens.length, Buffer.byteLength(expected.prompt));
assert.equal(lp.token_logprobs[0], null);
for (let i = 1; i < lp.token_logprobs.length; i++) {
  assert.ok(lp.token_logprobs[i] <= 0);
  assert.ok(Object.keys(lp.top_logprobs[i]).length >= 1);
}

// Chat, whole and streamed.
const messages = [{ role: "user", content: "Hello" }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
assert.equal(chat.choices[0].message.role, "assistant");
const chatStream = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true });
let chatText = "";
for await (const chunk of chatStream) chatText += chunk.choices[0]?.delta?.content ?? "";
assert.equal(chatText, chat.choices[0].message.content);
const chatLp = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
assert.equal(chatLp.choices[0].logprobs.content.length, chatLp.usage.completion_tokens);

// Errors come back as the SDK's typed errors.
await assert.rejects(client.completions.create({ model, prompt: "x", max_tokens: -1 }),
  (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /max_tokens/.test(e.message));
await assert.rejects(client.completions.create({ model, prompt: "x", n: 1000 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "n");
const wrongKey = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
await assert.rejects(wrongKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
await assert.rejects(client.get("/nothing/here"), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);

console.log("openai-node: all checks passed");

#include "apps/serve/web_page.h"

namespace hippo::serve {

const char* const kWebPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hippo serve</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 860px; margin: 2em auto; padding: 0 1em; color: #222; }
  h1 { font-size: 1.4em; } textarea { width: 100%; height: 7em; font: 14px monospace; box-sizing: border-box; }
  .row { display: flex; flex-wrap: wrap; gap: 1em; margin: .6em 0; align-items: center; }
  label { font-size: .9em; } input[type=number] { width: 6em; }
  #output { white-space: pre-wrap; font: 14px monospace; border: 1px solid #ccc; padding: .8em; min-height: 6em; background: #fafafa; }
  #prompt-echo { color: #777; } #stats { color: #555; font-size: .9em; margin-top: .5em; }
  button { font-size: 1em; padding: .3em 1.2em; }
</style>
</head>
<body>
<h1>hippo serve</h1>
<div id="model">model: ?</div>
<textarea id="prompt">The hippo</textarea>
<div class="row">
  <label>max tokens <input id="max_tokens" type="number" value="64" min="0"></label>
  <label>temperature <input id="temperature" type="number" value="0" min="0" max="2" step="0.1"></label>
  <label>top-p <input id="top_p" type="number" value="1" min="0" max="1" step="0.05"></label>
  <label>top-k <input id="top_k" type="number" value="0" min="0"></label>
  <label>seed <input id="seed" type="number" value="0"></label>
  <label>API key <input id="key" type="password" size="10"></label>
</div>
<div class="row"><button id="go">Generate</button><button id="stop" disabled>Stop</button></div>
<div id="output"><span id="prompt-echo"></span><span id="completion"></span></div>
<div id="stats"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let controller = null;
fetch("/v1/models").then(r => r.json()).then(j => { $("model").textContent = "model: " + j.data[0].id; }).catch(() => {});
function num(id) { return Number($(id).value); }
async function generate() {
  $("go").disabled = true; $("stop").disabled = false;
  $("prompt-echo").textContent = $("prompt").value; $("completion").textContent = ""; $("stats").textContent = "";
  controller = new AbortController();
  const body = { prompt: $("prompt").value, max_tokens: num("max_tokens"), temperature: num("temperature"),
                 top_p: num("top_p"), top_k: num("top_k"), seed: num("seed"), stream: true };
  const headers = { "Content-Type": "application/json" };
  if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
  const t0 = performance.now(); let tFirst = 0, chunks = 0, usage = null;
  try {
    const res = await fetch("/v1/completions", { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) { const e = await res.json(); throw new Error(e.error ? e.error.message : res.statusText); }
    const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ")) continue;
        const data = ev.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) usage = j.usage;
        for (const c of j.choices) {
          if (c.text) { if (!tFirst) tFirst = performance.now(); $("completion").textContent += c.text; chunks++; }
        }
        const s = (performance.now() - t0) / 1000;
        $("stats").textContent = `${chunks} chunks in ${s.toFixed(2)} s`;
      }
    }
    const s = (performance.now() - t0) / 1000, n = usage ? usage.completion_tokens : chunks;
    const dec_s = tFirst ? (performance.now() - tFirst) / 1000 : 0;
    $("stats").textContent = `${n} tokens in ${s.toFixed(2)} s: ${(n / s).toFixed(1)} tokens/s` +
      (tFirst ? `, first token after ${((tFirst - t0) / 1000).toFixed(3)} s, then ${dec_s > 0 ? ((n - 1) / dec_s).toFixed(1) : "-"} tokens/s` : "") +
      (usage ? ` (prompt ${usage.prompt_tokens} tokens)` : "");
    $("stats").dataset.done = "1";
  } catch (e) {
    if (e.name !== "AbortError") $("stats").textContent = "error: " + e.message;
  } finally {
    $("go").disabled = false; $("stop").disabled = true; controller = null;
  }
}
$("go").addEventListener("click", generate);
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
</script>
</body>
</html>
)HTML";

}  // namespace hippo::serve

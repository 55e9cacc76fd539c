// Headless Debian chromium, driven by puppeteer-core, uses hippo serve's page at / (run by
// tests/ref/test_serve_browser.py). argv: BASE_URL EXPECTED_JSON SCREENSHOT_PNG PROFILE_DIR
// where EXPECTED_JSON holds {prompt, max_tokens, greedy} (the API's greedy completion).
import assert from "node:assert/strict";
import fs from "node:fs";
import puppeteer from "puppeteer-core";

const [baseURL, expectedPath, screenshot, profile] = process.argv.slice(2);
const expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  userDataDir: profile,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(baseURL)) outside.push(r.url()); });
  await page.setViewport({ width: 900, height: 640 });
  await page.goto(baseURL + "/", { waitUntil: "networkidle0" });
  await page.$eval("#prompt", (el, v) => { el.value = v; }, expected.prompt);
  await page.$eval("#max_tokens", (el, v) => { el.value = String(v); }, expected.max_tokens);
  await page.$eval("#temperature", (el) => { el.value = "0"; });
  await page.click("#go");
  await page.waitForSelector("#stats[data-done='1']", { timeout: 60000 });
  const text = await page.$eval("#completion", (el) => el.textContent);
  const stats = await page.$eval("#stats", (el) => el.textContent);
  assert.equal(text, expected.greedy);
  assert.match(stats, /tokens\/s/);
  assert.deepEqual(outside, [], "the page loads nothing from elsewhere");
  await page.screenshot({ path: screenshot });
  console.log("browser: page text equals the API's greedy result;", stats);
} finally {
  await browser.close();
}

#!/usr/bin/env python3
"""Benchmarks `hippo serve`: C concurrent streaming clients, each sending R completion requests
(a prompt of P tokens, N new tokens, greedy), for each C in --clients. Reports requests/s,
aggregate decode tokens/s, and p50/p99 time to first token and inter-token latency, and the
ratio of each aggregate rate to one client's (continuous batching: C streams decode in one
batched step). The server is started here on a free port.

  scripts/bench_serve.py -m MODEL [--tokenizer gpt2:data/gpt2] [--clients 1,8,32] [-t THREADS]
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def one_request(port, body, rec):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    times, buf, tokens = [], b"", 0
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data: {"):
                continue
            j = json.loads(ev[6:])
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            elif j["choices"] and j["choices"][0]["text"]:
                times.append(time.perf_counter())
    c.close()
    rec.append((t0, times, time.perf_counter(), tokens))


def run(port, clients, requests, prompt_ids, n):
    recs, threads = [], []
    body = {"prompt": prompt_ids, "max_tokens": n, "temperature": 0, "stream": True}

    errors = []

    def client(i):
        try:
            requests_of(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def requests_of(i):
        for k in range(requests):
            # Distinct prompts per client and request (no prefix reuse): rotate the ids.
            p = prompt_ids[(i * 7 + k) % len(prompt_ids):] + prompt_ids[:(i * 7 + k) % len(prompt_ids)]
            one_request(port, dict(body, prompt=p), recs)
    t0 = time.perf_counter()
    for i in range(clients):
        threads.append(threading.Thread(target=client, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit("requests failed: " + "; ".join(errors[:3]))
    ttft = [ts[0] - t0r for t0r, ts, _, _ in recs if ts]
    itl = [b - a for _, ts, _, _ in recs for a, b in zip(ts, ts[1:])]
    toks = sum(n for *_, n in recs)
    # Steady decoding: each stream's tokens after its first over the time they took; C streams
    # decode side by side, so the aggregate decode rate is C times the median stream's.
    rates = [(n - 1) / (end - ts[0]) for _, ts, end, n in recs if ts and n > 1 and end > ts[0]]
    # All streams decoding together: tokens emitted by every stream between the moment the last
    # stream got its first token and the moment the first stream ended, over that window (no
    # prefill inside it; meaningful with --requests 1).
    starts = [ts[0] for _, ts, _, _ in recs if ts]
    ends = [ts[-1] for _, ts, _, _ in recs if ts]
    ws, we = (max(starts), min(ends)) if starts else (0.0, 0.0)
    in_window = sum(1 for _, ts, _, _ in recs for t in ts if ws < t <= we)
    together = in_window / (we - ws) if we > ws and in_window > 0 else float("nan")
    return {"clients": clients, "requests": len(recs), "wall_s": wall, "req_per_s": len(recs) / wall,
            "together_tokens_per_s": together,
            "tokens": toks, "tokens_per_s": toks / wall,
            "ttft_p50_ms": 1e3 * pct(ttft, 50), "ttft_p99_ms": 1e3 * pct(ttft, 99),
            "itl_p50_ms": 1e3 * pct(itl, 50), "itl_p99_ms": 1e3 * pct(itl, 99),
            "decode_tokens_per_s": clients * statistics.median(rates) if rates else float("nan")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--tokenizer", default="")
    ap.add_argument("--hippo", default="build/hippo")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=3, help="per client")
    ap.add_argument("--prompt-tokens", type=int, default=300)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("-t", "--threads", type=int, default=0)
    a = ap.parse_args()
    clients = [int(x) for x in a.clients.split(",")]
    args = [a.hippo, "serve", "-m", a.model, "--port", "0", "-t", str(a.threads),
            "--parallel", str(max(clients)), "--prefix-cache", "0"]
    if a.tokenizer:
        args += ["--tokenizer", a.tokenizer]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    port = int(line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])
    print(line.strip(), file=sys.stderr)
    text = " ".join(f"The hippo number {i} walks into the river and sings." for i in range(a.prompt_tokens))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/tokenize", body=json.dumps({"content": text}), headers={"Content-Type": "application/json"})
    prompt = json.loads(c.getresponse().read())["tokens"][:a.prompt_tokens]
    try:
        run(port, 1, 1, prompt, 8)  # warm-up
        rows = []
        for c in clients:
            rows.append(run(port, c, a.requests, prompt, a.new_tokens))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait()
    base = rows[0]["decode_tokens_per_s"]
    base_t = rows[0]["together_tokens_per_s"]
    print("| clients | requests/s | tokens/s (wall) | decode tokens/s | x one stream | all decoding, tokens/s | x one stream | TTFT p50 / p99 ms | ITL p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['req_per_s']:.2f} | {r['tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.0f} | "
              f"{r['decode_tokens_per_s'] / base:.2f} | {r['together_tokens_per_s']:.0f} | "
              f"{r['together_tokens_per_s'] / base_t:.2f} | {r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f} | "
              f"{r['itl_p50_ms']:.1f} / {r['itl_p99_ms']:.1f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

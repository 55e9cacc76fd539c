#!/usr/bin/python3
"""Text from a hippo model in Python: streamed generation, then the same model used through a
Session (prefill, sampling, fork) and a whole-sequence forward.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/generate.py MODEL.safetensors \
        [--prompt "The jury"] [--tokens 64] [--temp 0.8] [--top-k 40] [--top-p 0.95] [--seed 0]
"""
import argparse
import sys

import numpy as np

import hippo


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--prompt", default="The jury")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--temp", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    hippo.set_num_threads(a.threads)
    try:
        m = hippo.load(a.model)
    except hippo.Error as e:
        sys.exit(f"generate.py: {e}")
    print(f"# {m.path}: layers {m.layers}, {m.num_params} parameters, "
          f"{'bf16' if m.bf16_weights else 'fp32'} weights, vocab {m.vocab_size}", file=sys.stderr)

    # 1. Streamed text: the same tokens as `hippo generate` with these options and seed.
    sys.stdout.write(a.prompt)
    for piece in m.generate(a.prompt, max_tokens=a.tokens, temperature=a.temp, top_k=a.top_k,
                            top_p=a.top_p, seed=a.seed):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")

    # 2. A session: prefill once, fork, continue each fork with its own sampler.
    ids = m.tokenizer.encode(a.prompt)
    s = m.session(temperature=a.temp, top_k=a.top_k, top_p=a.top_p, seed=a.seed)
    s.prefill(ids)
    for i in range(2):
        f = s.fork()
        f.set_sampling(temperature=a.temp, top_k=a.top_k, top_p=a.top_p, seed=a.seed + 1 + i)
        out = []
        for _ in range(16):
            t = f.sample()
            if t == m.tokenizer.eot_id:
                break
            out.append(t)
            f.step(t)
        print(f"fork {i}: {a.prompt}{m.tokenizer.decode(out)!r}")

    # 3. Every position's logits at once: the prompt's per-token loss.
    logits = m.forward(np.array([ids], dtype=np.int32))[0]  # (L, vocab)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    nll = -np.mean([logp[t, ids[t + 1]] for t in range(len(ids) - 1)]) if len(ids) > 1 else float("nan")
    print(f"prompt: {len(ids)} tokens, mean next-token loss {nll:.3f} nats")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes a GPT-2 124M-shaped GGUF file with random weights, for llama.cpp's llama-bench
(bench/llama_cpp_compare.sh). Uses llama.cpp's own gguf-py (its source folder is an argument;
nothing is fetched). Weights: N(0, 0.02), norms 1, biases 0; the GPT-2 vocabulary from
data/gpt2 (encoder.json, vocab.bpe) so the tokenizer loads as a real BPE vocabulary.

usage: make_gpt2_gguf.py LLAMA_SRC OUT.gguf f32|bf16|q8_0 VOCAB_DIR [CONTEXT=4096]
Matrices and the token embedding (tied output) get the type; norms, biases and the position
embedding stay F32 (as llama.cpp's own quantizer leaves 1-D tensors).
With UNTIED_OUTPUT=1 in the environment an `output.weight` of the same type is written too:
llama.cpp before mid-2025 refuses a GPT-2 file without it. A step reads the same bytes either
way (the head is one n_vocab x d matrix; the embedding lookup reads one row).
"""
import os
import json
import sys

import numpy as np


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    src, out, kind, vocab_dir = sys.argv[1:5]
    ctx = int(sys.argv[5]) if len(sys.argv) > 5 else 4096
    sys.path.insert(0, f"{src}/gguf-py")
    import gguf  # llama.cpp's, from the folder given
    from gguf.quants import quantize

    qtypes = {"f32": gguf.GGMLQuantizationType.F32, "bf16": gguf.GGMLQuantizationType.BF16,
              "q8_0": gguf.GGMLQuantizationType.Q8_0}
    ftypes = {"f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    if kind not in qtypes:
        sys.exit(f"unknown type {kind} (f32, bf16 or q8_0)")
    qt = qtypes[kind]

    with open(f"{vocab_dir}/encoder.json", encoding="utf-8") as f:
        enc = json.load(f)
    tokens = [t for t, _ in sorted(enc.items(), key=lambda kv: kv[1])]
    with open(f"{vocab_dir}/vocab.bpe", encoding="utf-8") as f:
        merges = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#version")]
    n_vocab, d, n_layer, n_head, n_ff = len(tokens), 768, 12, 12, 3072

    w = gguf.GGUFWriter(out, "gpt2")
    w.add_name("gpt2-124m-random")
    w.add_context_length(ctx)
    w.add_embedding_length(d)
    w.add_feed_forward_length(n_ff)
    w.add_block_count(n_layer)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(1e-5)
    w.add_file_type(ftypes[kind])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * n_vocab)
    w.add_token_merges(merges)
    w.add_bos_token_id(n_vocab - 1)
    w.add_eos_token_id(n_vocab - 1)

    rng = np.random.default_rng(0)

    def matrix(name, rows, cols):
        a = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float32)
        if qt == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, quantize(a, qt), raw_dtype=qt)

    def vec(name, n, value):
        w.add_tensor(name, np.full(n, value, dtype=np.float32))

    matrix("token_embd.weight", n_vocab, d)
    w.add_tensor("position_embd.weight",
                 (rng.standard_normal((ctx, d), dtype=np.float32) * 0.01).astype(np.float32))
    if os.environ.get("UNTIED_OUTPUT") == "1":
        matrix("output.weight", n_vocab, d)
    vec("output_norm.weight", d, 1.0)
    vec("output_norm.bias", d, 0.0)
    for i in range(n_layer):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", d, 1.0)
        vec(p + "attn_norm.bias", d, 0.0)
        matrix(p + "attn_qkv.weight", 3 * d, d)
        vec(p + "attn_qkv.bias", 3 * d, 0.0)
        matrix(p + "attn_output.weight", d, d)
        vec(p + "attn_output.bias", d, 0.0)
        vec(p + "ffn_norm.weight", d, 1.0)
        vec(p + "ffn_norm.bias", d, 0.0)
        matrix(p + "ffn_up.weight", n_ff, d)
        vec(p + "ffn_up.bias", n_ff, 0.0)
        matrix(p + "ffn_down.weight", d, n_ff)
        vec(p + "ffn_down.bias", d, 0.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out} ({kind})")


if __name__ == "__main__":
    main()

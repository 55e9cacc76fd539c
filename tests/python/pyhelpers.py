"""Shared by the tests of the Python package (tests/python): random models written from the
PyTorch reference (tests/ref/torch_h3.py), the CLI and hippo_ref paths from the environment
(CTest sets HIPPO_BIN, HIPPO_REF_BIN and PYTHONPATH=build/python), and the error measure of
tests/ref (relative max-norm error)."""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REF_DIR = os.path.join(os.path.dirname(HERE), "ref")
sys.path.insert(0, REF_DIR)

import refcommon  # noqa: E402  (tests/ref)
from torch_h3 import LM, randomize_  # noqa: E402

HIPPO_BIN = os.environ.get("HIPPO_BIN", "build/hippo")
HIPPO_REF_BIN = os.environ.get("HIPPO_REF_BIN", "build/tests/hippo_ref")
BUILD_DIR = os.environ.get("HIPPO_BUILD_DIR", "build")

HYBRID = {"vocab_size": 257, "d_model": 32, "n_layer": 3, "d_state": 16, "attn_heads": 2,
          "layers": ["h3", "attention", "s4d"]}


def write_model(path, cfg=HYBRID, seed=0, scale=0.3):
    """A random reference model (float64 PyTorch) saved as a hippo model file with the byte
    tokenizer embedded; returns the PyTorch model."""
    torch.manual_seed(seed)
    model = LM(cfg)
    randomize_(model, scale=scale, seed=seed)
    refcommon.save_safetensors(path, dict(model.named_parameters()),
                               {"format": "hippo", "config": json.dumps(cfg), "tokenizer": "byte"})
    return model


def rel_err(ours, ref):
    ours = torch.as_tensor(ours).to(torch.float64)
    ref = torch.as_tensor(ref).to(torch.float64)
    assert ours.shape == ref.shape, f"shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    return (ours - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)


def write_bf16_model(path, model, cfg):
    """The model with its linear and embedding weights (2-D '.weight') stored as BF16 (round to
    nearest even, as `hippo convert --dtype bf16` stores them); everything else F32."""
    import struct
    header = {"__metadata__": {"format": "hippo", "config": json.dumps(cfg), "tokenizer": "byte"}}
    blobs, off = [], 0
    for name, t in model.named_parameters():
        t = t.detach()
        if t.dim() == 2 and name.endswith(".weight"):
            b, dt = t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes(), "BF16"
        else:
            b, dt = t.to(torch.float32).contiguous().numpy().tobytes(), "F32"
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

"""Shared helpers for the PyTorch reference tests.

Each test builds random parameters and inputs in PyTorch, writes them to a safetensors file,
runs `hippo_ref` on it (the C++ layer under test), and compares hippo's outputs and gradients
with PyTorch autograd on the reference implementation in this folder.

Error measure used everywhere: relative max-norm error, max|ours - ref| / max(max|ref|, tiny).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import torch

torch.set_default_dtype(torch.float64)  # the reference computes in double precision

ARGS = None


def parse_args():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--ref-bin", required=True)
    p.add_argument("--hippo-bin", default=None)
    ARGS, rest = p.parse_known_args()
    return [sys.argv[0]] + rest


def main():
    argv = parse_args()
    unittest.main(argv=argv, verbosity=2)


def save_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    off = 0
    blobs = []
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e
        b, en = e["data_offsets"]
        arr = np.frombuffer(data[base + b: base + en], dtype=np.float32).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy()).to(torch.float64)
    return out


def run_case(case, meta, tensors):
    """Runs hippo_ref on a case and returns its output tensors (as float64)."""
    with tempfile.TemporaryDirectory() as d:
        inp, outp = os.path.join(d, "in.safetensors"), os.path.join(d, "out.safetensors")
        save_safetensors(inp, tensors, {"case": case, "meta": json.dumps(meta)})
        r = subprocess.run([ARGS.ref_bin, inp, outp], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"hippo_ref {case} failed: {r.stderr}")
        return load_safetensors(outp)


def rel_err(ours, ref):
    ours = ours.to(torch.float64)
    ref = ref.to(torch.float64)
    assert ours.shape == ref.shape, f"shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    scale = max(ref.abs().max().item(), 1e-30)
    return (ours - ref).abs().max().item() / scale


class RefTestCase(unittest.TestCase):
    tol = 1e-4

    def assertClose(self, name, ours, ref, tol=None):
        tol = self.tol if tol is None else tol
        e = rel_err(ours, ref)
        print(f"  {name}: rel err {e:.2e}")
        self.assertLessEqual(e, tol, f"{name}: relative max-norm error {e:.3e} > {tol:.1e}")

    def compare_mixer(self, out, ref_y, ref_dx, ref_grads, tol=None):
        """ref_grads: {param name: grad tensor}."""
        self.assertClose("y", out["y"], ref_y, tol)
        self.assertClose("dx", out["dx"], ref_dx, tol)
        for name, g in ref_grads.items():
            self.assertIn("grad." + name, out, f"hippo returned no gradient for {name}")
            self.assertClose("grad." + name, out["grad." + name], g, tol)

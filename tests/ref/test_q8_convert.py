"""`hippo convert --dtype q8`: a released-style H3 checkpoint (random weights, built with
torch_h3.LM) converted to q8 weights (int8 blocks of 32 with fp32 scales that are bf16 values,
docs/checkpoints.md)
and run by hippo (memory-mapped, reference case "converted_model") gives the logits of the
float64 PyTorch model whose weights are quantized the same way here, independently, in torch
(relative max-norm <= 1e-4), and stays near the fp32 model (<= 6e-2 on these random weights; the q8 rounding alone). Converting hippo's own
fp32 file gives the same bytes as converting the checkpoint.
"""
import json
import os
import struct
import tempfile
import unittest

import torch

import refcommon
from refcommon import RefTestCase, run_case
from test_convert import BF16_SUFFIXES, SMALL, build_model, released_state_dict

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def bf16_ceil(s):
    """The smallest bf16 value >= each (non-negative, finite) fp32 element: its bits truncated
    to bf16, then one bf16 step up where that fell below."""
    trunc = (s.view(torch.int32) & ~0xFFFF).view(torch.float32)
    up = (trunc.view(torch.int32) + 0x10000).view(torch.float32)
    return torch.where(trunc >= s, trunc, up)


def scale_tensors(path):
    """Every q8 scale tensor of a safetensors file, as fp32 torch tensors."""
    h = read_header(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        data = f.read()[n:]
    out = {}
    for k, e in h.items():
        if k.endswith(".q8_scale"):
            a, b = e["data_offsets"]
            out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32)
    return out


def q8_rounded(model):
    """The model with every linear/embedding weight replaced by its q8 value: per block of 32
    along a row, s = max|w| / 127 (fp32) rounded up to the next bf16 value, q = round(w / s)
    (ties to even), s * q."""
    import copy
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if not name.endswith(BF16_SUFFIXES):
                continue
            w = p.to(torch.float32).reshape(p.shape[0], -1, 32)
            amax = w.abs().amax(-1, keepdim=True)
            safe = torch.where(amax > 0, amax, torch.ones_like(amax))
            # fp32 tensor-by-tensor operations, each correctly rounded as in C++ (torch's
            # `127 / t` takes another rounding path: one value came out 1 step off).
            s = torch.where(amax > 0, amax / torch.full_like(amax, 127.0), torch.zeros_like(amax))
            s = bf16_ceil(s)
            inv = torch.full_like(safe, 1.0) / torch.where(amax > 0, s, torch.ones_like(s))
            q = torch.round(w * inv).clamp(-127, 127)
            p.copy_((s * q).reshape(p.shape).to(torch.float64))
    return m


class Q8ConvertTest(RefTestCase):
    def test_q8_logits(self):
        with tempfile.TemporaryDirectory() as d:
            model = build_model(SMALL, seed=8)
            pt = os.path.join(d, "m.pt")
            torch.save(released_state_dict(model, SMALL), pt)
            hippo = refcommon.ARGS.hippo_bin
            import subprocess
            def convert(src, dst, *args):
                r = subprocess.run([hippo, "convert", src, dst, *args], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, f"hippo convert failed:\n{r.stdout}\n{r.stderr}")
                return dst
            w = convert(pt, os.path.join(d, "q8.safetensors"), "--heads", "2", "--dtype", "q8")
            h = read_header(w)
            self.assertEqual(h["__metadata__"]["weights"], "q8")
            for k, e in h.items():
                if k == "__metadata__" or k.endswith(".q8_scale"):
                    continue
                want = "I8" if k.endswith(BF16_SUFFIXES) else "F32"
                self.assertEqual(e["dtype"], want, k)
                if want == "I8":
                    self.assertEqual(h[k + ".q8_scale"]["dtype"], "F32")
                    self.assertEqual(h[k + ".q8_scale"]["shape"], [e["shape"][0], e["shape"][1] // 32])
            self.assertLess(os.path.getsize(w), 0.45 * os.path.getsize(pt))
            # Every scale is a bf16 value (low 16 bits zero): Rows4 keeps them as bf16.
            scales = scale_tensors(w)
            self.assertTrue(scales)
            for k, v in scales.items():
                self.assertTrue(torch.all((v.view(torch.int32) & 0xFFFF) == 0), k)
                self.assertTrue(torch.all(v >= 0), k)
            self.assertFalse(any(n.endswith(".fp32.tmp") for n in os.listdir(d)), "temporary file left")

            # hippo's fp32 file converted to q8: the same bytes.
            f32 = convert(pt, os.path.join(d, "f32.safetensors"), "--heads", "2")
            w2 = convert(f32, os.path.join(d, "q8b.safetensors"), "--dtype", "q8")
            with open(w, "rb") as a, open(w2, "rb") as b:
                self.assertEqual(a.read(), b.read(), "fp32 file -> q8 must equal checkpoint -> q8")

            g = torch.Generator().manual_seed(9)
            tokens = torch.randint(0, SMALL["vocab_size"], (2, 24), generator=g)
            rounded = q8_rounded(model)
            with torch.no_grad():
                want_q8 = rounded(tokens)
                want_f32 = model(tokens)
            out = run_case("converted_model", {"weights": w, "loader": "mapped"},
                           {"tokens": tokens.double()})
            self.assertClose("logits vs q8-rounded weights", out["logits"], want_q8, 1e-4)
            self.assertClose("logits vs fp32 weights", out["logits"], want_f32, 6e-2)


if __name__ == "__main__":
    refcommon.main()

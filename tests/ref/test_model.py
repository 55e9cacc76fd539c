"""Whole-model reference test: a 4-layer hybrid (d=64, L=256: two H3, one attention, one S4D)
and the two H3 ablations; logits, loss and every parameter gradient against torch_h3.LM."""
import json

import torch
import torch.nn.functional as F

import refcommon
from refcommon import RefTestCase, run_case
from torch_h3 import LM, randomize_


def run_model_case(test, cfg, B=2, L=256, seed=0, tol=1e-4):
    torch.manual_seed(seed)
    model = LM(cfg)
    randomize_(model, scale=0.2, seed=seed)
    V = cfg["vocab_size"]
    tokens = torch.randint(0, V, (B, L))
    targets = torch.randint(0, V, (B, L))
    targets[0, :5] = -1  # ignored positions
    logits = model(tokens)
    loss = F.cross_entropy(logits.reshape(B * L, -1), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    tensors = {k: v for k, v in model.state_dict().items()}
    tensors["tokens"] = tokens.double()
    tensors["targets"] = targets.double()
    out = run_case("model", {"config": cfg}, tensors)
    test.assertClose("logits", out["logits"], logits.detach(), tol)
    test.assertClose("loss", out["loss"], loss.detach().reshape(1), tol)
    for name, p in model.named_parameters():
        test.assertIn("grad." + name, out, f"hippo returned no gradient for {name}")
        test.assertClose("grad." + name, out["grad." + name], p.grad, tol)
    n_ref = sum(p.numel() for p in model.parameters())
    test.assertEqual(int(out["num_params"].item()), n_ref, "parameter count")


class ModelTest(RefTestCase):
    def test_hybrid_4_layer(self):
        cfg = {"vocab_size": 61, "d_model": 64, "n_layer": 4, "d_state": 64, "attn_heads": 4,
               "layers": ["h3", "attention", "h3", "s4d"]}
        run_model_case(self, cfg)

    def test_ablations_and_multihead(self):
        cfg = {"vocab_size": 40, "d_model": 32, "n_layer": 3, "d_state": 16, "head_dim": 2,
               "attn_heads": 2, "layers": ["h3_noshift", "h3_nodiag", "h3"]}
        run_model_case(self, cfg, L=100)

    def test_transformer_learned_positions_rotary(self):
        cfg = {"vocab_size": 50, "d_model": 32, "n_layer": 2, "attn_heads": 4, "rotary_dim": 4,
               "learned_pos": True, "max_position": 128, "layers": ["attention", "attention"]}
        run_model_case(self, cfg, L=64)


if __name__ == "__main__":
    refcommon.main()

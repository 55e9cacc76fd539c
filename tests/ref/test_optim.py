"""AdamW with hippo's parameter groups against torch.optim.AdamW (spec §1/§4): matrices decay,
biases do not, SSM dynamics train at min(lr, 1e-3) without decay; a learning-rate multiplier
per step stands for the schedule."""
import torch

import refcommon
from refcommon import RefTestCase, run_case


class AdamWTest(RefTestCase):
    def run_steps(self, lr, wd, steps=5):
        g = torch.Generator().manual_seed(1)
        init = {"w": torch.randn(7, 5, generator=g), "b": torch.randn(5, generator=g),
                "log_dt": torch.randn(4, generator=g)}
        grads = [{k: torch.randn(v.shape, generator=g) for k, v in init.items()} for _ in range(steps)]
        scales = [0.5, 1.0, 0.8, 0.3, 0.1][:steps]
        params = {k: torch.nn.Parameter(v.clone().float()) for k, v in init.items()}
        opt = torch.optim.AdamW([
            {"params": [params["w"]], "lr": lr, "weight_decay": wd},
            {"params": [params["b"]], "lr": lr, "weight_decay": 0.0},
            {"params": [params["log_dt"]], "lr": min(lr, 1e-3), "weight_decay": 0.0},
        ], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        base = [grp["lr"] for grp in opt.param_groups]
        for s in range(steps):
            for grp, b in zip(opt.param_groups, base):
                grp["lr"] = b * scales[s]
            for k, p in params.items():
                p.grad = grads[s][k].float()
            opt.step()
        tensors = dict(init)
        for s in range(steps):
            for k, v in grads[s].items():
                tensors[f"g{s}.{k}"] = v
        out = run_case("adamw", {"lr": lr, "weight_decay": wd, "steps": steps, "scales": scales},
                       tensors)
        for k, p in params.items():
            self.assertClose(k, out[k], p.detach().double(), 1e-5)

    def test_large_lr_caps_dynamics(self):
        self.run_steps(lr=1e-2, wd=0.1)

    def test_small_lr(self):
        self.run_steps(lr=5e-4, wd=0.1)


if __name__ == "__main__":
    refcommon.main()

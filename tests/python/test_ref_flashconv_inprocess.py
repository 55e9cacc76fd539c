"""tests/ref/test_flashconv.py (today a hippo_ref subprocess suite) run in-process through the
package: its cases go to hippo's FlashConv kernels via hippo._hippo instead of a hippo_ref
subprocess, with the suite's own torch.fft float64 reference, shapes and tolerances.

Runs the suite's "conv" and "h3" cases (auto instruction set). Not run in-process: the
per-ISA case (the package does not expose the ISA override; HIPPO_ISA caps it per process)
and the state-passing case (flashconv_ssm is not part of the public API)."""
import unittest

import pyhelpers  # noqa: F401  (tests/ref on sys.path)
import refcommon
import test_flashconv
import torch

from hippo import _hippo


def run_case_in_process(case, meta, tensors):
    if case != "flashconv" or meta.get("isa", "auto") != "auto":
        raise unittest.SkipTest(f"{case} {meta} runs only through hippo_ref")
    a = {n: t.to(torch.float32).contiguous().numpy() for n, t in tensors.items()}
    out = {}
    if meta["op"] == "conv":
        out["y"] = _hippo.fftconv_fwd(a["u"], a["K"], a["D"])
        out["du"], out["dK"], out["dD"] = _hippo.fftconv_bwd(a["u"], a["K"], a["D"], a["dy"])
    else:
        args = [a["q"], a["k"], a["v"], a["K"], a["D"]]
        out["y"] = _hippo.h3_conv_fwd(*args)
        out["dq"], out["dk"], out["dv"], out["dK"], out["dD"] = _hippo.h3_conv_bwd(*args, a["dy"])
    return {n: torch.from_numpy(x).to(torch.float64) for n, x in out.items()}


test_flashconv.run_case = run_case_in_process


class InProcessFlashConv(test_flashconv.TestFlashConv):
    test_h3_every_isa = None
    test_state_passing = None



if __name__ == "__main__":
    unittest.main(verbosity=2)

"""hippo: H3 state-space language models on the CPU, from Python.

    import hippo
    m = hippo.load("model.safetensors")      # memory-mapped; bf16 weights stay bf16
    ids = m.tokenizer.encode("The jury")
    logits = m.forward(np.array([ids], np.int32))   # (1, L, vocab_size) float32
    for piece in m.generate("The jury", max_tokens=64, temperature=0.8, seed=0):
        print(piece, end="")

hippo.ops holds hippo's CPU FlashConv as PyTorch autograd ops (imported on first use, so that
`import hippo` does not need torch). Every engine failure raises hippo.Error (a RuntimeError)
with the engine's message. See docs/python.md.
"""
import codecs as _codecs

from ._hippo import (Error, Generator, Model, Session, Tokenizer, cpu_features, load,
                     load_tokenizer, num_threads, set_num_threads, version)
from . import _hippo

__version__ = version()
__all__ = ["Error", "Model", "Session", "Tokenizer", "load", "load_tokenizer", "set_num_threads",
           "num_threads", "cpu_features", "version", "ops"]


def _stream(gen):
    # A token may end inside a UTF-8 character: pieces are decoded incrementally, so a character
    # split over two tokens comes out whole; bytes that are not UTF-8 become U+FFFD.
    dec = _codecs.getincrementaldecoder("utf-8")(errors="replace")
    for b in gen:
        s = dec.decode(b)
        if s:
            yield s
    s = dec.decode(b"", final=True)
    if s:
        yield s


def _generate(self, prompt, max_tokens=64, temperature=1.0, top_k=0, top_p=1.0, seed=0,
              stream=True, raw=False):
    """Text after `prompt`, sampled as `hippo generate` samples it (same seed, same tokens).

    stream=True: a generator of text pieces (str); stream=False: the whole continuation (str).
    raw=True gives bytes instead of str (each token's bytes when streaming). The GIL is
    released while each token is computed, so threads may generate from one model at once.
    """
    gen = _hippo.generator(self, prompt, int(max_tokens), float(temperature), int(top_k),
                           float(top_p), int(seed))
    if raw:
        return gen if stream else b"".join(gen)
    if stream:
        return _stream(gen)
    return b"".join(gen).decode("utf-8", errors="replace")


Model.generate = _generate


def __getattr__(name):
    if name == "ops":  # torch is imported only when hippo.ops is used
        import importlib
        return importlib.import_module(".ops", __name__)
    raise AttributeError(f"module 'hippo' has no attribute {name!r}")

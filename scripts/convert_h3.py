#!/usr/bin/python3
"""Converts a released H3 checkpoint (a PyTorch `model.pt`) to a hippo safetensors file.

    /usr/bin/python3 scripts/convert_h3.py IN.pt OUT.safetensors [--dtype fp32|bf16] [--heads N]

Reads the current names (`backbone.*`, spec §5) and the older ones (`s4seq.encoder.*`,
`embedding.*`, `backbone.ln_0` with the norms shifted by one block), either as a plain
state_dict or inside a training checkpoint (`state_dict` with a `model.` prefix). The model
shape is read from the weights: attention layers from `mixer.Wqkv.weight`, rotary from a
`rotary_emb.inv_freq` buffer, d_state from `ssm_k_kernel.kernel.B`. Attention heads are not in
the weights and are never guessed: --heads, else the value of the released model whose shapes
the checkpoint matches exactly (RELEASED below; the output names it); anything else is refused.

Memory is bounded by the file: every record of the zip archive is checked against the
archive's real size before it is read (a small deflated record cannot expand to gigabytes),
and each storage is read once, straight into its buffer.

The output is never the input (also through links) and never replaces an existing file that is
not hippo weights (e.g. a training checkpoint, a state file, anything else).

The zip archive is read without torch.load (torch 1.13 ignores its pickle_module argument);
its pickle is read by an unpickler that calls only torch's tensor rebuild functions,
OrderedDict and a few plain types; any other global becomes an inert placeholder that is never
called, so a malicious file cannot run code.

Output: safetensors with __metadata__ {"format": "hippo", "config": <ModelConfig JSON>}, the
same format `hippo train` writes; with --tokenizer, the tokenizer too (its vocabulary texts,
src/data/tokenizer.h), so the file needs no vocabulary folder to run. --dtype bf16 stores the linear and embedding weights as BF16
(round to nearest even); SSM parameters, norms and biases stay F32.
"""
import argparse
import collections
import io
import json
import os
import re
import struct
import sys
import zipfile

try:
    import torch
except ImportError:
    sys.stderr.write("convert_h3: error: this converter needs PyTorch; run it with a Python that has "
                     "torch (Debian: apt-get install python3-torch, then /usr/bin/python3)\n")
    sys.exit(2)
import pickle


class ConvertError(Exception):
    pass


GPT2_VOCAB, GPT2_PADDED = 50257, 50264
# The released H3 models (github.com/HazyResearch/H3, examples/README.md): name, d_model,
# n_layer, attention layers, rotary_dim, attention heads. All have the GPT-2 vocabulary
# (50264 embedding rows) and d_state 64. A checkpoint gets heads from this table only when
# every one of these shapes matches.
RELEASED = [
    ("H3-125M", 768, 12, (6,), 0, 12),
    ("H3-355M", 1024, 24, (8, 16), 0, 16),
    ("H3-1.3B", 2048, 24, (8, 16), 0, 16),
    ("H3-2.7B (3 attention layers)", 2560, 32, (8, 16, 24), 0, 20),
    ("H3-2.7B (2 attention layers, rotary)", 2560, 32, (10, 21), 64, 20),
]
RELEASED_D_STATE = 64
ROTARY_BASE = 10000.0


# ---------------------------------------------------------------------------------------------
# Restricted unpickling


class _Placeholder:
    """Stands in for any class or function the file names that is not on the allow list. It
    records what it was given and does nothing else."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        self._state = state

    def __setitem__(self, k, v):
        pass

    def append(self, v):
        pass

    def extend(self, v):
        pass


def _placeholder_type(module, name):
    return type(f"Unloaded[{module}.{name}]", (_Placeholder,), {"origin": f"{module}.{name}"})


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _StorageType:
    """What the pickle's storage globals (torch.FloatStorage, ...) resolve to: just a dtype."""

    def __init__(self, name):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise ConvertError("pickle uses _codecs.encode in an unexpected way")
    return obj.encode(encoding, errors)


def _allowed_globals():
    import torch._utils as tu
    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch", "Size"): torch.Size,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("builtins", "bytearray"): bytearray,
        ("__builtin__", "set"): set,
        ("_codecs", "encode"): _codecs_encode,  # bytes in protocol-2 pickles
    }
    for fn in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
               "_rebuild_parameter_with_state"):
        if hasattr(tu, fn):
            allowed[("torch._utils", fn)] = getattr(tu, fn)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    for name in _STORAGE_DTYPES:
        allowed[("torch", name)] = _StorageType(name)
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; persistent ids (tensor storages) are read from the
    zip archive by `storage_loader`."""
    _allowed = None

    def __init__(self, f, storage_loader):
        super().__init__(f, encoding="utf-8")
        self._storage_loader = storage_loader

    def find_class(self, module, name):
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        allowed = RestrictedUnpickler._allowed.get((module, name))
        return allowed if allowed is not None else _placeholder_type(module, name)

    def persistent_load(self, pid):
        return self._storage_loader(pid)


def _check_record_sizes(zf, archive_size):
    """Every record's claimed (uncompressed) size against the archive's real size, before any
    is read: torch.save stores records uncompressed, so together they fit in the file. A
    deflated record claiming more would make reading it allocate what the file only claims."""
    total = 0
    for info in zf.infolist():
        if info.file_size > archive_size:
            raise ConvertError(f"record '{info.filename}' claims {info.file_size} bytes "
                               f"uncompressed, more than the whole archive ({archive_size} bytes); "
                               f"torch.save does not compress records")
        total += info.file_size
    if total > archive_size:
        raise ConvertError(f"the records claim {total} bytes uncompressed in all, more than the "
                           f"whole archive ({archive_size} bytes); torch.save does not compress records")


def _read_record_into(zf, info, buf):
    """Reads a record straight into `buf` (its exact size); the CRC is checked at the end."""
    view = memoryview(buf)
    with zf.open(info) as f:
        got = 0
        while got < len(buf):
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
        if got != len(buf) or f.read(1):
            raise ConvertError(f"record '{info.filename}' does not hold the {len(buf)} bytes its "
                               f"header gives")


def _read_zip_checkpoint(path):
    """torch.save's zip format, read without torch.load (whose pickle_module argument
    torch 1.13 ignores): the pickle in <prefix>/data.pkl, storages in <prefix>/data/<key>."""
    archive_size = os.path.getsize(path)
    with zipfile.ZipFile(path) as zf:
        _check_record_sizes(zf, archive_size)
        infos = {i.filename: i for i in zf.infolist()}
        names = set(infos)
        pkls = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise ConvertError(f"the zip archive holds {len(pkls)} data.pkl records, expected 1")
        prefix = pkls[0][: -len("data.pkl")]
        if any(n.startswith(prefix + "code/") for n in names) or prefix + "constants.pkl" in names:
            raise ConvertError("this is a TorchScript archive, not a torch.save checkpoint")
        storages = {}

        def load_storage(pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and
                    isinstance(pid[1], _StorageType)):
                raise ConvertError(f"unexpected persistent id in the pickle: {pid!r:.80}")
            _, stype, key, _location, numel = pid
            if key not in storages:
                rec = f"{prefix}data/{key}"
                if rec not in names:
                    raise ConvertError(f"storage record '{rec}' is missing from the zip archive")
                info = infos[rec]
                esize = torch.empty(0, dtype=stype.dtype).element_size()
                # The pickle's claim against the record's size, before allocating for it.
                if not isinstance(numel, int) or numel < 0 or info.file_size != numel * esize:
                    raise ConvertError(f"storage '{rec}' has {info.file_size} bytes, but the pickle "
                                       f"claims {numel!r:.40} elements of {stype.name}")
                buf = bytearray(info.file_size)
                _read_record_into(zf, info, buf)
                t = (torch.frombuffer(buf, dtype=stype.dtype) if buf
                     else torch.empty(0, dtype=stype.dtype))
                storages[key] = t.storage()
            return storages[key]

        data_pkl = bytearray(infos[pkls[0]].file_size)
        _read_record_into(zf, infos[pkls[0]], data_pkl)
        return RestrictedUnpickler(io.BytesIO(data_pkl), load_storage).load()


def load_pickle(path):
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ConvertError(f"{path}: file is empty")
    bad = f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?)"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"PK\x03\x04":
            raise ConvertError(f"{bad}: the zip archive has no central directory")
        raise ConvertError(f"{bad}: not a zip archive (torch.save's format since PyTorch 1.6; the "
                           f"older format is not supported: load and re-save it with torch)")
    try:
        return _read_zip_checkpoint(path)
    except ConvertError as e:
        raise ConvertError(f"{bad}: {e}")
    except Exception as e:  # bad opcodes, bad CRC, inconsistent tensors, ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConvertError(f"{bad}: {type(e).__name__}: {msg}")


# ---------------------------------------------------------------------------------------------
# State dict extraction and renaming


def extract_state_dict(obj, path):
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a state_dict (a dict of tensors), found "
                           f"{getattr(type(obj), 'origin', type(obj).__name__)}")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        inner = obj["state_dict"]
        sd = {k[len("model."):]: v for k, v in inner.items()
              if isinstance(k, str) and k.startswith("model.")}
        if not sd:
            sd = dict(inner)
    else:
        sd = dict(obj)
    if not sd:
        raise ConvertError(f"{path}: the state_dict is empty")
    for k, v in sd.items():
        if not isinstance(k, str):
            raise ConvertError(f"{path}: state_dict key {k!r} is not a string")
        if not isinstance(v, torch.Tensor):
            what = getattr(type(v), "origin", type(v).__name__)
            raise ConvertError(f"{path}: '{k}' is not a tensor (found {what})")
    return sd


def rename_old_keys(sd):
    """The older naming scheme (spec §5), as the authors' load_state_dict maps it."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        k2 = re.sub(r"^s4seq\.encoder\.", "backbone.", k)
        k2 = re.sub(r"^embedding\.", "backbone.embeddings.word_embeddings.", k2)
        k2 = re.sub(r"^backbone\.norm\.", "backbone.ln_0.", k2)
        if k2 in out:
            raise ConvertError(f"'{k}' and another key both map to '{k2}'")
        out[k2] = v
    if "backbone.ln_0.weight" not in out:
        return out
    # Old blocks: mixer -> add -> norm; current: norm -> mixer -> add. Shift every norm by one.
    if "backbone.ln_f.weight" in out:
        raise ConvertError("checkpoint has both backbone.ln_0 (old scheme) and backbone.ln_f")
    n = n_layers_of(out)
    old = dict(out)

    def take(name):
        if name not in old:
            raise ConvertError(f"missing key '{name}' (old naming scheme, needed for the norm shift)")
        return old.pop(name)

    new = collections.OrderedDict()
    for p in ("weight", "bias"):
        new[f"backbone.layers.0.norm1.{p}"] = take(f"backbone.ln_0.{p}")
        for l in range(n):
            new[f"backbone.layers.{l}.norm2.{p}"] = take(f"backbone.layers.{l}.norm1.{p}")
            if l > 0:
                new[f"backbone.layers.{l}.norm1.{p}"] = take(f"backbone.layers.{l - 1}.norm2.{p}")
        new[f"backbone.ln_f.{p}"] = take(f"backbone.layers.{n - 1}.norm2.{p}")
    old.update(new)
    return old


def n_layers_of(sd):
    idx = set()
    for k in sd:
        m = re.match(r"^backbone\.layers\.(\d+)\.", k)
        if m:
            idx.add(int(m.group(1)))
    if not idx:
        raise ConvertError("no 'backbone.layers.{i}.' keys: not an H3 language model checkpoint")
    n = max(idx) + 1
    missing = sorted(set(range(n)) - idx)
    if missing:
        raise ConvertError(f"layers {missing} are missing (found layers up to {n - 1})")
    return n


# ---------------------------------------------------------------------------------------------
# Config inference and checking


def shape_of(sd, name):
    if name not in sd:
        raise ConvertError(f"missing key '{name}'")
    return tuple(sd[name].shape)


def infer_config(sd, heads=None, vocab_size=None):
    emb = "backbone.embeddings.word_embeddings.weight"
    es = shape_of(sd, emb)
    if len(es) != 2:
        raise ConvertError(f"'{emb}' has shape {list(es)}, expected (vocab, d_model)")
    rows, d = es
    n = n_layers_of(sd)
    layers, d_state, head_dim, rotary = [], None, None, set()
    for i in range(n):
        p = f"backbone.layers.{i}.mixer."
        if p + "Wqkv.weight" in sd:
            layers.append("attention")
            f = p + "rotary_emb.inv_freq"
            rotary.add(2 * sd[f].numel() if f in sd else 0)
        elif p + "q_proj.weight" in sd:
            layers.append("h3")
            bs = shape_of(sd, p + "ssm_k_kernel.kernel.B")
            if len(bs) != 2:
                raise ConvertError(f"'{p}ssm_k_kernel.kernel.B' has shape {list(bs)}, expected (d, N)")
            if d_state is None:
                d_state = bs[1]
            elif bs[1] != d_state:
                raise ConvertError(f"layer {i}: d_state {bs[1]} differs from {d_state} in an earlier layer")
            H = shape_of(sd, p + "kernel.kernel.log_dt")
            if len(H) != 1 or H[0] <= 0 or d % H[0]:
                raise ConvertError(f"'{p}kernel.kernel.log_dt' has shape {list(H)}; expected (H,) "
                                   f"with H dividing d_model={d}")
            hd = d // H[0]
            if head_dim is None:
                head_dim = hd
            elif hd != head_dim:
                raise ConvertError(f"layer {i}: head_dim {hd} differs from {head_dim} in an earlier layer")
        else:
            raise ConvertError(f"layer {i}: no mixer found (neither 'mixer.Wqkv.weight' for attention "
                               f"nor 'mixer.q_proj.weight' for H3)")
    if len(rotary) > 1:
        raise ConvertError(f"attention layers disagree on rotary embeddings (rotary dims {sorted(rotary)})")
    rotary_dim = rotary.pop() if rotary else 0

    if vocab_size is None:
        if rows == GPT2_PADDED:
            vocab_size = GPT2_VOCAB
        else:
            vocab_size = rows
    if (vocab_size + 7) // 8 * 8 != rows:
        raise ConvertError(f"embedding has {rows} rows but vocab_size {vocab_size} pads to "
                           f"{(vocab_size + 7) // 8 * 8} (hippo pads the vocabulary to a multiple of 8)")
    shape = {"d_model": d, "n_layer": n, "layers": layers, "rotary_dim": rotary_dim,
             "d_state": d_state, "rows": rows}
    if heads is None:
        if "attention" in layers:
            rel = _released_match(shape)
            if rel is None:
                raise ConvertError(
                    f"cannot tell the number of attention heads (they are not in the weights): "
                    f"{_describe(shape)} match no released H3 model ("
                    + "; ".join(f"{r[0]}: d_model {r[1]}, {r[2]} layers, attention at {list(r[3])}"
                                + (f", rotary_dim {r[4]}" if r[4] else "") for r in RELEASED)
                    + f"; all with d_state {RELEASED_D_STATE} and {GPT2_PADDED} embedding rows); "
                    f"pass --heads N")
            heads = rel[5]
        else:
            heads = 1  # no attention layer: unused
    if d % heads:
        raise ConvertError(f"--heads {heads} does not divide d_model={d}")
    if rotary_dim and (rotary_dim > d // heads or rotary_dim % 2):
        raise ConvertError(f"rotary_dim {rotary_dim} does not fit the head size {d // heads}")
    return {
        "vocab_size": vocab_size,
        "d_model": d,
        "n_layer": n,
        "d_state": d_state if d_state is not None else 64,
        "head_dim": head_dim if head_dim is not None else 1,
        "attn_heads": heads,
        "rotary_dim": rotary_dim,
        "layers": layers,
    }


def _released_shape(r):
    _, d, n, attn, rot, _ = r
    return {"d_model": d, "n_layer": n, "layers": ["attention" if i in attn else "h3" for i in range(n)],
            "rotary_dim": rot, "d_state": RELEASED_D_STATE, "rows": GPT2_PADDED}


def _describe(shape):
    attn = [i for i, k in enumerate(shape["layers"]) if k == "attention"]
    return (f"d_model {shape['d_model']}, {shape['n_layer']} layers, attention at {attn}, "
            f"rotary_dim {shape['rotary_dim']}, d_state {shape['d_state']}, "
            f"{shape['rows']} embedding rows")


def _released_match(shape):
    for r in RELEASED:
        if _released_shape(r) == shape:
            return r
    return None


def matched_release(cfg):
    """The released model whose shapes a config from infer_config has exactly, or None."""
    shape = {"d_model": cfg["d_model"], "n_layer": cfg["n_layer"], "layers": cfg["layers"],
             "rotary_dim": cfg["rotary_dim"], "d_state": cfg["d_state"],
             "rows": (cfg["vocab_size"] + 7) // 8 * 8}
    r = _released_match(shape)
    return r[0] if r else None


def expected_shapes(cfg):
    """Every parameter hippo's LanguageModel has for this config, by official name."""
    d, N, V = cfg["d_model"], cfg["d_state"], (cfg["vocab_size"] + 7) // 8 * 8
    H, M = d // cfg["head_dim"], N // 2
    ex = {"backbone.embeddings.word_embeddings.weight": (V, d),
          "backbone.ln_f.weight": (d,), "backbone.ln_f.bias": (d,)}
    for i, kind in enumerate(cfg["layers"]):
        p = f"backbone.layers.{i}."
        for nm in ("norm1", "norm2"):
            ex[p + nm + ".weight"] = (d,)
            ex[p + nm + ".bias"] = (d,)
        ex[p + "mlp.fc1.weight"] = (4 * d, d)
        ex[p + "mlp.fc1.bias"] = (4 * d,)
        ex[p + "mlp.fc2.weight"] = (d, 4 * d)
        ex[p + "mlp.fc2.bias"] = (d,)
        m = p + "mixer."
        if kind == "attention":
            ex[m + "Wqkv.weight"] = (3 * d, d)
            ex[m + "Wqkv.bias"] = (3 * d,)
            ex[m + "out_proj.weight"] = (d, d)
            ex[m + "out_proj.bias"] = (d,)
        else:
            for lin in ("q_proj", "k_proj", "v_proj", "output_linear"):
                ex[m + lin + ".weight"] = (d, d)
                ex[m + lin + ".bias"] = (d,)
            ex[m + "ssm_k_kernel.kernel.B"] = (d, N)
            ex[m + "ssm_k_kernel.kernel.C"] = (1, d, N)
            ex[m + "ssm_k_D"] = (d,)
            ex[m + "kernel.kernel.log_dt"] = (H,)
            ex[m + "kernel.kernel.inv_A_real"] = (H, M)
            ex[m + "kernel.kernel.A_imag"] = (H, M)
            ex[m + "kernel.kernel.B"] = (H, M, 2)
            ex[m + "kernel.kernel.C"] = (1, H, M, 2)
            ex[m + "D"] = (H,)
    return ex


def check_and_strip(sd, cfg):
    """Drops the tied LM head and the rotary buffers after checking them; then the remaining
    keys must be exactly the model's parameters with the expected shapes."""
    sd = dict(sd)
    emb = sd["backbone.embeddings.word_embeddings.weight"]
    if "lm_head.weight" in sd:
        head = sd.pop("lm_head.weight")
        if head.shape != emb.shape or not torch.equal(head.to(torch.float32), emb.to(torch.float32)):
            raise ConvertError("'lm_head.weight' differs from the embedding; hippo ties the LM head to "
                               "the embedding and cannot load an untied head")
    r = cfg["rotary_dim"]
    for k in [k for k in sd if k.endswith("mixer.rotary_emb.inv_freq")]:
        inv = sd.pop(k).to(torch.float64).flatten()
        want = 1.0 / (ROTARY_BASE ** (torch.arange(0, r, 2, dtype=torch.float64) / r))
        if inv.shape != want.shape or not torch.allclose(inv, want, rtol=1e-2, atol=0):
            raise ConvertError(f"'{k}' is not the GPT-NeoX rotary table with base 10000 and "
                               f"rotary_dim {r}; hippo supports only that one")
    ex = expected_shapes(cfg)
    missing = sorted(set(ex) - set(sd))
    extra = sorted(set(sd) - set(ex))
    if missing:
        raise ConvertError(f"missing key{'s' if len(missing) > 1 else ''}: " + ", ".join(
            f"'{k}'" for k in missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else ""))
    if extra:
        raise ConvertError(f"unexpected key{'s' if len(extra) > 1 else ''} (not a parameter of an H3 "
                           f"model): " + ", ".join(f"'{k}'" for k in extra[:10]) +
                           (f" (+{len(extra) - 10} more)" if len(extra) > 10 else ""))
    for k, shp in ex.items():
        if tuple(sd[k].shape) != shp:
            raise ConvertError(f"'{k}' has shape {list(sd[k].shape)}, expected {list(shp)}")
        if not sd[k].is_floating_point():
            raise ConvertError(f"'{k}' has dtype {sd[k].dtype}, expected a floating-point tensor")
    return sd


# ---------------------------------------------------------------------------------------------
# Writing


BF16_SUFFIXES = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "output_linear.weight",
                 "Wqkv.weight", "out_proj.weight", "fc1.weight", "fc2.weight",
                 "word_embeddings.weight")


def tensor_bytes(t, as_bf16):
    t = t.detach().to("cpu")
    if as_bf16:
        return "BF16", t.to(torch.float32).to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
    return "F32", t.to(torch.float32).contiguous().numpy().tobytes()


def fnv1a64(data, h=0xcbf29ce484222325):
    """64-bit FNV-1a, as src/data/hash.h (the embedded tokenizer's id)."""
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def tokenizer_metadata(spec):
    """__metadata__ entries embedding the tokenizer `spec` ("byte" or "gpt2:DIR"), as hippo
    writes them (src/data/tokenizer.h), so the converted file runs from any folder."""
    if spec is None:
        return {}
    if spec == "byte":
        return {"tokenizer": "byte", "tokenizer.id": "byte-v1"}
    if not spec.startswith("gpt2:") or len(spec) == 5:
        raise ConvertError(f"--tokenizer {spec!r}: expected 'byte' or 'gpt2:DIR'")
    texts = []
    for name in ("encoder.json", "vocab.bpe"):
        path = os.path.join(spec[5:], name)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ConvertError(f"--tokenizer {spec}: {path}: {e.strerror or e}")
        try:
            texts.append((raw, raw.decode("utf-8")))
        except UnicodeDecodeError:
            raise ConvertError(f"--tokenizer {spec}: {path}: not UTF-8 text")
    (enc_raw, enc), (bpe_raw, bpe) = texts
    return {"tokenizer": "gpt2-bpe", "tokenizer.encoder_json": enc, "tokenizer.vocab_bpe": bpe,
            "tokenizer.id": "gpt2-bpe:%016x" % fnv1a64(bpe_raw, fnv1a64(enc_raw))}


def write_safetensors(path, sd, cfg, dtype, tokenizer_meta=None):
    names = sorted(sd)
    header, off, as_bf16 = {}, 0, {}
    for k in names:
        bf = dtype == "bf16" and k.endswith(BF16_SUFFIXES)
        esize = 2 if bf else 4
        n = sd[k].numel() * esize
        header[k] = {"dtype": "BF16" if bf else "F32", "shape": list(sd[k].shape),
                     "data_offsets": [off, off + n]}
        as_bf16[k] = bf
        off += n
    header["__metadata__"] = {"format": "hippo", "config": json.dumps(cfg),
                              "converted_from": "H3 PyTorch checkpoint (scripts/convert_h3.py)",
                              **(tokenizer_meta or {})}
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for k in names:
                f.write(tensor_bytes(sd[k], as_bf16[k])[1])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # no temporary file left behind, whatever stopped the write
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ConvertError(f"{path}: cannot write: {e.strerror or e}")
        raise
    return 8 + len(h) + off


def convert(inp, out, dtype="fp32", heads=None, vocab_size=None, tokenizer=None):
    tokenizer_meta = tokenizer_metadata(tokenizer)  # a bad vocabulary fails before the big read
    obj = load_pickle(inp)
    try:
        sd = extract_state_dict(obj, inp)
        sd = rename_old_keys(sd)
        cfg = infer_config(sd, heads, vocab_size)
        sd = check_and_strip(sd, cfg)
    except ConvertError as e:
        msg = str(e)
        raise ConvertError(msg if msg.startswith(inp) else f"{inp}: {msg}")
    size = write_safetensors(out, sd, cfg, dtype, tokenizer_meta)
    return cfg, size


def _safetensors_metadata(path):
    """__metadata__ of a safetensors file (header only), or None if it is not one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, 100 << 20):
                return None
            header = json.loads(f.read(n))
        meta = header.get("__metadata__", {}) if isinstance(header, dict) else None
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def check_output(inp, out):
    """The output is never the input (also through symlinks and hard links) and replaces an
    existing file only if that is hippo weights (not a training checkpoint, not anything else)."""
    if not os.path.exists(out):
        return
    try:
        same = os.path.samefile(inp, out)
    except OSError:
        same = False
    if same:
        raise ConvertError(f"{out}: is the input {inp}; choose another output file")
    if not os.path.isfile(out):
        raise ConvertError(f"{out}: exists and is not a regular file; give a file name")
    meta = _safetensors_metadata(out)
    if meta is None or meta.get("format") != "hippo":
        raise ConvertError(f"{out}: exists and is not hippo weights; it would be replaced. Remove it "
                           f"yourself or choose another output file")
    if "optim.step" in meta:
        raise ConvertError(f"{out}: exists and is a training checkpoint (it holds optimizer state); "
                           f"it would be replaced. Remove it yourself or choose another output file")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert an H3 model.pt to hippo safetensors.")
    ap.add_argument("input", help="model.pt (state_dict or training checkpoint)")
    ap.add_argument("output", help="output .safetensors")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: linear and embedding weights as BF16 (default fp32)")
    ap.add_argument("--heads", type=int, default=None,
                    help="attention heads (required unless the checkpoint has exactly the shapes "
                         "of a released H3 model)")
    ap.add_argument("--vocab-size", type=int, default=None,
                    help="true vocabulary size (default: 50257 for 50264 rows, else the rows)")
    ap.add_argument("--tokenizer", default=None,
                    help="embed this tokenizer in the output: 'byte', or 'gpt2:DIR' (DIR holds "
                         "encoder.json and vocab.bpe; the released H3 models use GPT-2's). "
                         "Default: none recorded (hippo then guesses from the vocabulary size)")
    a = ap.parse_args(argv)
    if a.heads is not None and a.heads <= 0:
        ap.error("--heads must be positive")
    if a.vocab_size is not None and a.vocab_size <= 0:
        ap.error("--vocab-size must be positive")
    try:
        check_output(a.input, a.output)
        cfg, size = convert(a.input, a.output, a.dtype, a.heads, a.vocab_size, a.tokenizer)
    except ConvertError as e:
        sys.stderr.write(f"convert_h3: error: {e}\n")
        return 1
    except MemoryError:
        sys.stderr.write(f"convert_h3: error: {a.input}: out of memory while converting\n")
        return 1
    except OSError as e:  # e.g. an unreadable input
        sys.stderr.write(f"convert_h3: error: {e.filename or a.input}: {e.strerror or e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: one line, the traceback only on request
        if os.environ.get("HIPPO_DEBUG"):
            raise
        sys.stderr.write(f"convert_h3: error: unexpected {type(e).__name__} converting {a.input}: "
                         f"{str(e).strip().splitlines()[0] if str(e).strip() else ''} (a bug: please "
                         f"report it; HIPPO_DEBUG=1 shows the traceback)\n")
        return 1
    attn = [i for i, k in enumerate(cfg["layers"]) if k == "attention"]
    rel = matched_release(cfg)
    if not attn:
        heads = "no attention"
    elif a.heads is not None:
        heads = f"{cfg['attn_heads']} heads (--heads)"
    else:
        heads = f"{cfg['attn_heads']} heads (the shapes match the released {rel} exactly)"
    print(f"{a.output}: d_model {cfg['d_model']}, {cfg['n_layer']} layers, attention at {attn}, "
          f"{heads}, rotary_dim {cfg['rotary_dim']}, d_state {cfg['d_state']}, "
          f"vocab {cfg['vocab_size']}, {a.dtype}, {size / 2**20:.1f} MiB"
          + (f"; shapes of the released {rel}" if rel and a.heads is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

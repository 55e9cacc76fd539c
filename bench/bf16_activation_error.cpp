// What the fast bf16 mode (decoding's activations rounded to bf16, kernels/gemm_bf16.h) costs in
// accuracy on a trained model: teacher-forced recurrent decoding over a text, with fp32 weights,
// bf16 weights (exact activations) and bf16 weights + rounded activations; prints the mean
// negative log-likelihood (bits per token) of each and how far the fast mode's logits are from
// the exact bf16 ones.
// Usage: bf16_activation_error MODEL.safetensors TEXT_FILE [TOKENS=4096] [TOKENIZER=byte]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "kernels/gemm_bf16.h"
#include "models/bf16_weights.h"
#include "models/load.h"

using namespace hippo;

namespace {

// Teacher-forced decoding of tokens[0..n): logits of every position (n - 1 predictions).
std::vector<float> decode_logits(LanguageModel& m, const std::vector<int32_t>& tokens) {
  const int V = m.config().padded_vocab();
  std::vector<float> all;
  all.reserve(static_cast<size_t>(tokens.size()) * V);
  ModelState st = m.new_state(1);
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const float* lg = m.step(&tokens[t], st);
    all.insert(all.end(), lg, lg + V);
  }
  return all;
}

double bits_per_token(const std::vector<float>& logits, const std::vector<int32_t>& tokens,
                      int V, int vocab) {
  double nll = 0;
  const size_t n = tokens.size() - 1;
  for (size_t t = 0; t < n; ++t) {
    const float* l = logits.data() + t * V;
    const float mx = *std::max_element(l, l + vocab);
    double z = 0;
    for (int v = 0; v < vocab; ++v) z += std::exp(static_cast<double>(l[v]) - mx);
    nll += std::log(z) + mx - l[tokens[t + 1]];
  }
  return nll / static_cast<double>(n) / std::log(2.0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors TEXT_FILE [TOKENS=4096] [TOKENIZER=byte]\n",
                 argv[0]);
    return 2;
  }
  try {
    const int n = argc > 3 ? std::atoi(argv[3]) : 4096;
    const auto tok = load_tokenizer(argc > 4 ? argv[4] : "byte");
    std::vector<int32_t> tokens = tok->encode(read_whole_file(argv[2]));
    HIPPO_CHECK(tokens.size() >= 2, argv[2], ": fewer than 2 tokens");
    if (static_cast<int>(tokens.size()) > n) tokens.resize(static_cast<size_t>(n));
    auto m = load_model_mapped(argv[1]);
    const int V = m->config().padded_vocab(), vocab = m->config().vocab_size;
    const std::vector<float> f32 = decode_logits(*m, tokens);
    convert_weights_to_bf16(*m);
    const std::vector<float> exact = decode_logits(*m, tokens);
    set_bf16_activations(Bf16Activations::RoundedToBf16);
    const std::vector<float> fast = decode_logits(*m, tokens);
    set_bf16_activations(Bf16Activations::Exact);
    // Per position: max |fast - exact| over the vocabulary / max |exact|.
    std::vector<double> rel;
    for (size_t t = 0; t + 1 < tokens.size(); ++t) {
      double d = 0, s = 0;
      for (int v = 0; v < vocab; ++v) {
        d = std::max(d, std::fabs(static_cast<double>(fast[t * V + v]) - exact[t * V + v]));
        s = std::max(s, std::fabs(static_cast<double>(exact[t * V + v])));
      }
      rel.push_back(d / std::max(s, 1e-30));
    }
    std::sort(rel.begin(), rel.end());
    std::printf("%zu tokens of %s, model %s\n", tokens.size(), argv[2], argv[1]);
    std::printf("bits per token: fp32 weights %.5f, bf16 weights %.5f, bf16 + rounded "
                "activations %.5f\n",
                bits_per_token(f32, tokens, V, vocab), bits_per_token(exact, tokens, V, vocab),
                bits_per_token(fast, tokens, V, vocab));
    std::printf("fast vs exact bf16 logits, max |diff| / max |logit| per position: median %.2e, "
                "99th percentile %.2e, max %.2e\n",
                rel[rel.size() / 2], rel[rel.size() * 99 / 100], rel.back());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// What q8 weights (models/q8_weights.h) cost in accuracy on a trained model: teacher-forced
// decoding over a text with the fp32 weights and with the q8 conversion of the same model
// (decoding quantizes activations too), and the prompt path (one forward pass, fp32
// activations times dequantized weights). Prints bits per token of each and the logits error
// of q8 against fp32 (max and mean |diff|, and max |diff| / max |logit| per position); and
// decoding with a bf16 and a q8 KV cache (fp32 and q8 weights) against the fp32 cache.
// Usage: q8_error MODEL.safetensors TEXT_FILE [TOKENS=4096] [TOKENIZER=byte]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/read_file.h"
#include "data/tokenizer.h"
#include "models/load.h"
#include "models/q8_weights.h"

#include <string>
#include <tuple>

using namespace hippo;

namespace {

std::vector<float> decode_logits(LanguageModel& m, const std::vector<int32_t>& tokens) {
  const int V = m.config().padded_vocab();
  std::vector<float> all;
  ModelState st = m.new_state(1);
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const float* lg = m.step(&tokens[t], st);
    all.insert(all.end(), lg, lg + V);
  }
  return all;
}

std::vector<float> forward_logits(LanguageModel& m, const std::vector<int32_t>& tokens) {
  const int V = m.config().padded_vocab();
  const int n = static_cast<int>(tokens.size()) - 1;
  const float* lg = m.forward(tokens.data(), 1, n);
  return {lg, lg + static_cast<int64_t>(n) * V};
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

void report(const char* what, const std::vector<float>& q, const std::vector<float>& f,
            size_t n, int V, int vocab) {
  double mx = 0, sum = 0, rel_max = 0;
  for (size_t t = 0; t < n; ++t) {
    double d = 0, s = 0;
    for (int v = 0; v < vocab; ++v) {
      const double e = std::fabs(static_cast<double>(q[t * V + v]) - f[t * V + v]);
      d = std::max(d, e);
      sum += e;
      s = std::max(s, std::fabs(static_cast<double>(f[t * V + v])));
    }
    mx = std::max(mx, d);
    rel_max = std::max(rel_max, d / std::max(s, 1e-30));
  }
  std::printf("%s logits vs fp32: max |diff| %.4f, mean |diff| %.5f, max over positions of "
              "max|diff|/max|logit| %.2e\n", what, mx, sum / (static_cast<double>(n) * vocab), rel_max);
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
    auto m = load_model(argv[1]);  // fp32 copies (convert_weights_to_q8 needs owned values)
    const int V = m->config().padded_vocab(), vocab = m->config().vocab_size;
    const std::vector<float> f32_dec = decode_logits(*m, tokens);
    const std::vector<float> f32_fwd = forward_logits(*m, tokens);
    // The KV cache's dtype alone (fp32 weights), then with q8 weights (kv: fp32, bf16, q8).
    m->set_kv_cache(KvCacheDType::BF16);
    const std::vector<float> f32_dec_kvb = decode_logits(*m, tokens);
    m->set_kv_cache(KvCacheDType::Q8);
    const std::vector<float> f32_dec_kvq = decode_logits(*m, tokens);
    m->set_kv_cache(KvCacheDType::F32);
    convert_weights_to_q8(*m);
    const std::vector<float> q8_dec = decode_logits(*m, tokens);
    const std::vector<float> q8_fwd = forward_logits(*m, tokens);
    m->set_kv_cache(KvCacheDType::BF16);
    const std::vector<float> q8_dec_kvb = decode_logits(*m, tokens);
    m->set_kv_cache(KvCacheDType::Q8);
    const std::vector<float> q8_dec_kvq = decode_logits(*m, tokens);
    const size_t np = tokens.size() - 1;
    std::printf("%zu tokens of %s, model %s\n", tokens.size(), argv[2], argv[1]);
    const double bf = bits_per_token(f32_dec, tokens, V, vocab),
                 bq = bits_per_token(q8_dec, tokens, V, vocab),
                 ff = bits_per_token(f32_fwd, tokens, V, vocab),
                 fq = bits_per_token(q8_fwd, tokens, V, vocab);
    std::printf("bits per token, decoding: fp32 %.5f, q8 %.5f (%+.3f%%)\n", bf, bq, 100 * (bq / bf - 1));
    std::printf("bits per token, prompt path: fp32 %.5f, q8 %.5f (%+.3f%%)\n", ff, fq, 100 * (fq / ff - 1));
    report("decoding", q8_dec, f32_dec, np, V, vocab);
    report("prompt path", q8_fwd, f32_fwd, np, V, vocab);
    {  // (equal to plain decoding for models without attention layers)
      for (const auto& [name, f, q] : {std::tuple{"bf16", &f32_dec_kvb, &q8_dec_kvb},
                                       std::tuple{"q8", &f32_dec_kvq, &q8_dec_kvq}}) {
        const double a = bits_per_token(*f, tokens, V, vocab), b = bits_per_token(*q, tokens, V, vocab);
        std::printf("bits per token, decoding with a %s KV cache: fp32 weights %.5f (%+.3f%%), q8 "
                    "weights %.5f (%+.3f%%)\n", name, a, 100 * (a / bf - 1), b, 100 * (b / bf - 1));
        report((std::string("decoding, fp32 weights, ") + name + " KV cache,").c_str(), *f, f32_dec,
               np, V, vocab);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

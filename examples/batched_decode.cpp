// Batched decode: four sessions with different prompts (so at different positions) advance
// together, one hippo::step_batch call per token. Each is checked against a copy stepped on its
// own: same logits, same tokens. Exits 1 on any difference.
//   batched_decode MODEL.safetensors [N_STEPS]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <hippo/hippo.hpp>

namespace {

// Largest |a - b| relative to the largest |b| (batched products may sum in another order).
double max_rel_diff(std::span<const float> a, std::span<const float> b) {
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::fmax(diff, std::fabs(double{a[i]} - double{b[i]}));
    scale = std::fmax(scale, std::fabs(double{b[i]}));
  }
  return diff / scale;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors [N_STEPS]\n", argv[0]);
    return 2;
  }
  const int n_steps = argc > 2 ? std::atoi(argv[2]) : 16;
  const std::vector<std::string> prompts = {"The", "It was the best of times",
                                            "Once upon a time, in a land", "A"};
  try {
    auto model = hippo::Model::load(argv[1]);
    const hippo::Tokenizer& tok = model->tokenizer();
    std::vector<hippo::Session> batched, alone;
    for (size_t i = 0; i < prompts.size(); ++i) {
      hippo::SamplingParams sp;
      sp.temperature = 0;  // greedy: both copies must pick the same tokens
      batched.emplace_back(model, sp);
      batched.back().prefill(tok.encode(prompts[i]));
      alone.push_back(batched.back().fork());
    }
    std::vector<hippo::Session*> ptrs;
    for (auto& s : batched) ptrs.push_back(&s);

    std::vector<std::vector<int32_t>> generated(prompts.size());
    double worst = 0;
    for (int t = 0; t < n_steps; ++t) {
      std::vector<int32_t> next(prompts.size());
      for (size_t i = 0; i < prompts.size(); ++i) {
        next[i] = batched[i].sample();
        const int32_t ref = alone[i].sample();
        if (next[i] != ref) {
          std::fprintf(stderr, "session %zu step %d: batched picked %d, alone %d\n", i, t,
                       next[i], ref);
          return 1;
        }
        generated[i].push_back(next[i]);
      }
      hippo::step_batch(ptrs, next);
      for (size_t i = 0; i < prompts.size(); ++i) {
        alone[i].step(next[i]);
        if (batched[i].position() != alone[i].position()) {
          std::fprintf(stderr, "session %zu: position %lld batched, %lld alone\n", i,
                       static_cast<long long>(batched[i].position()),
                       static_cast<long long>(alone[i].position()));
          return 1;
        }
        worst = std::fmax(worst, max_rel_diff(batched[i].logits(), alone[i].logits()));
      }
    }
    for (size_t i = 0; i < prompts.size(); ++i)
      std::printf("[%zu] %s|%s\n", i, prompts[i].c_str(), tok.decode(generated[i]).c_str());
    std::printf("max relative logit difference, batched vs alone: %.3g\n", worst);
    if (!(worst <= 1e-4)) {
      std::fprintf(stderr, "batched logits differ from stepping alone (%.3g > 1e-4)\n", worst);
      return 1;
    }
  } catch (const hippo::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// Embed a model and generate: load it, prefill a prompt, sample tokens, print the text.
//   generate MODEL.safetensors [PROMPT] [N_TOKENS]
#include <cstdio>
#include <cstdlib>
#include <string>

#include <hippo/hippo.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors [PROMPT] [N_TOKENS]\n", argv[0]);
    return 2;
  }
  const std::string prompt = argc > 2 ? argv[2] : "The";
  const int n_tokens = argc > 3 ? std::atoi(argv[3]) : 32;
  try {
    // The model is loaded once and never changes; sessions hold the per-sequence state.
    std::shared_ptr<const hippo::Model> model = hippo::Model::load(argv[1]);
    hippo::SamplingParams sampling;
    sampling.temperature = 0.8f;
    sampling.top_k = 40;
    sampling.seed = 1;
    hippo::Session session(model, sampling);

    std::vector<int32_t> tokens = model->tokenizer().encode(prompt);
    session.prefill(tokens);
    for (int i = 0; i < n_tokens; ++i) {
      const int32_t next = session.sample();
      tokens.push_back(next);
      session.step(next);
    }
    std::printf("%s\n", model->tokenizer().decode(tokens).c_str());
    std::fprintf(stderr, "%s: %lld parameters, %d tokens generated, session state %lld bytes\n",
                 argv[1], static_cast<long long>(model->info().num_params), n_tokens,
                 static_cast<long long>(session.state_bytes()));
  } catch (const hippo::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

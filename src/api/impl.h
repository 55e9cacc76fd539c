// What the public handles (include/hippo/hippo.hpp) hold. Private to src/api.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "generate/sampler.h"
#include "hippo/hippo.hpp"
#include "models/lm.h"

namespace hippo::detail {

// Weights, config and tokenizer: built by Model::load, never changed afterwards.
struct ModelImpl {
  std::unique_ptr<LanguageModel> lm;
  std::unique_ptr<Tokenizer> tokenizer;
  ModelInfo info;
  std::string path;
  std::map<std::string, std::string> metadata;
};

// One sequence: its recurrent state, the logits after its last token, its sampler.
struct SessionImpl {
  std::shared_ptr<const Model> model;
  ModelState state;            // batch 1
  std::vector<float> logits;   // padded_vocab entries after the last token; empty before any
  SamplingParams sampling;
  Sampler sampler;

  SessionImpl(std::shared_ptr<const Model> m, const SamplingParams& s);
  const LanguageModel& lm() const { return *model->impl().lm; }
  int vocab() const { return model->info().vocab_size; }
};

}  // namespace hippo::detail

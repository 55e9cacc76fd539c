// hippo::Model: loading a model file into shared, immutable weights + config + tokenizer.
#include <algorithm>

#include "api/impl.h"
#include "api/kv_cache_option.h"
#include "api/bf16_layout_option.h"
#include "api/q8_layout_option.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/scratch.h"
#include "data/tokenizer.h"
#include "io/output_path.h"
#include "models/load.h"

namespace hippo {

const char* version() { return "0.5.0"; }

// set_num_threads / num_threads: declared in both hippo.hpp and core/threads.h, defined once
// in core/threads.cpp.

std::string cpu_features() { return cpu_features_summary(); }

// release_thread_scratch: declared in both hippo.hpp and core/scratch.h, defined in
// core/scratch.cpp.

namespace {

// The tokenizer: the caller's override, else the one embedded in the file (data/tokenizer.h;
// older files: the folder they name, or a guess from the vocabulary size).
std::unique_ptr<Tokenizer> model_tokenizer(const std::map<std::string, std::string>& meta,
                                           const LoadOptions& opts, const ModelConfig& cfg,
                                           const std::string& path) {
  std::unique_ptr<Tokenizer> tok =
      opts.tokenizer.empty() ? tokenizer_from_metadata(meta, path) : load_tokenizer(opts.tokenizer);
  const std::string what = opts.tokenizer.empty() ? "the file's tokenizer" : "tokenizer " + opts.tokenizer;
  HIPPO_CHECK(tok->vocab_size() <= cfg.vocab_size, path, ": ", what, " has ",
              tok->vocab_size(), " tokens, more than the model's vocab_size ", cfg.vocab_size);
  return tok;
}

}  // namespace

Model::Model(std::unique_ptr<detail::ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& opts) {
  auto impl = std::make_unique<detail::ModelImpl>();
  impl->path = path;
  if (opts.mmap) {
    impl->lm = load_model_mapped(path, &impl->metadata);
  } else {
    impl->lm = load_model(path);
    if (auto meta = read_safetensors_metadata(path)) impl->metadata = std::move(*meta);
  }
  const ModelConfig& cfg = impl->lm->config();
  impl->tokenizer = model_tokenizer(impl->metadata, opts, cfg, path);
  ModelInfo& info = impl->info;
  info.layers = layers_summary(cfg);
  info.vocab_size = cfg.vocab_size;
  info.d_model = cfg.d_model;
  info.n_layer = cfg.n_layer;
  info.d_state = cfg.d_state;
  info.num_params = impl->lm->num_params();
  // One stored dtype per file (bf16 and q8 files keep norms, biases and SSM parameters fp32).
  for (const ParamRef& p : impl->lm->params())
    if (p.param->has_stored()) {
      info.weights_dtype = p.param->stored.dtype == DType::Q8 ? "q8"
                           : p.param->stored.dtype == DType::BF16 ? "bf16"
                                                                  : "fp32";
      break;
    }
  info.bf16_weights = info.weights_dtype == "bf16";
  impl->lm->set_kv_cache(api::resolve_kv_cache(opts.kv_cache, *impl->lm));
  info.q8_layout = api::apply_q8_layout(opts.q8_layout, *impl->lm);
  info.bf16_layout = api::apply_bf16_layout(opts.bf16_layout, *impl->lm);
  info.kv_cache = kv_cache_name(impl->lm->kv_cache());
  info.config_json = cfg.to_json().dump();
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

const ModelInfo& Model::info() const { return impl_->info; }
const Tokenizer& Model::tokenizer() const { return *impl_->tokenizer; }
const std::string& Model::path() const { return impl_->path; }

}  // namespace hippo

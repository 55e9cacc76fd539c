#include "train/checkpoint.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/load.h"

namespace hippo {

void save_checkpoint(const std::string& path, const LanguageModel& model, const AdamW* opt,
                     const std::map<std::string, std::string>& extra_metadata) {
  std::vector<NamedTensor> list;
  std::vector<std::string> names;  // keeps the optimizer names alive
  for (auto& p : model.params()) {
    HIPPO_CHECK(!p.param->has_stored(), path, ": cannot save '", p.name, "': the model holds bf16 "
                "inference weights (save the fp32 model it came from)");
    list.push_back({p.name, &p.param->value});
  }
  std::map<std::string, std::string> meta = extra_metadata;
  meta["format"] = "hippo";
  meta["config"] = model.config().to_json().dump();
  if (opt) {
    const auto& m = opt->first_moments();
    const auto& v = opt->second_moments();
    names.reserve(2 * opt->params().size());
    for (size_t i = 0; i < opt->params().size(); ++i) {
      names.push_back("optim.m." + opt->params()[i].name);
      list.push_back({names.back(), &m[i]});
      names.push_back("optim.v." + opt->params()[i].name);
      list.push_back({names.back(), &v[i]});
    }
    meta["optim.step"] = std::to_string(opt->steps());
  }
  save_safetensors(path, list, meta);
}

void save_weights(const std::string& path, const LanguageModel& model) {
  save_checkpoint(path, model, nullptr);
}

int64_t parse_checkpoint_step(const std::string& text, const std::string& path) {
  int64_t v = -1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  HIPPO_CHECK(!text.empty() && ec == std::errc() && ptr == end && v >= 0, path,
              ": __metadata__.optim.step must be a non-negative integer, got \"", text, "\"");
  return v;
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, LanguageModel& model,
                                                   AdamW* opt) {
  SafeTensorsReader st(path);
  const auto& meta = st.header().metadata;
  int64_t step = 0;
  if (opt) {  // checked before anything is loaded, so a bad file leaves model and optimizer as they were
    auto it = meta.find("optim.step");
    HIPPO_CHECK(it != meta.end(), path,
                ": no optimizer state (__metadata__.optim.step); cannot resume from weights only");
    step = parse_checkpoint_step(it->second, path);
  }
  load_model_weights(st, model);
  if (opt) {
    auto take = [&](const std::string& name, Tensor& into) {
      const TensorEntry& e = st.entry(name);
      HIPPO_CHECK(e.shape == into.shape(), path, ": tensor '", name, "' has shape ",
                  shape_str(e.shape), ", the optimizer expects ", shape_str(into.shape()));
      st.read_f32(name, into.data());
      check_finite(into.data(), into.numel(), name, path);  // a NaN moment would poison every step
    };
    for (size_t i = 0; i < opt->params().size(); ++i) {
      take("optim.m." + opt->params()[i].name, opt->first_moments()[i]);
      take("optim.v." + opt->params()[i].name, opt->second_moments()[i]);
    }
    opt->set_steps(step);
  }
  return meta;
}

uint64_t checkpoint_bytes(const LanguageModel& model, bool with_optimizer,
                          const std::map<std::string, std::string>& extra_metadata) {
  const uint64_t copies = with_optimizer ? 3 : 1;
  uint64_t bytes = 8 + (64u << 10);  // length prefix, metadata (config, run settings) and slack
  if (!extra_metadata.empty()) bytes += nlohmann::json(extra_metadata).dump().size();  // as written
  for (auto& p : model.params()) {
    const uint64_t data = (static_cast<uint64_t>(p.param->value.numel()) * 4 + 3) / 4 * 4;
    // Header entry per tensor: name (with "optim.m." for the moments), dtype, shape, offsets.
    bytes += copies * (data + p.name.size() + 160);
  }
  return bytes;
}

std::map<std::string, std::string> read_metadata(const std::string& path) {
  SafeTensorsReader st(path);
  return st.header().metadata;
}

void check_resume_compatible(const std::string& path, const std::map<std::string, std::string>& meta,
                             const ModelConfig& config,
                             const std::map<std::string, std::string>& run_settings) {
  using nlohmann::json;
  std::string diffs;
  auto differ = [&](const std::string& field, const std::string& then, const std::string& now) {
    diffs += str(diffs.empty() ? "" : "; ", field, ": the checkpoint has ", then, ", this run has ", now);
  };
  auto cfg_it = meta.find("config");
  HIPPO_CHECK(cfg_it != meta.end(), path, ": no model config (__metadata__.config); cannot resume from it");
  const json stored = json::parse(cfg_it->second, nullptr, false);
  HIPPO_CHECK(stored.is_object(), path, ": __metadata__.config is not a JSON object");
  const json current = config.to_json();
  for (auto& [k, v] : stored.items()) {
    if (!current.contains(k)) differ("model config field '" + k + "'", v.dump(), "(no such field)");
    else if (current[k] != v) differ("model config field '" + k + "'", v.dump(), current[k].dump());
  }
  auto run_it = meta.find(kRunSettingsKey);
  if (run_it != meta.end()) {
    const json run = json::parse(run_it->second, nullptr, false);
    HIPPO_CHECK(run.is_object(), path, ": __metadata__.", kRunSettingsKey, " is not a JSON object");
    for (auto& [k, v] : run.items()) {
      auto now = run_settings.find(k);
      if (now == run_settings.end()) continue;  // a setting this caller does not have
      const std::string then = v.is_string() ? v.get<std::string>() : v.dump();
      if (then != now->second) differ("'" + k + "'", then, now->second);
    }
  }
  HIPPO_CHECK(diffs.empty(), path, ": cannot resume: this run's settings differ from the checkpoint's (",
              diffs, "). Resume with the same settings (only --steps, --threads, --eval-every, "
              "--save-every, --log-every, --eval-tokens and --cache-dir may change), or start a "
              "new run in another folder");
}

}  // namespace hippo

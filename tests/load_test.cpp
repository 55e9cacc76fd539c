#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "test_util.h"
#include "io/safetensors.h"
#include "models/load.h"
#include "train/checkpoint.h"

using namespace hippo;
using hippo::test_util::error_of;
using hippo::test_util::TempDir;

namespace {

ModelConfig small_config() {
  return ModelConfig::from_json(
      {{"vocab_size", 61}, {"d_model", 16}, {"n_layer", 2}, {"d_state", 8}, {"attn_heads", 2},
       {"layers", {"h3", "attention"}}},
      "test");
}


}  // namespace

TEST(LoadModel, RoundTripGivesIdenticalLogits) {
  TempDir dir("load_test");
  LanguageModel model(small_config());
  model.init(7);
  save_weights(dir.file("w.safetensors"), model);
  auto loaded = load_model(dir.file("w.safetensors"));
  EXPECT_EQ(loaded->config().to_json(), model.config().to_json());
  std::vector<int32_t> tokens = {1, 5, 9, 60, 0, 3, 3, 2};
  const int64_t n = 8 * model.config().padded_vocab();
  std::vector<float> a(model.forward(tokens.data(), 2, 4), model.forward(tokens.data(), 2, 4) + n);
  const float* b = loaded->forward(tokens.data(), 2, 4);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(LoadModel, ErrorsNameTheFileAndTensor) {
  TempDir dir("load_test");
  LanguageModel model(small_config());
  model.init(1);
  std::vector<NamedTensor> list;
  for (auto& p : model.params()) list.push_back({p.name, &p.param->value});
  std::map<std::string, std::string> meta = {{"format", "hippo"},
                                             {"config", model.config().to_json().dump()}};
  const std::string dropped = "backbone.layers.0.mixer.kernel.kernel.log_dt";
  std::vector<NamedTensor> missing;
  for (auto& t : list)
    if (t.name != dropped) missing.push_back(t);
  const std::string f1 = dir.file("missing.safetensors");
  save_safetensors(f1, missing, meta);
  std::string e = error_of([&] { load_model(f1); });
  EXPECT_NE(e.find(f1), std::string::npos) << e;
  EXPECT_NE(e.find(dropped), std::string::npos) << e;

  Tensor extra = Tensor::zeros({3});
  auto with_extra = list;
  with_extra.push_back({"backbone.bogus", &extra});
  const std::string f2 = dir.file("extra.safetensors");
  save_safetensors(f2, with_extra, meta);
  e = error_of([&] { load_model(f2); });
  EXPECT_NE(e.find("unexpected tensor 'backbone.bogus'"), std::string::npos) << e;

  Tensor wrong = Tensor::zeros({5});
  auto with_wrong = list;
  with_wrong[0].tensor = &wrong;
  const std::string f3 = dir.file("shape.safetensors");
  save_safetensors(f3, with_wrong, meta);
  e = error_of([&] { load_model(f3); });
  EXPECT_NE(e.find(list[0].name), std::string::npos) << e;
  EXPECT_NE(e.find("shape"), std::string::npos) << e;

  const std::string f4 = dir.file("noconfig.safetensors");
  save_safetensors(f4, list);
  e = error_of([&] { load_model(f4); });
  EXPECT_NE(e.find("no model config"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { load_model(dir.file("absent.safetensors")); }).find("cannot open"),
            std::string::npos);
}

#include <gtest/gtest.h>

#include "core/error.h"
#include "models/config.h"

using namespace hippo;
using nlohmann::json;

static std::string error_of(const json& j) {
  try {
    ModelConfig::from_json(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ParsesBothLayerForms) {
  auto a = ModelConfig::from_json({{"vocab_size", 50257}, {"d_model", 768}, {"n_layer", 12},
                                   {"attn_heads", 12}, {"attn_layer_idx", {6}}}, "x");
  EXPECT_EQ(a.padded_vocab(), 50264);
  ASSERT_EQ(a.mixers.size(), 12u);
  EXPECT_EQ(a.mixers[6], MixerKind::Attention);
  EXPECT_EQ(a.mixers[5], MixerKind::H3);
  auto b = ModelConfig::from_json(a.to_json(), "round trip");
  EXPECT_EQ(b.mixers, a.mixers);
  EXPECT_EQ(b.d_model, 768);
}

TEST(Config, WrongFieldsAreRefusedByName) {
  json ok = {{"vocab_size", 20}, {"d_model", 64}, {"n_layer", 2}, {"layers", {"h3", "attention"}}};
  EXPECT_EQ(error_of(ok), "");
  auto with = [&](const char* k, json v) {
    json j = ok;
    j[k] = v;
    return error_of(j);
  };
  EXPECT_NE(with("layers", {"h3", "lstm"}).find("unknown mixer 'lstm'"), std::string::npos);
  EXPECT_NE(with("d_model", -4).find("'d_model'"), std::string::npos);
  EXPECT_NE(with("attn_heads", 5).find("'attn_heads'"), std::string::npos);
  EXPECT_NE(with("d_model", "big").find("'d_model' has the wrong type"), std::string::npos);
  EXPECT_NE(with("head_dim", 3).find("'head_dim'"), std::string::npos);
  EXPECT_NE(with("d_state", 7).find("'d_state'"), std::string::npos);
  EXPECT_NE(with("dropout", 1.5).find("'dropout'"), std::string::npos);
  EXPECT_NE(with("n_layers", 3).find("unknown field 'n_layers'"), std::string::npos);
  EXPECT_NE(with("layers", {"h3"}).find("n_layer"), std::string::npos);
  json missing = ok;
  missing.erase("d_model");
  EXPECT_NE(error_of(missing).find("missing field 'd_model'"), std::string::npos);
  json both = ok;
  both["attn_layer_idx"] = {0};
  EXPECT_NE(error_of(both).find("not both"), std::string::npos);
  EXPECT_NE(error_of({{"vocab_size", 20}, {"d_model", 64}, {"n_layer", 2}, {"attn_layer_idx", {5}}})
                .find("attn_layer_idx"),
            std::string::npos);
}

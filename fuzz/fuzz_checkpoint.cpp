// libFuzzer target for training checkpoints (load_checkpoint into a tiny model and its AdamW,
// the path of `train --resume`): any bytes must load or be refused with a hippo::Error.
// Built and run by scripts/fuzz.sh checkpoint.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "fuzz/fuzz_common.h"
#include "models/lm.h"
#include "train/adamw.h"
#include "train/checkpoint.h"

using namespace hippo;

namespace {

struct Target {
  LanguageModel model{fuzz::tiny_config()};
  std::unique_ptr<AdamW> opt;
  Target() {
    model.init(3);
    opt = std::make_unique<AdamW>(model.params(), AdamWOptions{});
  }
};

Target& target() {
  static Target* t = new Target;
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Target& t = target();
  const std::string dir = fuzz::seed_dir();
  if (dir.empty()) return 0;
  const std::string tmp = dir + "/.ckpt.tmp";
  save_weights(tmp, t.model);
  fuzz::write_seed(dir, "weights_only", fuzz::read_all(tmp));
  // One optimizer step so that the moments are not all zero.
  const int32_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tgt[8] = {2, 3, 4, 5, 6, 7, 8, 9};
  t.model.zero_grad();
  t.model.forward(tok, 2, 4);
  t.model.loss(tgt);
  t.model.backward();
  t.opt->step();
  save_checkpoint(tmp, t.model, t.opt.get(), {{"train.step", "1"}});
  fuzz::write_seed(dir, "with_optimizer", fuzz::read_all(tmp));
  std::remove(tmp.c_str());
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Target& t = target();
  const std::string& path = fuzz::write_scratch(data, size);
  try {
    load_checkpoint(path, t.model, size % 2 ? t.opt.get() : nullptr);
  } catch (const Error&) {
  }
  return 0;
}

// `hippo convert IN.pt|IN.safetensors OUT.safetensors [--dtype fp32|bf16|q8] [--heads N] [--vocab-size V]
// [--tokenizer byte|gpt2:DIR]`: hippo::convert_checkpoint (include/hippo/train.hpp).
#include <memory>

#include "apps/commands.h"
#include "hippo/train.hpp"

namespace hippo::cli {

void add_convert(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<ConvertOptions>();
  auto* c = app.add_subcommand("convert", "Convert a released H3 PyTorch checkpoint (model.pt) to "
                                          "hippo safetensors (needs PyTorch)");
  c->add_option("input", o->input, "model.pt: a state_dict or a training checkpoint (or, with "
                "--dtype q8, hippo fp32 .safetensors)")->required();
  c->add_option("output", o->output, "output .safetensors file")->required();
  c->add_option("--dtype", o->dtype,
                "fp32, or bf16 or q8 (int8, blocks of 32) for the linear and embedding weights; "
                "q8 also converts hippo's own fp32 .safetensors")
      ->check(CLI::IsMember({"fp32", "bf16", "q8"}));
  c->add_option("--heads", o->heads,
                "attention heads (required unless the checkpoint has exactly the shapes of a "
                "released H3 model, whose value is then used)")
      ->check(CLI::PositiveNumber);
  c->add_option("--tokenizer", o->tokenizer,
                "embed this tokenizer in the output (byte | gpt2:DIR; the released H3 models use "
                "GPT-2's), so the file runs from any folder");
  c->add_option("--vocab-size", o->vocab_size, "true vocabulary size (default from the embedding)")
      ->check(CLI::PositiveNumber);
  c->callback([o, &run] { run = [o] { convert_checkpoint(*o); return 0; }; });
}

}  // namespace hippo::cli

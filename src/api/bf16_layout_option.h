// The bf16 layout option of the public API (LoadOptions::bf16_layout, --bf16-layout): "rows"
// keeps a bf16 file's weights where they are mapped (no copy; processes share the page cache),
// "rows8" copies them once into eight interleaved rows (core/weight.h Bf16Layout; a 125M
// model's 250 MB at load, the mapped pages then released), "auto" = rows8 where the AVX-512
// small-rows kernel runs (it reads a group of eight rows as one stream: docs/performance.md,
// issue 18 session 13), else rows. Models without bf16 weights are left as they are.
#pragma once
#include <optional>
#include <string>

#include "core/error.h"
#include "models/bf16_weights.h"
#include "models/lm.h"

namespace hippo::api {

// The option's value as a layout (auto or empty: nullopt, the decode layout); Error otherwise.
inline std::optional<Bf16Layout> bf16_layout_of(const std::string& option) {
  HIPPO_CHECK(option == "auto" || option.empty() || option == "rows" || option == "rows8",
              "bf16_layout must be \"auto\", \"rows\" or \"rows8\", not \"", option, "\"");
  if (option == "rows") return Bf16Layout::Rows;
  if (option == "rows8") return Bf16Layout::Rows8;
  return std::nullopt;
}

// Applies the option; returns the layout's name ("rows", "rows8"), or "" without bf16 weights.
// "rows8" leaves weights that cannot take it (columns not a multiple of 32) row-major.
inline std::string apply_bf16_layout(const std::string& option, LanguageModel& model) {
  const Bf16Layout to = bf16_layout_of(option).value_or(bf16_decode_layout());
  bool any = false;
  for (const ParamRef& p : model.params())
    any = any || (p.param->has_stored() && p.param->stored.dtype == DType::BF16);
  if (!any) return "";
  relayout_bf16_weights(model, to);
  return to == Bf16Layout::Rows8 ? "rows8" : "rows";
}

}  // namespace hippo::api

// The q8 layout option of the public API (LoadOptions::q8_layout, --q8-layout): "rows" keeps
// a q8 file's weights where they are mapped (no copy; processes share the page cache),
// "rows4" rewrites them into four interleaved rows (core/weight.h Q8Layout; a 125M model's
// 150 MB copied once at load), "auto" = rows4 where the AVX512-VNNI decode kernel runs (it
// reads a group of four rows as one stream: docs/performance.md, issue 18 session 11), else
// rows. Models without q8 weights are left as they are.
#pragma once
#include <string>

#include "core/error.h"
#include "models/lm.h"
#include "models/q8_weights.h"

namespace hippo::api {

// Applies the option; returns the layout's name ("rows", "rows4"), or "" without q8 weights.
inline std::string apply_q8_layout(const std::string& option, LanguageModel& model) {
  HIPPO_CHECK(option == "auto" || option.empty() || option == "rows" || option == "rows4",
              "q8_layout must be \"auto\", \"rows\" or \"rows4\", not \"", option, "\"");
  bool any = false;
  for (const ParamRef& p : model.params())
    any = any || (p.param->has_stored() && p.param->stored.dtype == DType::Q8);
  if (!any) return "";
  const Q8Layout to = option == "rows"    ? Q8Layout::Rows
                      : option == "rows4" ? Q8Layout::Rows4
                                          : q8_decode_layout();
  relayout_q8_weights(model, to);
  return to == Q8Layout::Rows4 ? "rows4" : "rows";
}

}  // namespace hippo::api

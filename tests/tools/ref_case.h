// A reference case: named input tensors + JSON metadata in, named output tensors out.
// Each tests/tools/ref_*.cpp registers its cases with HIPPO_REF_CASE.
#pragma once
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "nn/module.h"

namespace hippo::ref {

using Tensors = std::map<std::string, Tensor>;
using CaseFn = std::function<void(const nlohmann::json& meta, const Tensors& in, Tensors& out)>;

bool register_case(const std::string& name, CaseFn fn);

const Tensor& input(const Tensors& in, const std::string& name);

// Copies inputs named like the module's parameters into them (every parameter must be given).
void load_params(const ParamList& params, const Tensors& in);
// Writes "grad.<name>" for every parameter.
void store_grads(const ParamList& params, Tensors& out);

// The standard mixer case: params from inputs, forward on "x" (B, L, d), backward with
// "dy"; outputs "y", "dx", "grad.<param>". If meta has "recurrent": true, also writes
// "y_step" (token-by-token through step()) and "y_prefill_step" (prefill of the first
// meta["prefill"] tokens, then step()).
void run_mixer_case(Mixer& mixer, const nlohmann::json& meta, const Tensors& in, Tensors& out);

}  // namespace hippo::ref

#define HIPPO_REF_CONCAT2(a, b) a##b
#define HIPPO_REF_CONCAT(a, b) HIPPO_REF_CONCAT2(a, b)
#define HIPPO_REF_CASE(name, fn) \
  static const bool HIPPO_REF_CONCAT(hippo_ref_reg_, __LINE__) = ::hippo::ref::register_case(name, fn)

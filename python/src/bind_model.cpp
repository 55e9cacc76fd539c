// hippo.Model: load, config, tokenizer, whole-sequence forward, sessions.
#include "common.h"
#include "hippo/forward.hpp"

namespace hippo::py {

namespace {

PyModel load(const std::string& path, bool mmap, const std::string& tokenizer,
             const std::string& kv_cache, const std::string& q8_layout,
             const std::string& bf16_layout) {
  LoadOptions opts;
  opts.q8_layout = q8_layout;
  opts.bf16_layout = bf16_layout;
  opts.mmap = mmap;
  opts.tokenizer = tokenizer;
  opts.kv_cache = kv_cache;
  pyb::gil_scoped_release nogil;
  return PyModel{Model::load(path, opts)};
}

// tokens (B, L) or (L,) -> logits (B, L, V) or (L, V), float32, written in place by the engine.
pyb::array_t<float> forward(const PyModel& pm, pyb::handle tokens_obj) {
  pyb::array_t<int32_t> tokens = as_tokens(tokens_obj, "Model.forward");
  if (tokens.ndim() != 1 && tokens.ndim() != 2)
    fail("Model.forward: tokens must be (B, L) or (L,), got " + std::to_string(tokens.ndim()) +
         " dimensions");
  const bool one = tokens.ndim() == 1;
  const pyb::ssize_t B = one ? 1 : tokens.shape(0), L = one ? tokens.shape(0) : tokens.shape(1);
  if (B < 1 || L < 1) fail("Model.forward: empty tokens (B, L) = (" + std::to_string(B) + ", " +
                           std::to_string(L) + ")");
  if (B > INT32_MAX || L > INT32_MAX) fail("Model.forward: too many tokens");
  const pyb::ssize_t V = pm.model->info().vocab_size;
  std::vector<pyb::ssize_t> shape = one ? std::vector<pyb::ssize_t>{L, V}
                                        : std::vector<pyb::ssize_t>{B, L, V};
  pyb::array_t<float> out(shape);
  std::span<float> dst(out.mutable_data(), static_cast<size_t>(out.size()));
  std::span<const int32_t> src = span_of(tokens);
  {
    pyb::gil_scoped_release nogil;
    forward_logits(*pm.model, src, static_cast<int>(B), static_cast<int>(L), dst);
  }
  return out;
}

SamplingParams sampling(float temperature, int top_k, float top_p, uint64_t seed) {
  SamplingParams p;
  p.temperature = temperature, p.top_k = top_k, p.top_p = top_p, p.seed = seed;
  return p;
}

}  // namespace

void bind_model(pyb::module_& m) {
  pyb::class_<PyModel>(m, "Model", "A loaded model: immutable, shared by any number of threads")
      .def_property_readonly("path", [](const PyModel& pm) { return pm.model->path(); })
      .def_property_readonly(
          "config",
          [](const PyModel& pm) {
            return pyb::module_::import("json").attr("loads")(pm.model->info().config_json);
          },
          "The model's config as a dict (as stored in the file)")
      .def_property_readonly("vocab_size", [](const PyModel& pm) { return pm.model->info().vocab_size; })
      .def_property_readonly("d_model", [](const PyModel& pm) { return pm.model->info().d_model; })
      .def_property_readonly("n_layer", [](const PyModel& pm) { return pm.model->info().n_layer; })
      .def_property_readonly("layers", [](const PyModel& pm) { return pm.model->info().layers; })
      .def_property_readonly("num_params", [](const PyModel& pm) { return pm.model->info().num_params; })
      .def_property_readonly("bf16_weights",
                             [](const PyModel& pm) { return pm.model->info().bf16_weights; })
      .def_property_readonly("weights_dtype",
                             [](const PyModel& pm) { return pm.model->info().weights_dtype; })
      .def_property_readonly("kv_cache", [](const PyModel& pm) { return pm.model->info().kv_cache; })
      .def_property_readonly("q8_layout", [](const PyModel& pm) { return pm.model->info().q8_layout; })
      .def_property_readonly("bf16_layout",
                             [](const PyModel& pm) { return pm.model->info().bf16_layout; })
      .def_property_readonly(
          "tokenizer", [](const PyModel& pm) { return &pm.model->tokenizer(); },
          pyb::return_value_policy::reference_internal, "The model file's tokenizer")
      .def("forward", &forward, pyb::arg("tokens"),
           "Logits at every position: int32 tokens (B, L) -> float32 (B, L, vocab_size)")
      .def(
          "session",
          [](const PyModel& pm, float temperature, int top_k, float top_p, uint64_t seed) {
            return std::make_unique<PySession>(
                Session(pm.model, sampling(temperature, top_k, top_p, seed)));
          },
          pyb::arg("temperature") = 1.0f, pyb::arg("top_k") = 0, pyb::arg("top_p") = 1.0f,
          pyb::arg("seed") = 0, "A new session (one sequence's state) with these sampling settings")
      .def(
          "load_session",
          [](const PyModel& pm, const std::string& path) {
            auto s = std::make_unique<PySession>(Session(pm.model));
            pyb::gil_scoped_release nogil;
            s->session->restore(path);
            return s;
          },
          pyb::arg("path"), "A session restored from a file written by Session.save")
      .def("__repr__", [](const PyModel& pm) {
        return "<hippo.Model " + pm.model->path() + " layers=" + pm.model->info().layers + ">";
      });
  m.def("load", &load, pyb::arg("path"), pyb::arg("mmap") = true, pyb::arg("tokenizer") = "",
        pyb::arg("kv_cache") = "auto", pyb::arg("q8_layout") = "auto",
        pyb::arg("bf16_layout") = "auto",
        "Loads a hippo .safetensors model (memory-mapped by default: bf16 weights stay bf16); "
        "kv_cache: \"fp32\", \"bf16\", \"q8\" or \"auto\" (bf16 for bf16/q8 weights); q8_layout: "
        "\"rows\" (q8 weights used where mapped), \"rows4\" (copied once into four interleaved "
        "rows, faster decoding on AVX512-VNNI) or \"auto\" (rows4 where that kernel runs); "
        "bf16_layout: \"rows\" (bf16 weights used where mapped), \"rows8\" (copied once into "
        "eight interleaved rows, faster decoding on AVX-512) or \"auto\" (rows8 where AVX-512 "
        "runs)");
}

}  // namespace hippo::py

// hippo._hippo.Generator: the token loop of `hippo generate` for one prompt, one piece per
// next() (python/hippo/__init__.py turns the bytes into text for Model.generate). Same
// tokens as the command with the same options: the prompt (with '<|endoftext|>' as eot;
// empty: eot) is prefilled, then each token is sampled with the seeded sampler from the
// logits, stopping at eot, at an id the tokenizer cannot show, or after max_tokens.
#include <cmath>

#include "common.h"

namespace hippo::py {

namespace {

struct Generator {
  std::shared_ptr<const Model> model;
  std::unique_ptr<Session> session;
  std::vector<int32_t> prompt;
  int max_tokens = 0, made = 0;
  bool started = false, done = false, pending = false;
  int32_t last = 0;  // sampled, not yet consumed (stepped at the next call)
  std::mutex mu;

  // The next piece's bytes; nullopt at the end.
  std::optional<std::string> next() {
    std::lock_guard<std::mutex> lock(mu);
    if (done) return std::nullopt;
    if (!started) {
      started = true;
      session->prefill(prompt);
    } else if (pending) {
      session->step(last);
      pending = false;
    }
    if (made >= max_tokens) {
      done = true;
      return std::nullopt;
    }
    const Tokenizer& tok = model->tokenizer();
    const int32_t t = session->sample();
    ++made;
    if (t == tok.eot_id() || t >= tok.vocab_size()) {
      done = true;
      return std::nullopt;
    }
    last = t;
    pending = true;
    return tok.decode(std::span<const int32_t>(&t, 1));
  }
};

}  // namespace

void bind_generate(pyb::module_& m) {
  pyb::class_<Generator>(m, "Generator")
      .def("__iter__", [](pyb::object self) { return self; })
      .def("__next__", [](Generator& g) {
        std::optional<std::string> piece;
        {
          pyb::gil_scoped_release nogil;
          piece = g.next();
        }
        if (!piece) throw pyb::stop_iteration();
        return pyb::bytes(*piece);
      })
      .def_property_readonly("tokens_made", [](const Generator& g) { return g.made; });
  m.def(
      "generator",
      [](const PyModel& pm, pyb::handle prompt, int max_tokens, float temperature, int top_k,
         float top_p, uint64_t seed) {
        if (max_tokens < 0) fail("generate: max_tokens must be >= 0, got " + std::to_string(max_tokens));
        if (!std::isfinite(temperature) || temperature < 0)
          fail("generate: temperature must be a finite number >= 0 (0: greedy)");
        if (top_k < 0) fail("generate: top_k must be >= 0 (0: no limit)");
        if (!std::isfinite(top_p) || top_p <= 0 || top_p > 1) fail("generate: top_p must be in (0, 1]");
        std::string text;
        if (pyb::isinstance<pyb::str>(prompt) || pyb::isinstance<pyb::bytes>(prompt))
          text = prompt.cast<std::string>();
        else
          fail("generate: the prompt must be str or bytes");
        auto g = std::make_unique<Generator>();
        g->model = pm.model;
        SamplingParams p;
        p.temperature = temperature, p.top_k = top_k, p.top_p = top_p, p.seed = seed;
        g->session = std::make_unique<Session>(pm.model, p);
        g->prompt = pm.model->tokenizer().encode_with_special(text);
        if (g->prompt.empty()) g->prompt.push_back(pm.model->tokenizer().eot_id());
        g->max_tokens = max_tokens;
        return g;
      },
      pyb::arg("model"), pyb::arg("prompt"), pyb::arg("max_tokens"), pyb::arg("temperature"),
      pyb::arg("top_k"), pyb::arg("top_p"), pyb::arg("seed"));
}

}  // namespace hippo::py

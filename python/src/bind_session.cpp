// hippo.Session: one sequence's state (prefill, step, logits, sampling, fork, save/restore).
#include "common.h"

namespace hippo::py {

namespace {

// Runs f(session) with the GIL released and the session's lock held.
template <class F>
auto locked(PySession& ps, F&& f) {
  pyb::gil_scoped_release nogil;
  std::lock_guard<std::mutex> lock(ps.mu);
  return f(*ps.session);
}

}  // namespace

void bind_session(pyb::module_& m) {
  pyb::class_<PySession>(m, "Session", "One sequence's recurrent state over a shared model")
      .def(
          "prefill",
          [](PySession& ps, pyb::handle tokens_obj) {
            pyb::array_t<int32_t> tokens = as_tokens(tokens_obj, "Session.prefill");
            if (tokens.ndim() != 1)
              fail("Session.prefill: token ids must be one sequence (1-D), got " +
                   std::to_string(tokens.ndim()) + " dimensions");
            std::span<const int32_t> t = span_of(tokens);
            return to_numpy(locked(ps, [&](Session& s) {
              auto lg = s.prefill(t);
              return std::vector<float>(lg.begin(), lg.end());
            }));
          },
          pyb::arg("tokens"), "Consumes tokens; returns the logits after the last (float32, V)")
      .def(
          "step",
          [](PySession& ps, int32_t token) {
            return to_numpy(locked(ps, [&](Session& s) {
              auto lg = s.step(token);
              return std::vector<float>(lg.begin(), lg.end());
            }));
          },
          pyb::arg("token"), "Consumes one token; returns the logits that follow it")
      .def("logits",
           [](PySession& ps) {
             std::lock_guard<std::mutex> lock(ps.mu);
             return to_numpy(ps.session->logits());
           },
           "The logits after the last token consumed (float32, V); empty before any token")
      .def("sample", [](PySession& ps) { return locked(ps, [](Session& s) { return s.sample(); }); },
           "The next token from logits() with this session's sampler")
      .def(
          "set_sampling",
          [](PySession& ps, float temperature, int top_k, float top_p, uint64_t seed) {
            SamplingParams p;
            p.temperature = temperature, p.top_k = top_k, p.top_p = top_p, p.seed = seed;
            std::lock_guard<std::mutex> lock(ps.mu);
            ps.session->set_sampling(p);
          },
          pyb::arg("temperature") = 1.0f, pyb::arg("top_k") = 0, pyb::arg("top_p") = 1.0f,
          pyb::arg("seed") = 0)
      .def_property_readonly("position",
                             [](PySession& ps) {
                               std::lock_guard<std::mutex> lock(ps.mu);
                               return ps.session->position();
                             })
      .def_property_readonly("state_bytes",
                             [](PySession& ps) {
                               std::lock_guard<std::mutex> lock(ps.mu);
                               return ps.session->state_bytes();
                             })
      .def("fork",
           [](PySession& ps) {
             return std::make_unique<PySession>(locked(ps, [](Session& s) { return s.fork(); }));
           },
           "An independent copy: same state, logits and sampler position")
      .def("reset", [](PySession& ps) { locked(ps, [](Session& s) { s.reset(); }); })
      .def(
          "save",
          [](PySession& ps, const std::string& path) {
            locked(ps, [&](Session& s) { s.save(path); });
          },
          pyb::arg("path"), "Writes the state (and last logits) to a file (atomic)")
      .def(
          "restore",
          [](PySession& ps, const std::string& path) {
            locked(ps, [&](Session& s) { s.restore(path); });
          },
          pyb::arg("path"))
      .def("save_bytes",
           [](PySession& ps) {
             std::vector<uint8_t> b = locked(ps, [](Session& s) { return s.save_bytes(); });
             return pyb::bytes(reinterpret_cast<const char*>(b.data()), b.size());
           })
      .def(
          "restore_bytes",
          [](PySession& ps, const pyb::bytes& data) {
            std::string_view v = data;
            std::span<const uint8_t> b(reinterpret_cast<const uint8_t*>(v.data()), v.size());
            locked(ps, [&](Session& s) { s.restore_bytes(b); });
          },
          pyb::arg("data"));
}

}  // namespace hippo::py

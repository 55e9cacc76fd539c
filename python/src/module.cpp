// hippo._hippo: the extension behind `import hippo` (python/hippo/__init__.py re-exports it).
#include <cstring>

#include "common.h"

namespace hippo::py {

void fail(const std::string& msg) { throw Error(msg); }

pyb::array_t<int32_t> as_tokens(pyb::handle obj, const char* what) {
  using namespace pybind11::literals;
  using Arr = pyb::array_t<int32_t, pyb::array::c_style>;
  if (pyb::isinstance<pyb::str>(obj) || pyb::isinstance<pyb::bytes>(obj))
    fail(std::string(what) + ": token ids must be integers, got a string (encode it with "
         "model.tokenizer.encode first)");
  pyb::module_ np = pyb::module_::import("numpy");
  pyb::array a;
  try {
    a = np.attr("asarray")(obj);
  } catch (const pyb::error_already_set& e) {
    fail(std::string(what) + ": token ids must be an integer array or sequence (" + e.what() + ")");
  }
  if (a.size() == 0)  // np.asarray([]) is float64: an empty sequence is refused by the engine
    return Arr(std::vector<pyb::ssize_t>(a.shape(), a.shape() + a.ndim()));
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    fail(std::string(what) + ": token ids must be integers, got dtype " +
         std::string(pyb::str(pyb::handle(a.dtype()))));
  if (pyb::isinstance<Arr>(a) && a.dtype().is(pyb::dtype::of<int32_t>()) &&
      (a.flags() & pyb::array::c_style))
    return pyb::reinterpret_borrow<Arr>(a);
  // Another integer type: the values must fit int32 before they are narrowed.
  if (a.size() > 0) {
    const auto lo = np.attr("min")(a).cast<long long>(), hi = np.attr("max")(a).cast<long long>();
    if (lo < INT32_MIN || hi > INT32_MAX)
      fail(std::string(what) + ": token id " + std::to_string(lo < INT32_MIN ? lo : hi) +
           " does not fit int32");
  }
  return pyb::reinterpret_steal<Arr>(
      np.attr("ascontiguousarray")(a, "dtype"_a = np.attr("int32")).release());
}

pyb::array_t<float> to_numpy(std::span<const float> v) {
  pyb::array_t<float> out(static_cast<pyb::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(float));
  return out;
}

}  // namespace hippo::py

PYBIND11_MODULE(_hippo, m) {
  namespace pyb = pybind11;
  using namespace hippo::py;
  m.doc() = "hippo: H3 state-space language models on the CPU (C++ engine bindings)";
  pyb::register_exception<hippo::Error>(m, "Error", PyExc_RuntimeError);
  m.def("version", &hippo::version, "The engine's version string");
  m.def("set_num_threads", &hippo::set_num_threads, pyb::arg("n"),
        "Threads of every parallel kernel (one process-wide setting); n <= 0: all cores");
  m.def("num_threads", &hippo::num_threads);
  m.def("cpu_features", &hippo::cpu_features,
        "The CPU's features and the instruction-set level the kernels use");
  bind_tokenizer(m);
  bind_model(m);
  bind_session(m);
  bind_generate(m);
  bind_ops(m);
}

// The kernels behind hippo.ops (python/hippo/ops.py wraps them as torch.autograd.Functions):
// numpy arrays in, new numpy arrays out. float32 runs hippo's FlashConv (include/hippo/ops.hpp);
// float64 the direct double path (ops_f64.h). Arrays must be C-contiguous and all of one dtype;
// ops.py makes torch tensors so (without a copy when they already are).
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "common.h"
#include "hippo/ops.hpp"
#include "ops_f64.h"

namespace hippo::py {

namespace {

using Shape = std::vector<pyb::ssize_t>;

std::string shape_str(const pyb::array& a) {
  std::string s = "(";
  for (pyb::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// The dtype every argument shares: float32 or float64.
bool is_f64(const char* op, const std::vector<std::pair<const char*, const pyb::array*>>& args) {
  const pyb::dtype dt = args[0].second->dtype();
  const bool f32 = dt.is(pyb::dtype::of<float>()), f64 = dt.is(pyb::dtype::of<double>());
  if (!f32 && !f64)
    fail(std::string(op) + ": " + args[0].first + " must be float32 or float64, got " +
         std::string(pyb::str(pyb::handle(dt))));
  for (const auto& [name, a] : args) {
    if (!a->dtype().is(dt))
      fail(std::string(op) + ": " + name + " is " + std::string(pyb::str(pyb::handle(a->dtype()))) + " but " +
           args[0].first + " is " + std::string(pyb::str(pyb::handle(dt))) + " (all arguments share a dtype)");
    if (!(a->flags() & pyb::array::c_style))
      fail(std::string(op) + ": " + name + " must be C-contiguous");
  }
  return f64;
}

void check_shape(const char* op, const char* name, const pyb::array& a, const Shape& want,
                 const char* meaning) {
  bool ok = a.ndim() == static_cast<pyb::ssize_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(i) == want[i];
  if (!ok) fail(std::string(op) + ": " + name + " must be " + meaning + ", got shape " + shape_str(a));
}

// (B, H, L) of the activation `x`, checked to be positive and within int.
Shape activation_shape(const char* op, const char* name, const pyb::array& x) {
  if (x.ndim() != 3) fail(std::string(op) + ": " + name + " must be (B, H, L), got shape " + shape_str(x));
  for (int i = 0; i < 3; ++i)
    if (x.shape(i) < 1 || x.shape(i) > INT32_MAX)
      fail(std::string(op) + ": " + name + " shape " + shape_str(x) + " has an empty or too large dimension");
  return {x.shape(0), x.shape(1), x.shape(2)};
}

// A new uninitialised C-contiguous array of proto's dtype whose data is 64-byte aligned. The
// kernels write outputs far larger than the caches with non-temporal stores, which need every
// row aligned to the vector (FusedOps::stream_outputs in src/kernels/flashconv/fc_engine.h);
// numpy allocates with malloc, 16-byte aligned for large arrays, so with numpy's own arrays
// whether a call streamed its output depended on where malloc happened to put it (in
// python/bench/h3_conv.py's loop 3 of 6 forward outputs were not 64-byte aligned; writing y with
// normal stores, which read each line first, measured about 5% slower at (8, 768, 1024)).
pyb::array like(const pyb::array& proto, const Shape& shape) {
  // A view into a numpy array 64 bytes longer, starting at its first aligned byte: the memory
  // still comes from numpy's allocator (malloc), which reuses a freed block of the same size
  // without new page faults (std::aligned_alloc, tried, got fresh pages on every call: 6,144
  // page faults per (8, 768, 1024) output, ten times the kernel's time).
  size_t n = 1;
  for (pyb::ssize_t d : shape) n *= static_cast<size_t>(d);
  const auto item = static_cast<size_t>(proto.itemsize());
  pyb::array raw(proto.dtype(), Shape{static_cast<pyb::ssize_t>(n + 64 / item)});
  char* p = static_cast<char*>(raw.mutable_data());
  const size_t skip = (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;  // a multiple of item
  return pyb::array(proto.dtype(), shape, {}, p + skip, raw);
}

template <class T>
const T* in(const pyb::array& a) { return static_cast<const T*>(a.data()); }
template <class T>
T* out(pyb::array& a) { return static_cast<T*>(a.mutable_data()); }

pyb::array fftconv_fwd(const pyb::array& u, const pyb::array& k, const pyb::array& D) {
  const char* op = "hippo.ops.fftconv";
  const Shape s = activation_shape(op, "u", u);
  check_shape(op, "k", k, {s[1], s[2]}, "(H, L) like u (B, H, L)");
  check_shape(op, "D", D, {s[1]}, "(H,)");
  const bool f64 = is_f64(op, {{"u", &u}, {"k", &k}, {"D", &D}});
  pyb::array y = like(u, s);
  const int B = static_cast<int>(s[0]), H = static_cast<int>(s[1]), L = static_cast<int>(s[2]);
  pyb::gil_scoped_release nogil;
  if (f64) fftconv_forward_f64(in<double>(u), in<double>(k), in<double>(D), out<double>(y), B, H, L);
  else ops::fftconv_forward(in<float>(u), in<float>(k), in<float>(D), out<float>(y), B, H, L);
  return y;
}

std::tuple<pyb::array, pyb::array, pyb::array> fftconv_bwd(const pyb::array& u, const pyb::array& k,
                                                           const pyb::array& D, const pyb::array& dy) {
  const char* op = "hippo.ops.fftconv backward";
  const Shape s = activation_shape(op, "u", u);
  check_shape(op, "k", k, {s[1], s[2]}, "(H, L) like u (B, H, L)");
  check_shape(op, "D", D, {s[1]}, "(H,)");
  check_shape(op, "dy", dy, s, "shaped like u");
  const bool f64 = is_f64(op, {{"u", &u}, {"k", &k}, {"D", &D}, {"dy", &dy}});
  pyb::array du = like(u, s), dk = like(u, {s[1], s[2]}), dD = like(u, {s[1]});
  const int B = static_cast<int>(s[0]), H = static_cast<int>(s[1]), L = static_cast<int>(s[2]);
  {
    pyb::gil_scoped_release nogil;
    if (f64)
      fftconv_backward_f64(in<double>(u), in<double>(k), in<double>(D), in<double>(dy),
                           out<double>(du), out<double>(dk), out<double>(dD), B, H, L);
    else
      ops::fftconv_backward(in<float>(u), in<float>(k), in<float>(D), in<float>(dy), out<float>(du),
                            out<float>(dk), out<float>(dD), B, H, L);
  }
  return {du, dk, dD};
}

void check_h3(const char* op, const pyb::array& q, const pyb::array& k, const pyb::array& v,
              const pyb::array& K, const pyb::array& D, const Shape& s) {
  check_shape(op, "k", k, s, "shaped like q (B, H, L)");
  check_shape(op, "v", v, s, "shaped like q (B, H, L)");
  check_shape(op, "ssm_kernel", K, {s[1], s[2]}, "(H, L) like q (B, H, L)");
  check_shape(op, "D", D, {s[1]}, "(H,)");
}

pyb::array h3_fwd(const pyb::array& q, const pyb::array& k, const pyb::array& v,
                  const pyb::array& K, const pyb::array& D) {
  const char* op = "hippo.ops.h3_conv";
  const Shape s = activation_shape(op, "q", q);
  check_h3(op, q, k, v, K, D, s);
  const bool f64 = is_f64(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"ssm_kernel", &K}, {"D", &D}});
  pyb::array y = like(q, s);
  const int B = static_cast<int>(s[0]), H = static_cast<int>(s[1]), L = static_cast<int>(s[2]);
  pyb::gil_scoped_release nogil;
  if (f64)
    h3_conv_forward_f64(in<double>(q), in<double>(k), in<double>(v), in<double>(K), in<double>(D),
                        out<double>(y), B, H, L);
  else
    ops::h3_conv_forward(in<float>(q), in<float>(k), in<float>(v), in<float>(K), in<float>(D),
                         out<float>(y), B, H, L);
  return y;
}

std::vector<pyb::array> h3_bwd(const pyb::array& q, const pyb::array& k, const pyb::array& v,
                               const pyb::array& K, const pyb::array& D, const pyb::array& dy) {
  const char* op = "hippo.ops.h3_conv backward";
  const Shape s = activation_shape(op, "q", q);
  check_h3(op, q, k, v, K, D, s);
  check_shape(op, "dy", dy, s, "shaped like q");
  const bool f64 = is_f64(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"ssm_kernel", &K}, {"D", &D}, {"dy", &dy}});
  pyb::array dq = like(q, s), dk = like(q, s), dv = like(q, s), dK = like(q, {s[1], s[2]}),
             dD = like(q, {s[1]});
  const int B = static_cast<int>(s[0]), H = static_cast<int>(s[1]), L = static_cast<int>(s[2]);
  {
    pyb::gil_scoped_release nogil;
    if (f64)
      h3_conv_backward_f64(in<double>(q), in<double>(k), in<double>(v), in<double>(K),
                           in<double>(D), in<double>(dy), out<double>(dq), out<double>(dk),
                           out<double>(dv), out<double>(dK), out<double>(dD), B, H, L);
    else
      ops::h3_conv_backward(in<float>(q), in<float>(k), in<float>(v), in<float>(K), in<float>(D),
                            in<float>(dy), out<float>(dq), out<float>(dk), out<float>(dv),
                            out<float>(dK), out<float>(dD), B, H, L);
  }
  return {dq, dk, dv, dK, dD};
}

}  // namespace

void bind_ops(pyb::module_& m) {
  // pyb::array arguments without conversion: a list or a wrong dtype is refused by the checks
  // above (noconvert keeps pybind11 from silently casting).
  m.def("fftconv_fwd", &fftconv_fwd, pyb::arg("u").noconvert(), pyb::arg("k").noconvert(),
        pyb::arg("D").noconvert());
  m.def("fftconv_bwd", &fftconv_bwd, pyb::arg("u").noconvert(), pyb::arg("k").noconvert(),
        pyb::arg("D").noconvert(), pyb::arg("dy").noconvert());
  m.def("h3_conv_fwd", &h3_fwd, pyb::arg("q").noconvert(), pyb::arg("k").noconvert(),
        pyb::arg("v").noconvert(), pyb::arg("ssm_kernel").noconvert(), pyb::arg("D").noconvert());
  m.def("h3_conv_bwd", &h3_bwd, pyb::arg("q").noconvert(), pyb::arg("k").noconvert(),
        pyb::arg("v").noconvert(), pyb::arg("ssm_kernel").noconvert(), pyb::arg("D").noconvert(),
        pyb::arg("dy").noconvert());
}

}  // namespace hippo::py

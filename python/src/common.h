// Shared by the binding files of hippo._hippo: the model and session handles Python holds,
// and the conversion of token arguments to int32 without a copy where none is needed.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "hippo/hippo.hpp"

namespace hippo::py {

namespace pyb = pybind11;

// hippo::Error with a message; raised in Python as hippo.Error.
[[noreturn]] void fail(const std::string& msg);

// The model Python sees: the shared, immutable hippo::Model.
struct PyModel {
  std::shared_ptr<const Model> model;
};

// A Session guarded by a mutex: a Session is for one thread at a time, and its methods run
// with the GIL released, so two Python threads sharing one session take turns.
struct PySession {
  std::unique_ptr<Session> session;
  std::mutex mu;
  explicit PySession(Session s) : session(std::make_unique<Session>(std::move(s))) {}
};

// Token ids from a Python object: an int32 C-contiguous array is used in place; any other
// integer array or sequence is converted (each id range-checked against int32). Floats,
// bools, strings and ragged input are refused with a message naming `what`.
pyb::array_t<int32_t> as_tokens(pyb::handle obj, const char* what);

template <class T>
std::span<const T> span_of(const pyb::array_t<T>& a) {
  return {a.data(), static_cast<size_t>(a.size())};
}

// A copy of float values as a new 1-D numpy array.
pyb::array_t<float> to_numpy(std::span<const float> v);

void bind_model(pyb::module_& m);
void bind_session(pyb::module_& m);
void bind_tokenizer(pyb::module_& m);
void bind_generate(pyb::module_& m);
void bind_ops(pyb::module_& m);

}  // namespace hippo::py

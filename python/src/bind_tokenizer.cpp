// hippo.Tokenizer: text (str, UTF-8 encoded, or bytes) to token ids and back.
#include <pybind11/stl.h>

#include "common.h"

namespace hippo::py {

namespace {

std::string text_bytes(pyb::handle text) {
  if (pyb::isinstance<pyb::bytes>(text)) return text.cast<std::string>();
  if (pyb::isinstance<pyb::str>(text)) return text.cast<std::string>();  // UTF-8
  fail("Tokenizer.encode: text must be str or bytes, got " +
       std::string(pyb::str(pyb::type::of(text).attr("__name__"))));
}

std::string decode_bytes(const Tokenizer& t, pyb::handle ids_obj) {
  pyb::array_t<int32_t> ids = as_tokens(ids_obj, "Tokenizer.decode");
  if (ids.ndim() > 1) fail("Tokenizer.decode: token ids must be 1-D");
  return t.decode(span_of(ids));
}

}  // namespace

void bind_tokenizer(pyb::module_& m) {
  pyb::class_<Tokenizer>(m, "Tokenizer")
      .def(
          "encode",
          [](const Tokenizer& t, pyb::handle text, bool special) {
            const std::string s = text_bytes(text);
            return special ? t.encode_with_special(s) : t.encode(s);
          },
          pyb::arg("text"), pyb::arg("special") = false,
          "Token ids (list of int). special=True: '<|endoftext|>' becomes eot_id")
      .def(
          "decode",
          [](const Tokenizer& t, pyb::handle ids) {
            const std::string b = decode_bytes(t, ids);
            // A token may end inside a UTF-8 character: undecodable bytes become U+FFFD.
            return pyb::reinterpret_steal<pyb::str>(
                PyUnicode_DecodeUTF8(b.data(), static_cast<Py_ssize_t>(b.size()), "replace"));
          },
          pyb::arg("ids"), "Text of the ids (str; invalid UTF-8 replaced by U+FFFD)")
      .def(
          "decode_bytes",
          [](const Tokenizer& t, pyb::handle ids) { return pyb::bytes(decode_bytes(t, ids)); },
          pyb::arg("ids"), "The bytes of the ids")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("eot_id", &Tokenizer::eot_id)
      .def_property_readonly("id", &Tokenizer::id);
  m.def("load_tokenizer", &load_tokenizer, pyb::arg("spec"),
        "A tokenizer by name: 'byte' or 'gpt2:<dir>'");
}

}  // namespace hippo::py

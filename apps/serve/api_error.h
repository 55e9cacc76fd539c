// Errors the server answers with: an HTTP status and an OpenAI error object
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// Request parsing throws ApiError; the routes turn it (and any other exception) into a reply.
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace hippo::serve {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string type, const std::string& message, std::string param = {},
           std::string code = {})
      : std::runtime_error(message), status(status), type(std::move(type)),
        param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type;   // invalid_request_error, authentication_error, not_found_error, ...
  std::string param;  // the request field at fault, if any
  std::string code;
};

// 400 invalid_request_error naming the field.
inline ApiError bad_request(const std::string& param, const std::string& message) {
  return ApiError(400, "invalid_request_error", message, param);
}

inline nlohmann::json error_body(int status, const std::string& type, const std::string& message,
                                 const std::string& param = {}, const std::string& code = {}) {
  nlohmann::json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  e["code"] = code.empty() ? nlohmann::json(status) : nlohmann::json(code);
  return {{"error", e}};
}

inline nlohmann::json error_body(const ApiError& e) {
  return error_body(e.status, e.type, e.what(), e.param, e.code);
}

}  // namespace hippo::serve

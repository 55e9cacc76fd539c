#include "apps/serve/chat_template.h"

namespace hippo::serve {

std::string apply_chat_template(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const auto& m : messages) {
    const std::string role = m.role == "system" ? "System" : m.role == "assistant" ? "Assistant" : "User";
    out += role + ": " + m.content + "\n";
  }
  out += "Assistant:";
  return out;
}

}  // namespace hippo::serve

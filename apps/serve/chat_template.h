// The chat template for base models (which have none of their own): a plain transcript.
//
//   System: <system message>\n
//   User: <user message>\n
//   Assistant: <assistant message>\n
//   ...
//   Assistant:
//
// Each message is one "Role: content" line (content as given, newlines kept), and the prompt
// ends with "Assistant:" for the model to continue. Generation stops at end of text or at
// "\nUser:" (the model starting the next turn itself), besides the request's own stop strings.
#pragma once
#include <string>
#include <vector>

namespace hippo::serve {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

inline constexpr const char* kChatStop = "\nUser:";

std::string apply_chat_template(const std::vector<ChatMessage>& messages);

}  // namespace hippo::serve

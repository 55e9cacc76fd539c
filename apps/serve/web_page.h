// The page at GET /: a prompt, sampling parameters, the streamed output and tokens/s. Served
// from the binary; it loads nothing else (no scripts, styles or fonts from elsewhere).
#pragma once

namespace hippo::serve {

extern const char* const kWebPage;

}  // namespace hippo::serve

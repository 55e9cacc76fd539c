#include "apps/commands.h"

namespace hippo::cli {

void add_train(CLI::App& app, std::function<int()>& run) {
  (void)app;
  (void)run;
}

}  // namespace hippo::cli

#include "apps/serve/state_store.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hippo::serve {

namespace fs = std::filesystem;

bool valid_session_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

StateStore::StateStore(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw Error("--state-dir " + dir_ + ": cannot create the folder");
}

namespace {

std::string temp_name(const fs::path& final_path) {
  static std::atomic<unsigned> n{0};
  return final_path.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n++);
}

}  // namespace

void StateStore::save(const std::string& id, const std::vector<int32_t>& tokens,
                      const Session& session) const {
  if (!valid_session_id(id)) throw Error("session id \"" + id + "\" is not 1-64 of [A-Za-z0-9_-]");
  const fs::path state = fs::path(dir_) / (id + ".state"), toks = fs::path(dir_) / (id + ".tokens");
  // Tokens first, then the state: a reader goes by the state, and checks the two agree in length.
  const std::string tt = temp_name(toks);
  {
    std::ofstream f(tt, std::ios::binary | std::ios::trunc);
    for (int32_t t : tokens) f << t << '\n';
    f.flush();
    if (!f) throw Error(tt + ": write failed");
  }
  const std::string ts = temp_name(state);
  session.save(ts);
  fs::rename(tt, toks);
  fs::rename(ts, state);
}

std::optional<std::pair<std::vector<int32_t>, Session>> StateStore::load(
    const std::string& id, const std::shared_ptr<const Model>& model) const {
  if (!enabled() || !valid_session_id(id)) return std::nullopt;
  const fs::path state = fs::path(dir_) / (id + ".state"), toks = fs::path(dir_) / (id + ".tokens");
  if (!fs::exists(state) || !fs::exists(toks)) return std::nullopt;
  std::vector<int32_t> tokens;
  {
    std::ifstream f(toks);
    int64_t t;
    while (f >> t) {
      if (t < 0 || t >= model->info().vocab_size) throw Error(toks.string() + ": token id out of range");
      tokens.push_back(static_cast<int32_t>(t));
    }
    if (!f.eof()) throw Error(toks.string() + ": not a list of token ids");
  }
  Session s(model);
  s.restore(state.string());
  if (s.position() != static_cast<int64_t>(tokens.size()))
    throw Error(state.string() + ": the state holds " + std::to_string(s.position()) +
                " tokens but " + toks.string() + " lists " + std::to_string(tokens.size()));
  return std::make_pair(std::move(tokens), std::move(s));
}

}  // namespace hippo::serve

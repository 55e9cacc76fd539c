// Named conversation states on disk (--state-dir): DIR/<id>.state is the session's state
// (Session::save: hippo-state-v2, checksummed, tied to the model) and DIR/<id>.tokens the token
// ids it has consumed, so a later request (also after a restart) whose prompt begins with them
// continues from the state. Ids are 1-64 characters of [A-Za-z0-9_-] (no path can be named);
// both files are written to a temporary name and renamed into place.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hippo/hippo.hpp"

namespace hippo::serve {

// Whether `id` may name a saved session.
bool valid_session_id(const std::string& id);

class StateStore {
 public:
  explicit StateStore(std::string dir);  // creates dir; empty: saving is off
  bool enabled() const { return !dir_.empty(); }

  void save(const std::string& id, const std::vector<int32_t>& tokens, const Session& session) const;
  // The saved tokens and a session restored from the state (into a session of `model`), or
  // nothing when no state has this id. A damaged or foreign state is a hippo::Error.
  std::optional<std::pair<std::vector<int32_t>, Session>> load(
      const std::string& id, const std::shared_ptr<const Model>& model) const;

 private:
  std::string dir_;
};

}  // namespace hippo::serve

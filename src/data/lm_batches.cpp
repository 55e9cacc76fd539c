#include "data/lm_batches.h"

#include "core/error.h"
#include "core/rng.h"

namespace hippo {

std::pair<int64_t, int64_t> lm_part_range(int64_t n, int part, int parts, int L) {
  HIPPO_CHECK(parts >= 1 && part >= 0 && part < parts, "lm_part_range: part ", part, " of ", parts);
  if (n / parts <= L + 1) return {0, n};  // parts too short: every micro-batch draws from all
  // n * part / parts without overflow for n < 2^63 / parts
  const auto at = [&](int p) { return n / parts * p + n % parts * p / parts; };
  return {at(part), at(part + 1)};
}

void lm_random_batch(const TokenCache& tokens, uint64_t seed, int64_t index, int B, int L, Batch& out,
                     int part, int parts) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  HIPPO_CHECK(n > L + 1, "corpus split has ", n, " tokens, too few for windows of ", L + 1);
  const auto [lo, hi] = lm_part_range(n, part, parts, L);
  out.B = B;
  out.L = L;
  out.tokens.resize(static_cast<size_t>(B) * L);
  out.targets.resize(out.tokens.size());
  Rng rng(seed * 0x9e3779b97f4a7c15ULL ^ (static_cast<uint64_t>(index) + 1) * 0xbf58476d1ce4e5b9ULL);
  std::vector<int32_t> w(L + 1);
  for (int b = 0; b < B; ++b) {
    const int64_t start = lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo - L)));
    tokens.read(static_cast<size_t>(start), static_cast<size_t>(L + 1), w.data());
    for (int t = 0; t < L; ++t) {
      out.tokens[static_cast<size_t>(b) * L + t] = w[t];
      out.targets[static_cast<size_t>(b) * L + t] = w[t + 1];
    }
  }
}

int64_t lm_eval_windows(const TokenCache& tokens, int L) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  return n < 2 ? 0 : (n - 1 + L - 1) / L;
}

void lm_eval_batch(const TokenCache& tokens, int L, int64_t first, int B, Batch& out) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  out.B = B;
  out.L = L;
  out.tokens.assign(static_cast<size_t>(B) * L, 0);
  out.targets.assign(out.tokens.size(), -1);
  std::vector<int32_t> w(L + 1);
  for (int b = 0; b < B; ++b) {
    const int64_t start = (first + b) * L;
    if (start + 1 >= n) break;
    const int64_t len = std::min<int64_t>(L + 1, n - start);
    tokens.read(static_cast<size_t>(start), static_cast<size_t>(len), w.data());
    for (int64_t t = 0; t + 1 < len; ++t) {
      out.tokens[static_cast<size_t>(b) * L + t] = w[t];
      out.targets[static_cast<size_t>(b) * L + t] = w[t + 1];
    }
  }
}

}  // namespace hippo

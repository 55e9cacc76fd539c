#include "nn/attention.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/bf16.h"
#include "kernels/gemm.h"
#include "kernels/kv_bf16.h"
#include "kernels/kv_q8.h"
#include "kernels/parallel_work.h"
#include "kernels/softmax.h"

namespace hippo {

Attention::Attention(int d, int n_heads, int rotary_dim)
    : Wqkv(d, 3 * d), out_proj(d, d), d_(d), heads_(n_heads), rot_(rotary_dim) {
  HIPPO_CHECK(d > 0, "Attention: width d must be positive, got ", d);
  HIPPO_CHECK(n_heads > 0 && d % n_heads == 0, "Attention: n_heads=", n_heads,
              " must be positive and divide d=", d);
  dh_ = d / n_heads;
  HIPPO_CHECK(rotary_dim >= 0 && rotary_dim % 2 == 0 && rotary_dim <= dh_,
              "Attention: rotary_dim=", rotary_dim, " must be even and in [0, head_dim=", dh_, "]");
  scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh_)));
  // GPT-NeoX: inv_freq[i] = base^(-2i / rotary_dim), base 10000.
  for (int i = 0; i < rot_ / 2; ++i)
    inv_freq_.push_back(std::pow(10000.0, -2.0 * i / static_cast<double>(rot_)));
}

void Attention::collect_params(const std::string& prefix, ParamList& out) {
  Wqkv.collect_params(prefix + "Wqkv.", out);
  out_proj.collect_params(prefix + "out_proj.", out);
}

void Attention::init(Rng& rng, int n_layer, float std) {
  HIPPO_CHECK(n_layer > 0, "Attention: n_layer must be positive, got ", n_layer);
  Wqkv.init(rng, std);
  out_proj.init(rng, static_cast<float>(std / std::sqrt(2.0 * n_layer)));
}

void Attention::rotary_angles(int64_t t, float* c, float* s) const {
  for (int i = 0; i < rot_ / 2; ++i) {
    const double a = static_cast<double>(t) * inv_freq_[i];
    c[i] = static_cast<float>(std::cos(a));
    s[i] = static_cast<float>(std::sin(a));
  }
}

// Non-interleaved (rotate_half): pairs are (i, i + rot/2).
void Attention::rotate(float* v, const float* c, const float* s, bool inverse) const {
  const int h = rot_ / 2;
  for (int i = 0; i < h; ++i) {
    const float a = v[i], b = v[i + h], si = inverse ? -s[i] : s[i];
    v[i] = a * c[i] - b * si;
    v[i + h] = b * c[i] + a * si;
  }
}

void Attention::rotate_qk(float* qkv, int B, int L, bool inverse, Buffer& table_buf,
                          int64_t pos0) const {
  const int h = rot_ / 2;
  float* table = table_buf.get(static_cast<size_t>(L) * 2 * h);
  for (int t = 0; t < L; ++t) rotary_angles(pos0 + t, table + t * 2 * h, table + t * 2 * h + h);
  const int64_t rows = static_cast<int64_t>(B) * L;
#pragma omp parallel for schedule(static) if (worth_parallel(rows * d_))
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = table + (r % L) * 2 * h;
    float* row = qkv + r * 3 * d_;
    for (int hd = 0; hd < heads_; ++hd) {
      rotate(row + hd * dh_, c, c + h, inverse);
      rotate(row + d_ + hd * dh_, c, c + h, inverse);
    }
  }
}

// Forking threads costs more than tiny heads take (and far more on a loaded machine).
bool Attention::parallel_worthwhile(int B, int L) const {
  return static_cast<int64_t>(B) * heads_ * L * L * dh_ > (int64_t{1} << 16);
}

void Attention::forward(const float* x, float* y, int B, int L) {
  HIPPO_CHECK(B > 0 && L > 0, "Attention: forward needs B > 0 and L > 0, got B=", B, " L=", L);
  B_ = B;
  L_ = L;
  const int64_t rows = static_cast<int64_t>(B) * L;
  float* xs = x_.get(rows * d_);
  std::memcpy(xs, x, sizeof(float) * rows * d_);
  float* probs = probs_.get(static_cast<size_t>(B) * heads_ * L * L);
  Acts a{qkv_, ctx_, block_, rot_table_};
  run(xs, y, B, L, probs, a);
}

// Causal attention in blocks of kRowBlock query rows: block [i0, i1) only meets keys [0, i1),
// which skips most of the masked half of QK^T and PV. Training keeps every probability row
// (B*heads*L*L floats) for backward; inference needs only a block per thread.
void Attention::run(const float* x, float* y, int B, int L, float* probs, Acts& a) const {
  const bool keep = probs != nullptr;
  const int64_t rows = static_cast<int64_t>(B) * L, d3 = 3 * d_, LL = static_cast<int64_t>(L) * L;
  float* qkv = a.qkv.get(rows * d3);
  Wqkv.forward(x, qkv, rows);
  if (rot_ > 0) rotate_qk(qkv, B, L, false, a.rot_table);
  float* scratch =
      keep ? nullptr : a.block.get(static_cast<size_t>(omp_get_max_threads()) * kRowBlock * L);
  float* ctx = a.ctx.get(rows * d_);
  // One (batch, head) per iteration; the GEMMs inside run single-threaded.
#pragma omp parallel for schedule(dynamic) if (parallel_worthwhile(B, L))
  for (int64_t bh = 0; bh < static_cast<int64_t>(B) * heads_; ++bh) {
    const int64_t b = bh / heads_, h = bh % heads_;
    const float* Q = qkv + b * L * d3 + h * dh_;
    const float* K = Q + d_;
    const float* V = Q + 2 * d_;
    float* O = ctx + b * L * d_ + h * dh_;
    for (int i0 = 0; i0 < L; i0 += kRowBlock) {
      const int i1 = std::min(L, i0 + kRowBlock), m = i1 - i0;
      // Probabilities of rows [i0, i1) over keys [0, i1); row stride L either way.
      float* P = keep ? probs + bh * LL + static_cast<int64_t>(i0) * L
                      : scratch + static_cast<int64_t>(omp_get_thread_num()) * kRowBlock * L;
      gemm(false, true, m, i1, dh_, scale_, Q + i0 * d3, d3, K, d3, 0.0f, P, L);
      for (int r = 0; r < m; ++r) {
        float* p = P + static_cast<int64_t>(r) * L;
        const int t = i0 + r;
        softmax_row(p, p, t + 1);
        std::fill(p + t + 1, p + i1, 0.0f);
      }
      gemm(false, false, m, dh_, i1, 1.0f, P, L, V, d3, 0.0f, O + i0 * d_, d_);
    }
  }
  out_proj.forward(ctx, y, rows);
}

void Attention::backward(const float* dy, float* dx) {
  HIPPO_CHECK(B_ > 0, "Attention: backward called without a training forward before it");
  const int B = B_, L = L_;
  const int64_t rows = static_cast<int64_t>(B) * L, d3 = 3 * d_, LL = static_cast<int64_t>(L) * L;
  float* dctx = dctx_.get(rows * d_);
  out_proj.backward(ctx_.data(), dy, dctx, rows);
  float* dqkv = dqkv_.get(rows * d3);
  const float* qkv = qkv_.data();
  const float* probs = probs_.data();
  float* scratch = block_.get(static_cast<size_t>(omp_get_max_threads()) * kRowBlock * L);
#pragma omp parallel for schedule(dynamic) if (parallel_worthwhile(B, L))
  for (int64_t bh = 0; bh < static_cast<int64_t>(B) * heads_; ++bh) {
    const int64_t b = bh / heads_, h = bh % heads_;
    const int64_t off = b * L * d3 + h * dh_;
    const float *Q = qkv + off, *K = Q + d_, *V = Q + 2 * d_;
    float *dQ = dqkv + off, *dK = dQ + d_, *dV = dQ + 2 * d_;
    const float* dO = dctx + b * L * d_ + h * dh_;
    float* dP = scratch + static_cast<int64_t>(omp_get_thread_num()) * kRowBlock * L;
    // dK and dV gather contributions from every later row block.
    for (int t = 0; t < L; ++t) {
      std::fill(dK + t * d3, dK + t * d3 + dh_, 0.0f);
      std::fill(dV + t * d3, dV + t * d3 + dh_, 0.0f);
    }
    for (int i0 = 0; i0 < L; i0 += kRowBlock) {
      const int i1 = std::min(L, i0 + kRowBlock), m = i1 - i0;
      const float* P = probs + bh * LL + static_cast<int64_t>(i0) * L;
      const float* dOb = dO + i0 * d_;
      gemm(false, true, m, i1, dh_, 1.0f, dOb, d_, V, d3, 0.0f, dP, L);  // dP = dO V^T
      gemm(true, false, i1, dh_, m, 1.0f, P, L, dOb, d_, 1.0f, dV, d3);  // dV += P^T dO
      for (int r = 0; r < m; ++r) {
        float* g = dP + static_cast<int64_t>(r) * L;
        const int t = i0 + r;
        softmax_backward_row(P + static_cast<int64_t>(r) * L, g, g, t + 1);
        std::fill(g + t + 1, g + i1, 0.0f);
      }
      // dP now holds dS / scale, S = scale Q K^T.
      gemm(false, false, m, dh_, i1, scale_, dP, L, K, d3, 0.0f, dQ + i0 * d3, d3);  // dQ = dS K
      gemm(true, false, i1, dh_, m, scale_, dP, L, Q + i0 * d3, d3, 1.0f, dK, d3);  // dK += dS^T Q
    }
  }
  if (rot_ > 0) rotate_qk(dqkv, B, L, true, rot_table_);
  Wqkv.backward(x_.data(), dqkv, dx, rows);
}

const char* kv_cache_name(KvCacheDType t) {
  return t == KvCacheDType::BF16 ? "bf16" : t == KvCacheDType::Q8 ? "q8" : "fp32";
}

void AttentionCache::grow(int heads, int dh, int64_t cap) {
  HIPPO_CHECK(cap >= capacity, "AttentionCache::grow: ", cap, " < capacity ", capacity);
  const int64_t pairs = static_cast<int64_t>(batch) * heads;
  // `row` elements per cached token.
  auto regrow = [&](auto& old, int64_t row = 0) {
    row = row > 0 ? row : dh;
    std::remove_reference_t<decltype(old)> fresh(static_cast<size_t>(pairs * cap * row));
    for (int64_t bh = 0; bh < pairs; ++bh)
      std::copy_n(old.data() + bh * capacity * row, static_cast<int64_t>(len) * row,
                  fresh.data() + bh * cap * row);
    old = std::move(fresh);
  };
  if (dtype == KvCacheDType::BF16) {
    regrow(k16);
    regrow(v16);
  } else if (dtype == KvCacheDType::Q8) {
    regrow(k8);
    regrow(v8);
    regrow(ks, 1);
    regrow(vs, 1);
  } else {
    regrow(k);
    regrow(v);
  }
  capacity = cap;
}

void AttentionCache::read_rows(bool values, int64_t bh, int dh, float* dst) const {
  const int64_t off = bh * capacity * dh, n = static_cast<int64_t>(len) * dh;
  if (dtype == KvCacheDType::BF16) {
    bf16_to_f32((values ? v16 : k16).data() + off, dst, n);
  } else if (dtype == KvCacheDType::Q8) {
    const int8_t* q = (values ? v8 : k8).data() + off;
    const float* sc = (values ? vs : ks).data() + bh * capacity;
    for (int64_t t = 0; t < len; ++t)
      for (int i = 0; i < dh; ++i) dst[t * dh + i] = sc[t] * static_cast<float>(q[t * dh + i]);
  } else {
    std::copy_n((values ? v : k).data() + off, n, dst);
  }
}

void AttentionCache::write_rows(bool values, int64_t bh, int dh, const float* src) {
  const int64_t off = bh * capacity * dh, n = static_cast<int64_t>(len) * dh;
  if (dtype == KvCacheDType::BF16) {
    f32_to_bf16(src, (values ? v16 : k16).data() + off, n);
  } else if (dtype == KvCacheDType::Q8) {
    int8_t* q = (values ? v8 : k8).data() + off;
    float* sc = (values ? vs : ks).data() + bh * capacity;
    for (int64_t t = 0; t < len; ++t) kv_q8_quantize_row(src + t * dh, dh, q + t * dh, sc + t);
  } else {
    std::copy_n(src, n, (values ? v : k).data() + off);
  }
}

void AttentionCache::read_q8_rows(bool values, int64_t bh, int dh, float* q, float* scales) const {
  HIPPO_CHECK(dtype == KvCacheDType::Q8, "AttentionCache::read_q8_rows: a ", kv_cache_name(dtype),
              " cache");
  const int8_t* src = (values ? v8 : k8).data() + bh * capacity * dh;
  if (q)
    for (int64_t i = 0; i < static_cast<int64_t>(len) * dh; ++i) q[i] = static_cast<float>(src[i]);
  if (scales) std::copy_n((values ? vs : ks).data() + bh * capacity, len, scales);
}

void AttentionCache::write_q8_rows(bool values, int64_t bh, int dh, const float* q,
                                   const float* scales) {
  HIPPO_CHECK(dtype == KvCacheDType::Q8, "AttentionCache::write_q8_rows: a ", kv_cache_name(dtype),
              " cache");
  int8_t* dst = (values ? v8 : k8).data() + bh * capacity * dh;
  for (int64_t i = 0; i < static_cast<int64_t>(len) * dh; ++i) {
    HIPPO_CHECK(q[i] >= -127.0f && q[i] <= 127.0f && q[i] == std::nearbyint(q[i]),
                "AttentionCache::write_q8_rows: value ", q[i], " is not a whole number in [-127, 127]");
    dst[i] = static_cast<int8_t>(q[i]);
  }
  std::copy_n(scales, len, (values ? vs : ks).data() + bh * capacity);
}

std::unique_ptr<MixerState> Attention::new_state(int B) const {
  HIPPO_CHECK(B > 0, "Attention: new_state needs B > 0, got ", B);
  auto st = std::make_unique<AttentionCache>();
  st->batch = B;
  st->dtype = kv_dtype_;
  return st;
}

static AttentionCache& as_cache(MixerState& state) {
  auto* c = dynamic_cast<AttentionCache*>(&state);
  HIPPO_CHECK(c != nullptr, "Attention: state was not made by an attention layer's new_state");
  return *c;
}

// Makes room for `need` tokens per sequence, keeping the cached ones.
static void reserve_cache(AttentionCache& c, int heads, int dh, int64_t need) {
  if (need <= c.capacity) return;
  c.grow(heads, dh, std::max<int64_t>({need, 2 * c.capacity, 64}));
}

// Stores one token's key and value (dh each) at row t of pair bh.
static void store_kv(AttentionCache& c, int64_t bh, int dh, int64_t t, const float* key,
                     const float* value) {
  const int64_t off = (bh * c.capacity + t) * dh;
  if (c.dtype == KvCacheDType::BF16) {
    f32_to_bf16(key, c.k16.data() + off, dh);
    f32_to_bf16(value, c.v16.data() + off, dh);
  } else if (c.dtype == KvCacheDType::Q8) {
    kv_q8_quantize_row(key, dh, c.k8.data() + off, c.ks.data() + bh * c.capacity + t);
    kv_q8_quantize_row(value, dh, c.v8.data() + off, c.vs.data() + bh * c.capacity + t);
  } else {
    std::memcpy(c.k.data() + off, key, sizeof(float) * dh);
    std::memcpy(c.v.data() + off, value, sizeof(float) * dh);
  }
}

void Attention::prefill(const float* x, float* y, int B, int L, MixerState& state,
                        Workspace& ws) const {
  AttentionCache& c = as_cache(state);
  HIPPO_CHECK(c.batch == B, "Attention: prefill with B=", B, " on a state made for B=", c.batch);
  HIPPO_CHECK(L > 0, "Attention: prefill needs L > 0, got L=", L);
  HIPPO_CHECK(static_cast<int64_t>(c.len) + L <= INT32_MAX, "Attention: ", c.len, " cached + ", L,
              " new tokens exceed the cache's limit of ", INT32_MAX);
  const int pos0 = c.len, n_all = pos0 + L;
  const int64_t rows = static_cast<int64_t>(B) * L, d3 = 3 * d_;
  float* qkv = ws.slot(0).get(rows * d3);
  Wqkv.forward(x, qkv, rows);
  if (rot_ > 0) rotate_qk(qkv, B, L, false, ws.slot(3), pos0);
  reserve_cache(c, heads_, dh_, n_all);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < heads_; ++h)
      for (int t = 0; t < L; ++t) {
        const float* row = qkv + (static_cast<int64_t>(b) * L + t) * d3 + h * dh_;
        store_kv(c, static_cast<int64_t>(b) * heads_ + h, dh_, pos0 + t, row + d_, row + 2 * d_);
      }
  c.len = n_all;
  // Causal attention over the cache in blocks of kRowBlock query rows: block [i0, i1) meets
  // keys [0, pos0 + i1), as in run(). A bf16 or q8 cache is widened per pair into fp32 scratch,
  // so that the prompt attends to the same (rounded) keys and values its decode steps will read.
  const bool bf16 = c.dtype != KvCacheDType::F32;
  const int64_t per_thread = kRowBlock * n_all + (bf16 ? 2 * static_cast<int64_t>(n_all) * dh_ : 0);
  float* scratch = ws.slot(2).get(static_cast<size_t>(omp_get_max_threads()) * per_thread);
  float* ctx = ws.slot(1).get(rows * d_);
  const bool par = static_cast<int64_t>(B) * heads_ * L * n_all * dh_ > (int64_t{1} << 16);
#pragma omp parallel for schedule(dynamic) if (par)
  for (int64_t bh = 0; bh < static_cast<int64_t>(B) * heads_; ++bh) {
    const int64_t b = bh / heads_, h = bh % heads_;
    const float* Q = qkv + b * L * d3 + h * dh_;
    float* P = scratch + static_cast<int64_t>(omp_get_thread_num()) * per_thread;
    const float* Kc;
    const float* Vc;
    if (bf16) {
      float* K32 = P + kRowBlock * n_all;
      float* V32 = K32 + static_cast<int64_t>(n_all) * dh_;
      c.read_rows(false, bh, dh_, K32);
      c.read_rows(true, bh, dh_, V32);
      Kc = K32;
      Vc = V32;
    } else {
      Kc = c.k.data() + bh * c.capacity * dh_;
      Vc = c.v.data() + bh * c.capacity * dh_;
    }
    float* O = ctx + b * L * d_ + h * dh_;
    for (int i0 = 0; i0 < L; i0 += kRowBlock) {
      const int i1 = std::min(L, i0 + kRowBlock), m = i1 - i0, keys = pos0 + i1;
      gemm(false, true, m, keys, dh_, scale_, Q + i0 * d3, d3, Kc, dh_, 0.0f, P, n_all);
      for (int r = 0; r < m; ++r) {
        float* p = P + static_cast<int64_t>(r) * n_all;
        const int t = pos0 + i0 + r;
        softmax_row(p, p, t + 1);
        std::fill(p + t + 1, p + keys, 0.0f);
      }
      gemm(false, false, m, dh_, keys, 1.0f, P, n_all, Vc, dh_, 0.0f, O + i0 * d_, d_);
    }
  }
  out_proj.forward(ctx, y, rows);
}

void Attention::attend_setup(AttentionCache& c) const {
  const int B = c.batch, pos = c.len, n = pos + 1;
  reserve_cache(c, heads_, dh_, n);
  if (rot_ > 0) {  // at this state's own position
    float* cs = c.rot.get(rot_);
    rotary_angles(pos, cs, cs + rot_ / 2);
  }
  // Sized by the cache capacity, not n, so that the buffer grows with the cache (doubling)
  // rather than on every token.
  c.scores.get(static_cast<size_t>(B) * heads_ * c.capacity);
}

void Attention::attend_pair(AttentionCache& c, float* qkv, float* ctx, int64_t bh) const {
  const int pos = c.len, n = pos + 1;
  const int64_t d3 = 3 * d_;
  const int64_t b = bh / heads_, h = bh % heads_;
  float* q = qkv + b * d3 + h * dh_;
  if (rot_ > 0) {
    const float* cs = c.rot.data();
    rotate(q, cs, cs + rot_ / 2, false);
    rotate(q + d_, cs, cs + rot_ / 2, false);
  }
  store_kv(c, bh, dh_, pos, q + d_, q + 2 * d_);
  float* s = c.scores.data() + bh * n;
  float* o = ctx + b * d_ + h * dh_;
  if (c.dtype == KvCacheDType::BF16) {
    const int64_t off = bh * c.capacity * dh_;
    kv_bf16_scores(q, c.k16.data() + off, n, dh_, scale_, s);
    softmax_row(s, s, n);
    kv_bf16_weighted_sum(s, c.v16.data() + off, n, dh_, o);
    return;
  }
  if (c.dtype == KvCacheDType::Q8) {
    const int64_t off = bh * c.capacity * dh_, soff = bh * c.capacity;
    kv_q8_scores(q, c.k8.data() + off, c.ks.data() + soff, n, dh_, scale_, s);
    softmax_row(s, s, n);
    kv_q8_weighted_sum(s, c.v8.data() + off, c.vs.data() + soff, n, dh_, o);
    return;
  }
  float* kc = c.k.data() + bh * c.capacity * dh_;
  float* vc = c.v.data() + bh * c.capacity * dh_;
  for (int j = 0; j < n; ++j) {
    const float* kj = kc + static_cast<int64_t>(j) * dh_;
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < dh_; ++i) acc += q[i] * kj[i];
    s[j] = acc * scale_;
  }
  softmax_row(s, s, n);
  std::fill(o, o + dh_, 0.0f);
  for (int j = 0; j < n; ++j) {
    const float* vj = vc + static_cast<int64_t>(j) * dh_;
    for (int i = 0; i < dh_; ++i) o[i] += s[j] * vj[i];
  }
}

void Attention::attend_step(AttentionCache& c, float* qkv, float* ctx) const {
  attend_setup(c);
  const int64_t n = c.len + 1;
  // Reads the whole cache (keys and values): split over threads only when that is long.
  const int64_t pairs = static_cast<int64_t>(c.batch) * heads_;
  parallel_range(pairs, worth_parallel_step(2 * pairs * n * dh_), [&](int64_t bh0, int64_t bh1) {
    for (int64_t bh = bh0; bh < bh1; ++bh) attend_pair(c, qkv, ctx, bh);
  });
  c.len = static_cast<int>(n);
}

void Attention::step_many(const float* x, float* y, std::span<MixerState* const> states) const {
  HIPPO_CHECK(!states.empty(), "Attention::step_many: no states");
  int64_t rows = 0;  // all states' sequences
  for (MixerState* s : states) rows += as_cache(*s).batch;
  AttentionCache& first = as_cache(*states[0]);
  float* qkv = first.qkv.get(static_cast<size_t>(rows) * 3 * d_);
  float* ctx = first.ctx.get(static_cast<size_t>(rows) * d_);
  Wqkv.forward(x, qkv, rows);
  int64_t off = 0;
  for (MixerState* s : states) {
    AttentionCache& c = as_cache(*s);
    attend_step(c, qkv + off * 3 * d_, ctx + off * d_);
    off += c.batch;
  }
  out_proj.forward(ctx, y, rows);
}

void Attention::prepare_team_step(std::span<MixerState* const> states) const {
  HIPPO_CHECK(!states.empty(), "Attention::step_team: no states");
  int64_t rows = 0;
  for (MixerState* s : states) {
    AttentionCache& c = as_cache(*s);
    attend_setup(c);
    rows += c.batch;
  }
  AttentionCache& first = as_cache(*states[0]);
  first.qkv.get(static_cast<size_t>(rows) * 3 * d_);
  first.ctx.get(static_cast<size_t>(rows) * d_);
}

// The (sequence, head) pairs of all states split over the team: a head needs its q, k and v
// from three parts of the projection, so the projection is followed by a barrier.
void Attention::step_team(const float* x, float* y, std::span<MixerState* const> states,
                          const Team& team) const {
  int64_t rows = 0, pairs = 0;
  for (MixerState* s : states) rows += static_cast<AttentionCache&>(*s).batch;
  pairs = rows * heads_;
  AttentionCache& first = static_cast<AttentionCache&>(*states[0]);
  float* qkv = first.qkv.data();
  float* ctx = first.ctx.data();
  const auto [p0, p1] = team.share(3 * static_cast<int64_t>(d_));
  Wqkv.forward_part(x, qkv, rows, p0, p1);
  team.barrier();
  // Pair g of all states: state k's pairs after those of states 0..k-1.
  const auto [g0, g1] = team.share(pairs, 1);
  int64_t first_pair = 0;
  for (MixerState* s : states) {
    AttentionCache& c = static_cast<AttentionCache&>(*s);
    const int64_t np = static_cast<int64_t>(c.batch) * heads_;
    const int64_t row0 = first_pair / heads_;
    for (int64_t g = std::max(g0, first_pair); g < std::min(g1, first_pair + np); ++g)
      attend_pair(c, qkv + row0 * 3 * d_, ctx + row0 * d_, g - first_pair);
    first_pair += np;
  }
  team.barrier();  // the output projection reads every head; no thread reads c.len any more
  if (team.t == 0)
    for (MixerState* s : states) ++static_cast<AttentionCache&>(*s).len;
  const auto [o0, o1] = team.share(d_);
  out_proj.forward_part(ctx, y, rows, o0, o1);
}

void Attention::forward_reference(const float* x, float* y, int B, int L) const {
  const int64_t rows = static_cast<int64_t>(B) * L, d3 = 3 * d_;
  const float* W = Wqkv.weight.value.data();
  const float* bias = Wqkv.bias.value.data();
  std::vector<double> qkv(rows * d3);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < d3; ++o) {
      double acc = bias[o];
      for (int i = 0; i < d_; ++i) acc += static_cast<double>(W[o * d_ + i]) * x[r * d_ + i];
      qkv[r * d3 + o] = acc;
    }
  const int hr = rot_ / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const double t = static_cast<double>(r % L);
    for (int part = 0; part < 2; ++part)  // q, then k
      for (int h = 0; h < heads_; ++h) {
        double* v = qkv.data() + r * d3 + part * d_ + h * dh_;
        for (int i = 0; i < hr; ++i) {
          const double a = t * inv_freq_[i], v1 = v[i], v2 = v[i + hr];
          v[i] = v1 * std::cos(a) - v2 * std::sin(a);
          v[i + hr] = v2 * std::cos(a) + v1 * std::sin(a);
        }
      }
  }
  std::vector<double> ctx(rows * d_, 0.0), p(L);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < heads_; ++h)
      for (int t = 0; t < L; ++t) {
        const double* q = qkv.data() + (static_cast<int64_t>(b) * L + t) * d3 + h * dh_;
        double m = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          const double* k = qkv.data() + (static_cast<int64_t>(b) * L + s) * d3 + d_ + h * dh_;
          double acc = 0;
          for (int i = 0; i < dh_; ++i) acc += q[i] * k[i];
          p[s] = acc / std::sqrt(static_cast<double>(dh_));
          m = std::max(m, p[s]);
        }
        double z = 0;
        for (int s = 0; s <= t; ++s) z += (p[s] = std::exp(p[s] - m));
        double* o = ctx.data() + (static_cast<int64_t>(b) * L + t) * d_ + h * dh_;
        for (int s = 0; s <= t; ++s) {
          const double* v = qkv.data() + (static_cast<int64_t>(b) * L + s) * d3 + 2 * d_ + h * dh_;
          for (int i = 0; i < dh_; ++i) o[i] += p[s] / z * v[i];
        }
      }
  const float* Wo = out_proj.weight.value.data();
  const float* bo = out_proj.bias.value.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int o = 0; o < d_; ++o) {
      double acc = bo[o];
      for (int i = 0; i < d_; ++i) acc += static_cast<double>(Wo[o * d_ + i]) * ctx[r * d_ + i];
      y[r * d_ + o] = static_cast<float>(acc);
    }
}

void Attention::release_activations() {
  release_buffers(x_, qkv_, probs_, ctx_, dctx_, dqkv_, block_);
}

}  // namespace hippo

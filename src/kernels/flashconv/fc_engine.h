// The fused FlashConv ops for one group of W channels (one per SIMD lane), written once for
// any vector type V. Included by fc_engine_{scalar,avx2,avx512}.cpp inside an anonymous
// namespace, after the instruction-set pragma, so each gets its own copy.
//
// Per group: the kernel spectrum (of K with D folded into K[0], since K*u + D u = (K + D
// delta)*u) is computed once and reused for every batch element; then each batch element
// is loaded (fusing k*v or q*dy into the load, transposing rows into lane layout), FFT'd,
// multiplied, inverse FFT'd and stored (fusing q* / dy* / *v / *k into the store). All of it
// stays in this thread's scratch, which is sized on first use and reused.

template <class V>
struct FusedOps {
  using R = typename V::R;
  using F = LaneFft<V>;
  using Cx = typename F::Cx;
  static constexpr int W = V::W;

  // Lane row pointers of one (batch, group): lane c reads channel min(h0 + c, H - 1) (lanes past
  // H repeat the last channel; their results are never stored).
  struct Rows {
    const float* p[W];
  };
  // Batch element b is chunk b % a.chunks of batch b / a.chunks (see Args::chunks).
  static int64_t row_offset(const Args& a, int b, int h, int64_t ld) {
    return (static_cast<int64_t>(b / a.chunks) * a.H + h) * ld +
           static_cast<int64_t>(b % a.chunks) * a.chunk_stride;
  }
  static Rows rows(const float* base, const Args& a, int b, int h0, int64_t ld) {
    Rows r;
    for (int c = 0; c < W; ++c) r.p[c] = base + row_offset(a, b, std::min(h0 + c, a.H - 1), ld);
    return r;
  }
  struct OutRows {
    float* p[W];
  };
  static OutRows out_rows(float* base, const Args& a, int b, int h0, int64_t ld) {
    OutRows r;
    for (int c = 0; c < W; ++c) r.p[c] = base + row_offset(a, b, std::min(h0 + c, a.H - 1), ld);
    return r;
  }

  // Rows of a (batch, group) are L floats apart; for power-of-two L all W rows map to the same
  // L1 sets, and transposing straight from them thrashes the cache (measured 2x slower). So
  // rows go through a staging block with a padded stride, kStage times at a time: a
  // sequential copy per row, then conflict-free transposes.
  static constexpr int kStage = 256;
  static constexpr int kStageStride = kStage + 16;
  static constexpr size_t kStageFloats = static_cast<size_t>(W) * kStageStride;

  // Fills packed z (re = even times, im = odd times) for t < L from src.row(c, t0) (W
  // consecutive values of lane c) / src.at(c, t); zero up to position N/2.
  template <class Src>
  static void load(float* zre, float* zim, int L, int N, const Src& src, float* stage) {
    const int main_end = L / (2 * W) * (2 * W);
    for (int c0 = 0; c0 < main_end; c0 += kStage) {
      const int len = std::min(kStage, main_end - c0);
      for (int c = 0; c < W; ++c)
        for (int t = 0; t < len; t += W) V::store(stage + c * kStageStride + t, src.row(c, c0 + t));
      for (int t0 = 0; t0 < len; t0 += 2 * W) {
        R a[W], b[W];
        for (int c = 0; c < W; ++c) {
          a[c] = V::load(stage + c * kStageStride + t0);
          b[c] = V::load(stage + c * kStageStride + t0 + W);
        }
        V::transpose(a);
        V::transpose(b);
        size_t j0 = static_cast<size_t>((c0 + t0) / 2);
        if constexpr (W == 1) {
          V::store(zre + j0, a[0]);
          V::store(zim + j0, b[0]);
        } else {
          for (int i = 0; i < W / 2; ++i) {  // a[i]: time t0 + i; b[i]: time t0 + W + i
            V::store(zre + (j0 + i) * W, a[2 * i]);
            V::store(zim + (j0 + i) * W, a[2 * i + 1]);
            V::store(zre + (j0 + W / 2 + i) * W, b[2 * i]);
            V::store(zim + (j0 + W / 2 + i) * W, b[2 * i + 1]);
          }
        }
      }
    }
    size_t j0 = static_cast<size_t>(main_end / 2);
    size_t half = static_cast<size_t>(N / 2);
    if (j0 < half) {
      std::memset(zre + j0 * W, 0, (half - j0) * W * sizeof(float));
      std::memset(zim + j0 * W, 0, (half - j0) * W * sizeof(float));
    }
    for (int t = main_end; t < L; ++t) {
      float* dst = (t & 1) ? zim : zre;
      const size_t pos = static_cast<size_t>(t >> 1) * W;
      for (int c = 0; c < W; ++c) dst[pos + c] = src.at(c, t);
    }
  }

  // The inverse of load for t < L: dst.row(c, t0, vector of W times) / dst.at(c, t, value),
  // called for lanes c < nvalid only.
  template <class Dst>
  static void store(const float* zre, const float* zim, int L, int nvalid, Dst&& dst,
                    float* stage) {
    const int main_end = L / (2 * W) * (2 * W);
    for (int c0 = 0; c0 < main_end; c0 += kStage) {
      const int len = std::min(kStage, main_end - c0);
      for (int t0 = 0; t0 < len; t0 += 2 * W) {
        R a[W], b[W];
        size_t j0 = static_cast<size_t>((c0 + t0) / 2);
        if constexpr (W == 1) {
          a[0] = V::load(zre + j0);
          b[0] = V::load(zim + j0);
        } else {
          for (int i = 0; i < W / 2; ++i) {
            a[2 * i] = V::load(zre + (j0 + i) * W);
            a[2 * i + 1] = V::load(zim + (j0 + i) * W);
            b[2 * i] = V::load(zre + (j0 + W / 2 + i) * W);
            b[2 * i + 1] = V::load(zim + (j0 + W / 2 + i) * W);
          }
        }
        V::transpose(a);
        V::transpose(b);
        for (int c = 0; c < W; ++c) {
          V::store(stage + c * kStageStride + t0, a[c]);
          V::store(stage + c * kStageStride + t0 + W, b[c]);
        }
      }
      for (int c = 0; c < nvalid; ++c)
        for (int t = 0; t < len; t += W) dst.row(c, c0 + t, V::load(stage + c * kStageStride + t));
    }
    for (int t = main_end; t < L; ++t) {
      const float* src = (t & 1) ? zim : zre;
      const size_t pos = static_cast<size_t>(t >> 1) * W;
      for (int c = 0; c < nvalid; ++c) dst.at(c, t, src[pos + c]);
    }
  }

  // ---- row sources and sinks (the fused elementwise products) ----
  struct Plain {
    Rows x;
    R row(int c, int t) const { return V::loadu(x.p[c] + t); }
    float at(int c, int t) const { return x.p[c][t]; }
  };
  struct Product {
    Rows x, y;
    R row(int c, int t) const { return V::mul(V::loadu(x.p[c] + t), V::loadu(y.p[c] + t)); }
    float at(int c, int t) const { return x.p[c][t] * y.p[c][t]; }
  };
  // nt: non-temporal stores (see stream_outputs).
  static void put(float* p, R v, bool nt) {
    if (nt) V::stream(p, v);
    else V::storeu(p, v);
  }
  struct Write {
    OutRows o;
    bool nt = false;
    void row(int c, int t, R v) const { put(o.p[c] + t, v, nt); }
    void at(int c, int t, float v) const { o.p[c][t] = v; }
  };
  struct WriteTimes {  // o = v * x
    OutRows o;
    Rows x;
    bool nt = false;
    void row(int c, int t, R v) const { put(o.p[c] + t, V::mul(v, V::loadu(x.p[c] + t)), nt); }
    void at(int c, int t, float v) const { o.p[c][t] = v * x.p[c][t]; }
  };
  struct WriteTimes2 {  // o1 = v * x1, o2 = v * x2
    OutRows o1, o2;
    Rows x1, x2;
    bool nt = false;
    void row(int c, int t, R v) const {
      put(o1.p[c] + t, V::mul(v, V::loadu(x1.p[c] + t)), nt);
      put(o2.p[c] + t, V::mul(v, V::loadu(x2.p[c] + t)), nt);
    }
    void at(int c, int t, float v) const {
      o1.p[c][t] = v * x1.p[c][t];
      o2.p[c][t] = v * x2.p[c][t];
    }
  };
  struct Accumulate {  // dK += v; dD += v at t = 0
    OutRows o;
    float* dD;
    int h0;
    void row(int c, int t, R v) const {
      V::storeu(o.p[c] + t, V::add(V::loadu(o.p[c] + t), v));
      if (t == 0 && dD) {
        alignas(64) float tmp[W];
        V::storeu(tmp, v);
        dD[h0 + c] += tmp[0];
      }
    }
    void at(int c, int t, float v) const {
      o.p[c][t] += v;
      if (t == 0 && dD) dD[h0 + c] += v;
    }
  };

  // ---- spectral steps over the (k, N-k) pairs ----

  // Kernel spectrum: z (FFT of K + D delta) -> g = X_K / (8N) scaled so that the product with
  // an unpacked 2X and the unnormalised inverse give the convolution exactly.
  static void kernel_spectrum(const float* zre, const float* zim, float* gre, float* gim,
                              const FftPlan& plan) {
    const R scale = V::set1(1.0f / (8.0f * static_cast<float>(plan.N)));
    F::for_pairs(plan.N, [&](int p, int q, int gq, bool write_q) {
      Cx x1, x2;
      F::unpack(F::ld(zre, zim, p), F::ld(zre, zim, q), V::set1(plan.pw_re[p]),
                V::set1(plan.pw_im[p]), x1, x2);
      F::st(gre, gim, p, {V::mul(x1.re, scale), V::mul(x1.im, scale)});
      if (write_q || p == 0) F::st(gre, gim, gq, {V::mul(x2.re, scale), V::mul(x2.im, scale)});
    });
  }

  // z <- packed(X_z * g) (conj_g: X_z * conj(g), the adjoint).
  static void apply(float* zre, float* zim, const float* gre, const float* gim,
                    const FftPlan& plan, bool conj_g) {
    PrefetchCursor* pf = t_prefetch;
    F::for_pairs(plan.N, [&](int p, int q, int gq, bool write_q) {
      if (pf) pf->step();
      R wr = V::set1(plan.pw_re[p]), wi = V::set1(plan.pw_im[p]);
      Cx x1, x2;
      F::unpack(F::ld(zre, zim, p), F::ld(zre, zim, q), wr, wi, x1, x2);
      Cx g1 = F::ld(gre, gim, p), g2 = F::ld(gre, gim, gq);
      Cx y1 = conj_g ? F::mul_conj(x1, g1) : F::mul(x1, g1);
      Cx y2 = conj_g ? F::mul_conj(x2, g2) : F::mul(x2, g2);
      Cx zp, zq;
      F::repack(y1, y2, wr, wi, zp, zq);
      F::st(zre, zim, p, zp);
      if (write_q) F::st(zre, zim, q, zq);
    });
  }

  // Backward step on the spectra of the op's input a (the convolved signal) and of the
  // gradient b at its output: b <- packed(X_b conj g); a <- packed(X_a g) if fwd_a;
  // acc += conj(X_a) X_b (the kernel gradient's spectrum, unpacked).
  static void backward_step(float* are, float* aim, float* bre, float* bim, const float* gre,
                            const float* gim, float* accre, float* accim, const FftPlan& plan,
                            bool fwd_a) {
    PrefetchCursor* pf = t_prefetch;
    F::for_pairs(plan.N, [&](int p, int q, int gq, bool write_q) {
      if (pf) pf->step();
      R wr = V::set1(plan.pw_re[p]), wi = V::set1(plan.pw_im[p]);
      Cx a1, a2, b1, b2;
      F::unpack(F::ld(are, aim, p), F::ld(are, aim, q), wr, wi, a1, a2);
      F::unpack(F::ld(bre, bim, p), F::ld(bre, bim, q), wr, wi, b1, b2);
      Cx g1 = F::ld(gre, gim, p), g2 = F::ld(gre, gim, gq);
      Cx zp, zq;
      F::repack(F::mul_conj(b1, g1), F::mul_conj(b2, g2), wr, wi, zp, zq);
      F::st(bre, bim, p, zp);
      if (write_q) F::st(bre, bim, q, zq);
      if (fwd_a) {
        F::repack(F::mul(a1, g1), F::mul(a2, g2), wr, wi, zp, zq);
        F::st(are, aim, p, zp);
        if (write_q) F::st(are, aim, q, zq);
      }
      F::st(accre, accim, p, F::add(F::ld(accre, accim, p), F::mul_conj(b1, a1)));
      if (write_q || p == 0)
        F::st(accre, accim, gq, F::add(F::ld(accre, accim, gq), F::mul_conj(b2, a2)));
    });
  }

  // acc (unpacked products of two 2X spectra) -> packed z of their correlation.
  static void finish_accumulated(const float* accre, const float* accim, float* zre, float* zim,
                                 const FftPlan& plan) {
    const R scale = V::set1(1.0f / (8.0f * static_cast<float>(plan.N)));
    F::for_pairs(plan.N, [&](int p, int q, int gq, bool write_q) {
      R wr = V::set1(plan.pw_re[p]), wi = V::set1(plan.pw_im[p]);
      Cx y1 = F::ld(accre, accim, p), y2 = F::ld(accre, accim, gq);
      y1 = {V::mul(y1.re, scale), V::mul(y1.im, scale)};
      y2 = {V::mul(y2.re, scale), V::mul(y2.im, scale)};
      Cx zp, zq;
      F::repack(y1, y2, wr, wi, zp, zq);
      F::st(zre, zim, p, zp);
      if (write_q) F::st(zre, zim, q, zq);
    });
  }

  // ---- one group ----

  struct Scratch {
    ScratchBuffer buf;
    float *gre, *gim, *z1re, *z1im, *z2re, *z2im, *accre, *accim, *stage;
    void size(int N) {
      size_t n = static_cast<size_t>(N + 1) * W;
      n = (n + 15) / 16 * 16;  // keep every array 64-byte aligned
      float* p = buf.get(8 * n + kStageFloats);
      float** arrs[8] = {&gre, &gim, &z1re, &z1im, &z2re, &z2im, &accre, &accim};
      for (int i = 0; i < 8; ++i) *arrs[i] = p + i * n;
      stage = p + 8 * n;
    }
  };

  // Outputs far larger than the caches are written with non-temporal stores: they will not
  // be read again soon, and a normal store first reads each line from memory (a fifth of the
  // H3 op's memory traffic). Needs every row start aligned to the vector.
  static constexpr int64_t kMinStreamBytes = int64_t{16} << 20;
  static int64_t activation_bytes(const Args& a) {
    return static_cast<int64_t>(a.B) * a.chunks * a.H * a.L * 4;
  }
  static bool stream_outputs(const Args& a, std::initializer_list<const float*> outs) {
    const bool enabled = tuning().stream_outputs;
    if (!enabled || W == 1 || activation_bytes(a) < kMinStreamBytes) return false;
    constexpr int64_t align = W * 4;
    if ((a.ld * 4) % align != 0 || (a.chunk_stride * 4) % align != 0) return false;
    for (const float* p : outs)
      if (reinterpret_cast<uintptr_t>(p) % align != 0) return false;
    return true;
  }

  static void run_group(const Args& a, const FftPlan& plan, int g, int b0, int b1) {
    static thread_local Scratch s;
    const int N = plan.N, L = a.L, h0 = g * W, nvalid = std::min(W, a.H - h0);
    s.size(N);

    // Kernel spectrum of K + D delta, once for all batch elements.
    {
      Rows kr;
      for (int c = 0; c < W; ++c) kr.p[c] = a.K + std::min(h0 + c, a.H - 1) * a.kld;
      load(s.z1re, s.z1im, L, N, Plain{kr}, s.stage);
      if (a.D)
        for (int c = 0; c < W; ++c) s.z1re[c] += a.D[std::min(h0 + c, a.H - 1)];
      F::forward(s.z1re, s.z1im, plan);
      kernel_spectrum(s.z1re, s.z1im, s.gre, s.gim, plan);
    }
    const size_t accn = static_cast<size_t>(N + 1) * W;
    if (a.op == Op::Bwd || a.op == Op::H3Bwd) {
      std::memset(s.accre, 0, accn * sizeof(float));
      std::memset(s.accim, 0, accn * sizeof(float));
    }

    bool nt = false;
    switch (a.op) {
      case Op::Fwd: nt = stream_outputs(a, {a.y}); break;
      case Op::H3Fwd: nt = stream_outputs(a, {a.y}); break;
      case Op::Bwd: nt = stream_outputs(a, {a.du}); break;
      case Op::H3Bwd: nt = stream_outputs(a, {a.dq, a.dk, a.dv}); break;
    }
    // Prefetching pays where the activations come from memory (the same threshold as
    // streaming the outputs); in cache it would only add instructions.
    const bool prefetch = tuning().prefetch_rows && W > 1 && activation_bytes(a) >= kMinStreamBytes;
    for (int b = b0; b < b1; ++b) {
      switch (a.op) {
        case Op::Fwd: {
          load(s.z1re, s.z1im, L, N, Plain{rows(a.u, a, b, h0, a.ld)}, s.stage);
          F::forward(s.z1re, s.z1im, plan);
          apply(s.z1re, s.z1im, s.gre, s.gim, plan, false);
          F::inverse(s.z1re, s.z1im, plan);
          store(s.z1re, s.z1im, L, nvalid, Write{out_rows(a.y, a, b, h0, a.ld), nt}, s.stage);
          break;
        }
        case Op::H3Fwd: {
          load(s.z1re, s.z1im, L, N,
               Product{rows(a.k, a, b, h0, a.ld), rows(a.v, a, b, h0, a.ld)}, s.stage);
          // While the FFTs run: q of this element (the store reads it next), then k and v of
          // the next element (its load); see PrefetchCursor.
          PrefetchCursor pf;
          if (prefetch) {
            const Rows q = rows(a.q, a, b, h0, a.ld);
            for (int c = 0; c < nvalid; ++c) pf.add(q.p[c]);
            if (b + 1 < b1) {
              const Rows k = rows(a.k, a, b + 1, h0, a.ld), v = rows(a.v, a, b + 1, h0, a.ld);
              for (int c = 0; c < nvalid; ++c) pf.add(k.p[c]);
              for (int c = 0; c < nvalid; ++c) pf.add(v.p[c]);
            }
            pf.row_bytes = L * 4;
            t_prefetch = &pf;
          }
          F::forward(s.z1re, s.z1im, plan);
          apply(s.z1re, s.z1im, s.gre, s.gim, plan, false);
          F::inverse(s.z1re, s.z1im, plan);
          t_prefetch = nullptr;
          store(s.z1re, s.z1im, L, nvalid,
                WriteTimes{out_rows(a.y, a, b, h0, a.ld), rows(a.q, a, b, h0, a.ld), nt}, s.stage);
          break;
        }
        case Op::Bwd: {
          load(s.z1re, s.z1im, L, N, Plain{rows(a.u, a, b, h0, a.ld)}, s.stage);
          load(s.z2re, s.z2im, L, N, Plain{rows(a.dy, a, b, h0, a.ld)}, s.stage);
          F::forward(s.z1re, s.z1im, plan);
          F::forward(s.z2re, s.z2im, plan);
          backward_step(s.z1re, s.z1im, s.z2re, s.z2im, s.gre, s.gim, s.accre, s.accim, plan,
                        false);
          F::inverse(s.z2re, s.z2im, plan);
          store(s.z2re, s.z2im, L, nvalid, Write{out_rows(a.du, a, b, h0, a.ld), nt}, s.stage);
          break;
        }
        case Op::H3Bwd: {
          Rows q = rows(a.q, a, b, h0, a.ld), k = rows(a.k, a, b, h0, a.ld),
               v = rows(a.v, a, b, h0, a.ld), dy = rows(a.dy, a, b, h0, a.ld);
          load(s.z1re, s.z1im, L, N, Product{k, v}, s.stage);   // w = k v
          load(s.z2re, s.z2im, L, N, Product{q, dy}, s.stage);  // ds = q dy
          // While the FFTs run: the next element's k, v, q, dy (the stores below read this
          // element's rows again, which its loads just brought into L2); see PrefetchCursor.
          PrefetchCursor pf;
          if (prefetch && b + 1 < b1) {
            for (const float* base : {a.k, a.v, a.q, a.dy}) {
              const Rows r = rows(base, a, b + 1, h0, a.ld);
              for (int c = 0; c < nvalid; ++c) pf.add(r.p[c]);
            }
            pf.row_bytes = L * 4;
          }
          t_prefetch = pf.nrows ? &pf : nullptr;
          F::forward(s.z1re, s.z1im, plan);
          F::forward(s.z2re, s.z2im, plan);
          backward_step(s.z1re, s.z1im, s.z2re, s.z2im, s.gre, s.gim, s.accre, s.accim, plan,
                        true);
          F::inverse(s.z1re, s.z1im, plan);  // s = (K + D delta) * w
          t_prefetch = nullptr;
          store(s.z1re, s.z1im, L, nvalid, WriteTimes{out_rows(a.dq, a, b, h0, a.ld), dy, nt},
                s.stage);
          t_prefetch = pf.nrows ? &pf : nullptr;
          F::inverse(s.z2re, s.z2im, plan);  // dw
          t_prefetch = nullptr;
          store(s.z2re, s.z2im, L, nvalid,
                WriteTimes2{out_rows(a.dk, a, b, h0, a.ld), out_rows(a.dv, a, b, h0, a.ld), v, k,
                            nt},
                s.stage);
          break;
        }
      }
    }

    if (nt) V::fence();

    if (a.op == Op::Bwd || a.op == Op::H3Bwd) {
      finish_accumulated(s.accre, s.accim, s.z1re, s.z1im, plan);
      F::inverse(s.z1re, s.z1im, plan);
      OutRows dk;
      for (int c = 0; c < W; ++c) dk.p[c] = a.dK + std::min(h0 + c, a.H - 1) * a.kld;
      store(s.z1re, s.z1im, L, nvalid, Accumulate{dk, a.dD, h0}, s.stage);
    }
  }
};

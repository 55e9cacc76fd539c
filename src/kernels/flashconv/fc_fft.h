// The lane-batched packed real FFT behind FlashConv, written once for any vector type V.
//
// Data layout ("lane layout"): W channels side by side, one per SIMD lane; a complex array
// of N positions is two float arrays re[N*W], im[N*W] (split complex), position p at p*W.
// Every arithmetic op is a whole vector op with no shuffles: the FFT of W channels costs the
// instructions of one scalar FFT.
//
// A real sequence x of length n = 2N is packed as z[j] = x[2j] + i x[2j+1] (N complex) and
// transformed by a complex FFT of size N. Forward = radix-4 decimation in frequency, output
// left in bit-reversed order; inverse = the same stages reversed (decimation in time) with
// conjugate twiddles, taking bit-reversed input and giving natural order, unnormalised. The
// pointwise spectral step works directly on the bit-reversed order, so no permutation ever
// runs. Zero padding: the input's upper half z[N/2..N) is zero, so the first forward stage
// reads only two of its four quarters; only outputs z[0..N/2) (= x[0..N)) are needed, so the
// last inverse stage writes only two. Large sizes recurse depth first, so that every block
// of at most kLeafFloats floats per array runs all its remaining stages while in L1.
//
// Included by the per-instruction-set engines inside an anonymous namespace.

// Rows the next phases of a fused op will read from memory, prefetched a few lines at a time
// while the FFTs and the spectral step run, so that their DRAM time overlaps arithmetic (the
// op's loads and stores otherwise wait on memory for about a third of its time, none of it
// overlapped). Rates (docs/python.md, session 10, Zen 4): 2 lines per butterfly of the radix-4
// passes over L2 and per pair of the spectral step, 4 per 16-point group of the L1 leaf passes;
// for L = 1024 that spreads the 3,072 lines of 48 rows over all of one element's FFT work.
// Prefetches never fault, so the last line of a row may run into whatever follows it.
struct PrefetchCursor {
  static constexpr int kMaxRows = 64;
  static constexpr int kLinesPerStep = 2;       // L2 passes, spectral step
  static constexpr int kLinesPerLeafGroup = 4;  // leaf passes (radix-16 groups)
  const char* rows[kMaxRows];
  int nrows = 0, row = 0, off = 0, row_bytes = 0;
  void add(const float* p) {
    if (nrows < kMaxRows) rows[nrows++] = reinterpret_cast<const char*>(p);
  }
  [[gnu::always_inline]] void step(int lines = kLinesPerStep) {
    for (int i = 0; i < lines && row < nrows; ++i) {
      __builtin_prefetch(rows[row] + off, 0, 3);
      off += 64;
      if (off >= row_bytes) off = 0, ++row;
    }
  }
};
// The cursor of this thread's running op; null when there is nothing to prefetch.
thread_local PrefetchCursor* t_prefetch = nullptr;

template <class V>
struct LaneFft {
  using R = typename V::R;
  static constexpr int W = V::W;
  static constexpr int kLeafFloats = 4096;  // 16 KiB per array: re+im of a leaf fit in L1

  struct Cx {
    R re, im;
  };
  [[gnu::always_inline]] static Cx ld(const float* re, const float* im, size_t p) {
    return {V::load(re + p * W), V::load(im + p * W)};
  }
  [[gnu::always_inline]] static void st(float* re, float* im, size_t p, Cx x) {
    V::store(re + p * W, x.re);
    V::store(im + p * W, x.im);
  }
  [[gnu::always_inline]] static Cx add(Cx a, Cx b) { return {V::add(a.re, b.re), V::add(a.im, b.im)}; }
  [[gnu::always_inline]] static Cx sub(Cx a, Cx b) { return {V::sub(a.re, b.re), V::sub(a.im, b.im)}; }
  // x * (wr + i wi)
  [[gnu::always_inline]] static Cx twiddle(Cx x, R wr, R wi) {
    return {V::fmsub(x.re, wr, V::mul(x.im, wi)), V::fmadd(x.re, wi, V::mul(x.im, wr))};
  }
  // x * conj(wr + i wi)
  [[gnu::always_inline]] static Cx twiddle_conj(Cx x, R wr, R wi) {
    return {V::fmadd(x.re, wr, V::mul(x.im, wi)), V::fmsub(x.im, wr, V::mul(x.re, wi))};
  }
  [[gnu::always_inline]] static Cx mul(Cx a, Cx b) { return twiddle(a, b.re, b.im); }
  [[gnu::always_inline]] static Cx mul_conj(Cx a, Cx b) { return twiddle_conj(a, b.re, b.im); }  // a * conj(b)

  // ---- forward stages ----

  // Radix-4 DIF stage, span s, over the blocks of [base, base+m). Outputs of a butterfly go
  // to j, j+s, j+2s, j+3s as X0, X2, X1, X3 (bit-reversed), i.e. two merged radix-2 stages.
  static void dif4(float* re, float* im, size_t base, size_t m, size_t s, const float* tw,
                   bool zero_upper, PrefetchCursor* pf = nullptr) {
    for (size_t blk = base; blk < base + m; blk += 4 * s) {
      if (s == 1) {  // twiddles are all 1
        Cx a0 = ld(re, im, blk), a1 = ld(re, im, blk + 1);
        Cx zero = {V::zero(), V::zero()};
        Cx a2 = zero_upper ? zero : ld(re, im, blk + 2);
        Cx a3 = zero_upper ? zero : ld(re, im, blk + 3);
        Cx p0 = add(a0, a2), r = sub(a0, a2), p1 = add(a1, a3), d = sub(a1, a3);
        st(re, im, blk, add(p0, p1));
        st(re, im, blk + 1, sub(p0, p1));
        st(re, im, blk + 2, {V::add(r.re, d.im), V::sub(r.im, d.re)});  // r - i d
        st(re, im, blk + 3, {V::sub(r.re, d.im), V::add(r.im, d.re)});  // r + i d
        continue;
      }
      const float *t1r = tw, *t1i = tw + s, *t2r = tw + 2 * s, *t2i = tw + 3 * s,
                  *t3r = tw + 4 * s, *t3i = tw + 5 * s;
      for (size_t j = 0; j < s; ++j) {
        if (pf) pf->step();
        size_t i0 = blk + j;
        Cx a0 = ld(re, im, i0), a1 = ld(re, im, i0 + s);
        Cx p0, r, p1, d;
        if (zero_upper) {
          p0 = a0, r = a0, p1 = a1, d = a1;
        } else {
          Cx a2 = ld(re, im, i0 + 2 * s), a3 = ld(re, im, i0 + 3 * s);
          p0 = add(a0, a2), r = sub(a0, a2), p1 = add(a1, a3), d = sub(a1, a3);
        }
        st(re, im, i0, add(p0, p1));
        st(re, im, i0 + s, twiddle(sub(p0, p1), V::set1(t2r[j]), V::set1(t2i[j])));
        Cx rmid = {V::add(r.re, d.im), V::sub(r.im, d.re)};  // r - i d
        Cx rpid = {V::sub(r.re, d.im), V::add(r.im, d.re)};  // r + i d
        st(re, im, i0 + 2 * s, twiddle(rmid, V::set1(t1r[j]), V::set1(t1i[j])));
        st(re, im, i0 + 3 * s, twiddle(rpid, V::set1(t3r[j]), V::set1(t3i[j])));
      }
    }
  }

  // Radix-2 stage with span 1 (the last stage when log2 N is odd; twiddles are 1).
  static void dif2(float* re, float* im, size_t base, size_t m, bool zero_upper) {
    for (size_t blk = base; blk < base + m; blk += 2) {
      Cx a0 = ld(re, im, blk);
      Cx a1 = zero_upper ? Cx{V::zero(), V::zero()} : ld(re, im, blk + 1);
      st(re, im, blk, add(a0, a1));
      st(re, im, blk + 1, sub(a0, a1));
    }
  }

  // In-register radix-4 butterflies (the bodies of dif4 / dit4), slot q = position i0 + q s.
  [[gnu::always_inline]] static void bfly_dif(Cx& a0, Cx& a1, Cx& a2, Cx& a3, const float* tw, size_t s, size_t j,
                       bool twiddle_free) {
    Cx p0 = add(a0, a2), r = sub(a0, a2), p1 = add(a1, a3), d = sub(a1, a3);
    Cx rmid = {V::add(r.re, d.im), V::sub(r.im, d.re)};  // r - i d
    Cx rpid = {V::sub(r.re, d.im), V::add(r.im, d.re)};  // r + i d
    a0 = add(p0, p1);
    if (twiddle_free) {
      a1 = sub(p0, p1), a2 = rmid, a3 = rpid;
    } else {
      a1 = twiddle(sub(p0, p1), V::set1(tw[2 * s + j]), V::set1(tw[3 * s + j]));
      a2 = twiddle(rmid, V::set1(tw[j]), V::set1(tw[s + j]));
      a3 = twiddle(rpid, V::set1(tw[4 * s + j]), V::set1(tw[5 * s + j]));
    }
  }
  [[gnu::always_inline]] static void bfly_dit(Cx& c0, Cx& c1, Cx& c2, Cx& c3, const float* tw, size_t s, size_t j,
                       bool twiddle_free) {
    Cx d1 = c1, d2 = c2, d3 = c3;
    if (!twiddle_free) {
      d1 = twiddle_conj(c1, V::set1(tw[2 * s + j]), V::set1(tw[3 * s + j]));
      d2 = twiddle_conj(c2, V::set1(tw[j]), V::set1(tw[s + j]));
      d3 = twiddle_conj(c3, V::set1(tw[4 * s + j]), V::set1(tw[5 * s + j]));
    }
    Cx P = add(c0, d1), Q = sub(c0, d1), Rr = add(d2, d3), e = sub(d2, d3);
    Cx S = {V::sub(V::zero(), e.im), e.re};  // i (d2 - d3)
    c0 = add(P, Rr), c1 = add(Q, S), c2 = sub(P, Rr), c3 = sub(Q, S);
  }

  // Two radix-4 stages (spans S and S/4) in one pass: each group of 16 points that the two
  // stages combine is loaded once, transformed in registers and stored once. The span is a
  // compile-time constant so that the 16 addresses are fixed displacements from one pointer
  // (with run-time spans GCC keeps 32 pointers and spills them). Point x<q><r> sits at
  // blk + j2 + r S/4 + q S. (Named variables, not an array: GCC keeps a 2 KiB array of
  // vectors in memory.)
#define HIPPO_FC_X16(M) \
  M(0, 0) M(0, 1) M(0, 2) M(0, 3) M(1, 0) M(1, 1) M(1, 2) M(1, 3) \
  M(2, 0) M(2, 1) M(2, 2) M(2, 3) M(3, 0) M(3, 1) M(3, 2) M(3, 3)
  template <size_t S, bool ZeroUpper>
  static void dif16_t(float* re, float* im, size_t base, size_t m, const float* tw1,
                      const float* tw2) {
    constexpr size_t s4 = S / 4;
    const Cx zero = {V::zero(), V::zero()};
    for (size_t blk = base; blk < base + m; blk += 4 * S)
      for (size_t j2 = 0; j2 < s4; ++j2) {
        if (PrefetchCursor* pf = t_prefetch) pf->step(PrefetchCursor::kLinesPerLeafGroup);
        float* pr = re + (blk + j2) * W;
        float* pi = im + (blk + j2) * W;
#define HIPPO_FC_LD(q, r)                                                             \
  Cx x##q##r = (ZeroUpper && q >= 2) ? zero                                           \
                                     : Cx{V::load(pr + (r * s4 + q * S) * W),        \
                                          V::load(pi + (r * s4 + q * S) * W)};
        HIPPO_FC_X16(HIPPO_FC_LD)
#undef HIPPO_FC_LD
        bfly_dif(x00, x10, x20, x30, tw1, S, j2, false);
        bfly_dif(x01, x11, x21, x31, tw1, S, j2 + s4, false);
        bfly_dif(x02, x12, x22, x32, tw1, S, j2 + 2 * s4, false);
        bfly_dif(x03, x13, x23, x33, tw1, S, j2 + 3 * s4, false);
        bfly_dif(x00, x01, x02, x03, tw2, s4, j2, s4 == 1);
        bfly_dif(x10, x11, x12, x13, tw2, s4, j2, s4 == 1);
        bfly_dif(x20, x21, x22, x23, tw2, s4, j2, s4 == 1);
        bfly_dif(x30, x31, x32, x33, tw2, s4, j2, s4 == 1);
#define HIPPO_FC_ST(q, r)                                  \
  V::store(pr + (r * s4 + q * S) * W, x##q##r.re); \
  V::store(pi + (r * s4 + q * S) * W, x##q##r.im);
        HIPPO_FC_X16(HIPPO_FC_ST)
#undef HIPPO_FC_ST
      }
  }
  template <size_t S, bool HalfOut>
  static void dit16_t(float* re, float* im, size_t base, size_t m, const float* tw1,
                      const float* tw2) {
    constexpr size_t s4 = S / 4;
    for (size_t blk = base; blk < base + m; blk += 4 * S)
      for (size_t j2 = 0; j2 < s4; ++j2) {
        if (PrefetchCursor* pf = t_prefetch) pf->step(PrefetchCursor::kLinesPerLeafGroup);
        float* pr = re + (blk + j2) * W;
        float* pi = im + (blk + j2) * W;
#define HIPPO_FC_LD(q, r) \
  Cx x##q##r = {V::load(pr + (r * s4 + q * S) * W), V::load(pi + (r * s4 + q * S) * W)};
        HIPPO_FC_X16(HIPPO_FC_LD)
#undef HIPPO_FC_LD
        bfly_dit(x00, x01, x02, x03, tw2, s4, j2, s4 == 1);
        bfly_dit(x10, x11, x12, x13, tw2, s4, j2, s4 == 1);
        bfly_dit(x20, x21, x22, x23, tw2, s4, j2, s4 == 1);
        bfly_dit(x30, x31, x32, x33, tw2, s4, j2, s4 == 1);
        bfly_dit(x00, x10, x20, x30, tw1, S, j2, false);
        bfly_dit(x01, x11, x21, x31, tw1, S, j2 + s4, false);
        bfly_dit(x02, x12, x22, x32, tw1, S, j2 + 2 * s4, false);
        bfly_dit(x03, x13, x23, x33, tw1, S, j2 + 3 * s4, false);
#define HIPPO_FC_ST(q, r)                                    \
  if (!HalfOut || q < 2) {                                   \
    V::store(pr + (r * s4 + q * S) * W, x##q##r.re);         \
    V::store(pi + (r * s4 + q * S) * W, x##q##r.im);         \
  }
        HIPPO_FC_X16(HIPPO_FC_ST)
#undef HIPPO_FC_ST
      }
  }
#undef HIPPO_FC_X16

  // Spans up to kMaxFusedSpan run as fused radix-16 passes, larger ones as two radix-4 stages:
  // the 16 points of a larger span are 4 KiB multiples apart (W = 16) and fight over one L1
  // set (measured 2x slower).
  static constexpr size_t kMaxFusedSpan = 64;
  template <size_t S>
  static bool dif16_dispatch(float* re, float* im, size_t base, size_t m, size_t s,
                             const float* tw1, const float* tw2, bool zero_upper) {
    if constexpr (S > kMaxFusedSpan) {
      return false;
    } else {
      if (s != S) return dif16_dispatch<S * 2>(re, im, base, m, s, tw1, tw2, zero_upper);
      if (zero_upper) dif16_t<S, true>(re, im, base, m, tw1, tw2);
      else dif16_t<S, false>(re, im, base, m, tw1, tw2);
      return true;
    }
  }
  template <size_t S>
  static bool dit16_dispatch(float* re, float* im, size_t base, size_t m, size_t s,
                             const float* tw1, const float* tw2, bool half_out) {
    if constexpr (S > kMaxFusedSpan) {
      return false;
    } else {
      if (s != S) return dit16_dispatch<S * 2>(re, im, base, m, s, tw1, tw2, half_out);
      if (half_out) dit16_t<S, true>(re, im, base, m, tw1, tw2);
      else dit16_t<S, false>(re, im, base, m, tw1, tw2);
      return true;
    }
  }
  static void dif16(float* re, float* im, size_t base, size_t m, size_t s, const float* tw1,
                    const float* tw2, bool zero_upper) {
    if (dif16_dispatch<4>(re, im, base, m, s, tw1, tw2, zero_upper)) return;
    dif4(re, im, base, m, s, tw1, zero_upper);
    dif4(re, im, base, m, s / 4, tw2, false);
  }
  static void dit16(float* re, float* im, size_t base, size_t m, size_t s, const float* tw1,
                    const float* tw2, bool half_out) {
    if (dit16_dispatch<4>(re, im, base, m, s, tw1, tw2, half_out)) return;
    dit4(re, im, base, m, s / 4, tw2, false);
    dit4(re, im, base, m, s, tw1, half_out);
  }

  static int log2i(size_t x) {
    int l = 0;
    while ((size_t{1} << l) < x) ++l;
    return l;
  }

  // The stage sequence of a block of m points: pairs of radix-4 stages as one radix-16 pass
  // where possible, then a single radix-4 stage and/or the final radix-2 stage.
  struct Pass {
    int kind;  // 16, 4 or 2
    size_t s;  // span of its first stage
  };
  static int passes(size_t m, Pass* out) {
    int n = 0;
    size_t s = m / 4;
    for (; s >= 4; s /= 16) out[n++] = {16, s};
    if (s >= 1) out[n++] = {4, s};
    if (log2i(m) % 2 == 1) out[n++] = {2, 1};
    return n;
  }
  static const float* tw_of(const FftPlan& plan, size_t s) { return plan.tw + plan.off[log2i(s)]; }

  static void run_forward_pass(float* re, float* im, size_t base, size_t m, Pass p,
                               const FftPlan& plan, bool top) {
    if (p.kind == 16)
      dif16(re, im, base, m, p.s, tw_of(plan, p.s), tw_of(plan, p.s / 4), top);
    else if (p.kind == 4)
      dif4(re, im, base, m, p.s, tw_of(plan, p.s), top);
    else
      dif2(re, im, base, m, top);
  }
  static void run_inverse_pass(float* re, float* im, size_t base, size_t m, Pass p,
                               const FftPlan& plan, bool top) {
    if (p.kind == 16)
      dit16(re, im, base, m, p.s, tw_of(plan, p.s), tw_of(plan, p.s / 4), top);
    else if (p.kind == 4)
      dit4(re, im, base, m, p.s, tw_of(plan, p.s), top);
    else
      dit2(re, im, base, m, top);
  }

  // Blocks larger than a leaf: one radix-4 stage over the block (in L2), then each quarter
  // depth first; a leaf runs all its passes in L1.
  static void forward_rec(float* re, float* im, size_t base, size_t m, const FftPlan& plan,
                          bool top) {
    if (m * W > kLeafFloats) {
      const size_t s = m / 4;
      dif4(re, im, base, m, s, tw_of(plan, s), top, t_prefetch);
      for (size_t q = 0; q < 4; ++q) forward_rec(re, im, base + q * s, s, plan, false);
      return;
    }
    Pass ps[32];
    int n = passes(m, ps);
    for (int i = 0; i < n; ++i) run_forward_pass(re, im, base, m, ps[i], plan, top && i == 0);
  }

  // z (positions [0, N/2) filled, the upper half treated as zero) -> bit-reversed spectrum.
  static void forward(float* re, float* im, const FftPlan& plan) {
    forward_rec(re, im, 0, plan.N, plan, true);
  }

  // ---- inverse stages ----

  // Inverse of dif4 up to a factor 4. half_out: only positions j and j+s are written.
  static void dit4(float* re, float* im, size_t base, size_t m, size_t s, const float* tw,
                   bool half_out, PrefetchCursor* pf = nullptr) {
    for (size_t blk = base; blk < base + m; blk += 4 * s) {
      if (s == 1) {
        Cx c0 = ld(re, im, blk), d1 = ld(re, im, blk + 1), d2 = ld(re, im, blk + 2),
           d3 = ld(re, im, blk + 3);
        Cx P = add(c0, d1), Q = sub(c0, d1), Rr = add(d2, d3), e = sub(d2, d3);
        Cx S = {V::sub(V::zero(), e.im), e.re};  // i (d2 - d3)
        st(re, im, blk, add(P, Rr));
        st(re, im, blk + 1, add(Q, S));
        if (!half_out) {
          st(re, im, blk + 2, sub(P, Rr));
          st(re, im, blk + 3, sub(Q, S));
        }
        continue;
      }
      const float *t1r = tw, *t1i = tw + s, *t2r = tw + 2 * s, *t2i = tw + 3 * s,
                  *t3r = tw + 4 * s, *t3i = tw + 5 * s;
      for (size_t j = 0; j < s; ++j) {
        if (pf) pf->step();
        size_t i0 = blk + j;
        Cx c0 = ld(re, im, i0);
        Cx d1 = twiddle_conj(ld(re, im, i0 + s), V::set1(t2r[j]), V::set1(t2i[j]));
        Cx d2 = twiddle_conj(ld(re, im, i0 + 2 * s), V::set1(t1r[j]), V::set1(t1i[j]));
        Cx d3 = twiddle_conj(ld(re, im, i0 + 3 * s), V::set1(t3r[j]), V::set1(t3i[j]));
        Cx P = add(c0, d1), Q = sub(c0, d1), Rr = add(d2, d3), e = sub(d2, d3);
        Cx S = {V::sub(V::zero(), e.im), e.re};
        st(re, im, i0, add(P, Rr));
        st(re, im, i0 + s, add(Q, S));
        if (!half_out) {
          st(re, im, i0 + 2 * s, sub(P, Rr));
          st(re, im, i0 + 3 * s, sub(Q, S));
        }
      }
    }
  }

  static void dit2(float* re, float* im, size_t base, size_t m, bool half_out) {
    for (size_t blk = base; blk < base + m; blk += 2) {
      Cx c0 = ld(re, im, blk), c1 = ld(re, im, blk + 1);
      st(re, im, blk, add(c0, c1));
      if (!half_out) st(re, im, blk + 1, sub(c0, c1));
    }
  }

  static void inverse_rec(float* re, float* im, size_t base, size_t m, const FftPlan& plan,
                          bool top) {
    if (m * W > kLeafFloats) {
      const size_t s = m / 4;
      for (size_t q = 0; q < 4; ++q) inverse_rec(re, im, base + q * s, s, plan, false);
      dit4(re, im, base, m, s, tw_of(plan, s), top, t_prefetch);
      return;
    }
    Pass ps[32];
    int n = passes(m, ps);
    for (int i = n - 1; i >= 0; --i) run_inverse_pass(re, im, base, m, ps[i], plan, top && i == 0);
  }

  // Bit-reversed spectrum -> N * z, positions [0, N/2) only.
  static void inverse(float* re, float* im, const FftPlan& plan) {
    inverse_rec(re, im, 0, plan.N, plan, true);
  }

  // ---- the spectral step, on (k, N-k) pairs of the bit-reversed order ----
  //
  // Position p holds Z[k], k = rev(p). The real spectrum is X[k] = E + W^k O with
  // E = (Z[k] + conj Z[N-k])/2, O = (Z[k] - conj Z[N-k])/(2i); X[N-k] = conj(E - W^k O).
  // Position 0 pairs with itself (X[0] and X[N]; spectra keep X[N] in slot N), position 1
  // (k = N/2) too; in each octave [m, 2m) position p pairs with 3m-1-p.
  template <class F>
  static void for_pairs(int N, F&& f) {
    f(0, 0, N, false);
    f(1, 1, 1, false);
    for (int m = 2; m < N; m *= 2)
      for (int p = m; p < m + m / 2; ++p) f(p, 3 * m - 1 - p, 3 * m - 1 - p, true);
  }

  // Returns 2 X[k] and 2 X[N-k] from Z[k] (zp) and Z[N-k] (zq).
  static void unpack(Cx zp, Cx zq, R wr, R wi, Cx& x1, Cx& x2) {
    Cx e = {V::add(zp.re, zq.re), V::sub(zp.im, zq.im)};
    Cx o = {V::add(zp.im, zq.im), V::sub(zq.re, zp.re)};  // -i (zp - conj zq)
    Cx wo = twiddle(o, wr, wi);
    x1 = add(e, wo);
    x2 = {V::sub(e.re, wo.re), V::sub(wo.im, e.im)};
  }
  // Inverse of unpack up to scale: Y[k], Y[N-k] -> packed Z values for positions p and q.
  static void repack(Cx y1, Cx y2, R wr, R wi, Cx& zp, Cx& zq) {
    Cx ey = {V::add(y1.re, y2.re), V::sub(y1.im, y2.im)};
    Cx f = {V::sub(y1.re, y2.re), V::add(y1.im, y2.im)};
    Cx o = twiddle_conj(f, wr, wi);
    zp = {V::sub(ey.re, o.im), V::add(ey.im, o.re)};
    zq = {V::add(ey.re, o.im), V::sub(o.re, ey.im)};
  }
};

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

template <class V>
struct LaneFft {
  using R = typename V::R;
  static constexpr int W = V::W;
  static constexpr int kLeafFloats = 4096;  // 16 KiB per array: re+im of a leaf fit in L1

  struct Cx {
    R re, im;
  };
  static Cx ld(const float* re, const float* im, size_t p) {
    return {V::load(re + p * W), V::load(im + p * W)};
  }
  static void st(float* re, float* im, size_t p, Cx x) {
    V::store(re + p * W, x.re);
    V::store(im + p * W, x.im);
  }
  static Cx add(Cx a, Cx b) { return {V::add(a.re, b.re), V::add(a.im, b.im)}; }
  static Cx sub(Cx a, Cx b) { return {V::sub(a.re, b.re), V::sub(a.im, b.im)}; }
  // x * (wr + i wi)
  static Cx twiddle(Cx x, R wr, R wi) {
    return {V::fmsub(x.re, wr, V::mul(x.im, wi)), V::fmadd(x.re, wi, V::mul(x.im, wr))};
  }
  // x * conj(wr + i wi)
  static Cx twiddle_conj(Cx x, R wr, R wi) {
    return {V::fmadd(x.re, wr, V::mul(x.im, wi)), V::fmsub(x.im, wr, V::mul(x.re, wi))};
  }
  static Cx mul(Cx a, Cx b) { return twiddle(a, b.re, b.im); }
  static Cx mul_conj(Cx a, Cx b) { return twiddle_conj(a, b.re, b.im); }  // a * conj(b)

  // ---- forward stages ----

  // Radix-4 DIF stage, span s, over the blocks of [base, base+m). Outputs of a butterfly go
  // to j, j+s, j+2s, j+3s as X0, X2, X1, X3 (bit-reversed), i.e. two merged radix-2 stages.
  static void dif4(float* re, float* im, size_t base, size_t m, size_t s, const float* tw,
                   bool zero_upper) {
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

  static int log2i(size_t x) {
    int l = 0;
    while ((size_t{1} << l) < x) ++l;
    return l;
  }

  static void forward_rec(float* re, float* im, size_t base, size_t m, const FftPlan& plan,
                          bool top) {
    if (m == 2) {
      dif2(re, im, base, 2, top);
      return;
    }
    size_t s = m / 4;
    dif4(re, im, base, m, s, plan.tw + plan.off[log2i(s)], top);
    if (m * W > kLeafFloats) {
      for (size_t q = 0; q < 4; ++q) forward_rec(re, im, base + q * s, s, plan, false);
      return;
    }
    for (s /= 4; s >= 1; s /= 4) dif4(re, im, base, m, s, plan.tw + plan.off[log2i(s)], false);
    if (log2i(m) % 2 == 1) dif2(re, im, base, m, false);
  }

  // z (positions [0, N/2) filled, the upper half treated as zero) -> bit-reversed spectrum.
  static void forward(float* re, float* im, const FftPlan& plan) {
    forward_rec(re, im, 0, plan.N, plan, true);
  }

  // ---- inverse stages ----

  // Inverse of dif4 up to a factor 4. half_out: only positions j and j+s are written.
  static void dit4(float* re, float* im, size_t base, size_t m, size_t s, const float* tw,
                   bool half_out) {
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
    if (m == 2) {
      dit2(re, im, base, 2, top);
      return;
    }
    size_t s = m / 4;
    if (m * W > kLeafFloats) {
      for (size_t q = 0; q < 4; ++q) inverse_rec(re, im, base + q * s, s, plan, false);
    } else {
      if (log2i(m) % 2 == 1) dit2(re, im, base, m, false);
      for (size_t t = (log2i(m) % 2 == 1) ? 2 : 1; t < s; t *= 4)
        dit4(re, im, base, m, t, plan.tw + plan.off[log2i(t)], false);
    }
    dit4(re, im, base, m, s, plan.tw + plan.off[log2i(s)], top);
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

// One-lane "vector" for the portable engine: the same engine code, one channel at a time.
#pragma once

namespace hippo::fc {

struct VecScalar {
  using R = float;
  static constexpr int W = 1;
  static R load(const float* p) { return *p; }
  static R loadu(const float* p) { return *p; }
  static void store(float* p, R a) { *p = a; }
  static void storeu(float* p, R a) { *p = a; }
  static void stream(float* p, R a) { *p = a; }
  static void fence() {}
  static R set1(float a) { return a; }
  static R zero() { return 0.0f; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R fmadd(R a, R b, R c) { return a * b + c; }
  static R fmsub(R a, R b, R c) { return a * b - c; }
  static R fnmadd(R a, R b, R c) { return c - a * b; }
  static void transpose(R*) {}
};

}  // namespace hippo::fc

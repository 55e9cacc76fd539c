#!/usr/bin/env bash
# The test suite under the sanitizers (GCC, the project compiler).
#   scripts/sanitize.sh [asan|tsan|all] [ctest -R pattern]      (default: all, every test)
# asan: the whole project built with -fsanitize=address,undefined into build-asan, then the
#       whole ctest suite there (C++ tests and the PyTorch reference tests, which drive the
#       instrumented hippo and hippo_ref binaries). Any report fails the run: UBSan stops at
#       the first finding (-fno-sanitize-recover=undefined, halt_on_error=1).
# tsan: hippo_tests built with -fsanitize=thread into build-tsan, then the tests that run
#       several std::threads on shared objects (ctest -R "$HIPPO_TSAN_TESTS", default
#       'Threads\.'). OMP_NUM_THREADS=1: libgomp is not built with TSan, so its barriers are
#       invisible to it and OpenMP regions report false races; the threaded tests use
#       std::thread, whose synchronisation TSan sees.
# An optional second argument narrows the tests (ctest -R), e.g. to check one area quickly.
# -march=native as the release build, so that the AVX-512 paths are the ones checked.
# oneDNN is a prebuilt library: ASan needs nothing for it (its JIT code is not instrumented;
# it allocates through malloc, which ASan intercepts). No suppressions are used.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
pattern=${2:-}
jobs=${SANITIZE_JOBS:-2}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
common="-O1 -g -march=native -fno-omit-frame-pointer"

configure() {  # configure DIR FLAGS
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DHIPPO_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS_SANITIZE="$common $2" -DCMAKE_EXE_LINKER_FLAGS="$2" "${launcher[@]}" >/dev/null
}

run_asan() {
  local flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  configure build-asan "$flags"
  ninja -C build-asan -j"$jobs" hippo_cli hippo_tests hippo_ref
  echo "== ASan + UBSan: ctest ${pattern:+-R $pattern}"
  (cd build-asan &&
    ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    HIPPO_SANITIZER=address \
    ctest -j"$jobs" --output-on-failure ${pattern:+-R "$pattern"})
}

run_tsan() {
  configure build-tsan "-fsanitize=thread"
  ninja -C build-tsan -j"$jobs" hippo_tests
  local tests=${pattern:-${HIPPO_TSAN_TESTS:-'Threads\.'}}
  echo "== TSan: ctest -R $tests"
  # TSan needs its shadow-memory layout; on kernels with high mmap randomisation it stops with
  # "unexpected memory mapping": then run without address-space randomisation.
  local pre=()
  if [[ $(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28) -gt 28 ]]; then
    pre=(setarch "$(uname -m)" -R)
  fi
  (cd build-tsan &&
    OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    "${pre[@]}" ctest -j"$jobs" --output-on-failure -R "$tests")
}

case $mode in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_tsan; run_asan ;;
  *) echo "usage: scripts/sanitize.sh [asan|tsan|all] [ctest -R pattern]" >&2; exit 2 ;;
esac
echo "sanitize.sh $mode: clean"

// Issue 11, generation side: state files carry a checksum and their claims are checked
// against their tensors; prompt files must be regular files; a mapped file truncated under us
// is an error message, not a SIGBUS death; output paths never replace inputs or other kinds of
// files; the KV cache grows geometrically.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <map>
#include <fstream>
#include <string>
#include <thread>
#include <chrono>
#include <vector>

#include "core/error.h"
#include "data/read_file.h"
#include "generate/state_io.h"
#include "io/mapped_file.h"
#include "io/output_path.h"
#include "io/safetensors.h"
#include "models/lm.h"
#include "nn/attention.h"
#include "nn/h3.h"
#include "test_util.h"

using namespace hippo;
using test_util::error_of;
using test_util::TempDir;
namespace fs = std::filesystem;

namespace {

// By pointer: LanguageModel is not movable (its parameter list points into it).
std::unique_ptr<LanguageModel> make_model(uint64_t seed) {
  auto m = std::make_unique<LanguageModel>(ModelConfig::from_json(
      {{"vocab_size", 37}, {"d_model", 16}, {"n_layer", 3}, {"d_state", 8}, {"attn_heads", 2},
       {"layers", {"h3", "attention", "s4d"}}},
      "test"));
  m->init(seed);
  return m;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A saved state after a 5-token prompt, with its logits.
std::string saved_state(LanguageModel& m, const TempDir& dir, int B = 1) {
  ModelState st = m.new_state(B);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 5 * B; ++i) prompt.push_back(i % 37);
  const float* lg = m.prefill(prompt.data(), B, 5, st);
  const std::string file = dir.file("s.state");
  save_state(file, m, st, lg);
  return file;
}

// Rewrites a state file with other metadata and tensors, with a correct checksum.
void rewrite(const std::string& from, const std::string& to,
             const std::function<void(std::map<std::string, std::string>&,
                                      std::map<std::string, Tensor>&)>& edit) {
  SafeTensors st = load_safetensors(from);
  edit(st.metadata, st.tensors);
  std::vector<NamedTensor> list;
  for (auto& [name, t] : st.tensors) list.push_back({name, &t});
  st.metadata["checksum"] = state_checksum(st.metadata, list);
  save_safetensors(to, list, st.metadata);
}

using Edit = std::function<void(std::map<std::string, std::string>&, std::map<std::string, Tensor>&)>;

// A model and one of its saved states; refused(what, edit, expect): the state rewritten by
// `edit` into another file does not load, and the message names `expect` and that file.
struct StateRefusals {
  std::unique_ptr<LanguageModel> model;
  TempDir dir;
  std::string file, bad;
  StateRefusals(uint64_t seed, const char* name)
      : model(make_model(seed)), dir(name), file(saved_state(*model, dir)),
        bad(dir.file("bad.state")) {}
  void refused(const char* what, const Edit& edit, const char* expect) const {
    rewrite(file, bad, edit);
    const std::string e = error_of([&] { load_state(bad, *model); });
    EXPECT_NE(e.find(expect), std::string::npos) << what << ": " << e;
    EXPECT_NE(e.find(bad), std::string::npos) << what << ": " << e;
  }
};

}  // namespace

TEST(StateSafety, ChecksumRefusesAnyFlippedByte) {
  const auto owned = make_model(1);
  LanguageModel& m = *owned;
  TempDir dir("state_sum");
  const std::string file = saved_state(m, dir);
  std::vector<float> logits;
  EXPECT_NO_THROW(load_state(file, m, &logits));
  const std::string good = read_bytes(file);
  uint64_t hlen = 0;
  std::memcpy(&hlen, good.data(), 8);
  const size_t data0 = 8 + hlen;
  // Bytes spread over the whole data section (every tensor), and one flipped bit each.
  int refused = 0, tried = 0;
  for (size_t pos = data0; pos < good.size(); pos += (good.size() - data0) / 23 + 1) {
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x04);
    write_bytes(file, bad);
    const std::string e = error_of([&] { load_state(file, m, &logits); });
    ++tried;
    refused += e.find("checksum mismatch") != std::string::npos && e.find(file) != std::string::npos;
  }
  EXPECT_EQ(refused, tried);
  EXPECT_GE(tried, 20);
  // A metadata value changed, header still well formed: "position" 5 -> 6 (same length).
  std::string meta = good;
  const size_t at = meta.find("\"position\":\"5\"");
  ASSERT_NE(at, std::string::npos);
  meta[at + std::strlen("\"position\":\"")] = '6';
  write_bytes(file, meta);
  EXPECT_NE(error_of([&] { load_state(file, m); }).find("checksum mismatch"), std::string::npos);
}

TEST(StateSafety, ChecksumIsOverTheWholeState) {
  // Pins the documented construction: any tensor byte, any shape, any metadata value moves it.
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  std::map<std::string, std::string> meta = {{"format", "hippo-state-v2"}, {"batch", "1"}};
  const std::string base = state_checksum(meta, {{"x", &a}});
  EXPECT_EQ(base.size(), 16u);
  EXPECT_NE(state_checksum(meta, {{"x", &b}}), base);  // same bytes, other shape
  EXPECT_NE(state_checksum(meta, {{"y", &a}}), base);  // other name
  a.data()[5] = 1e-30f;
  EXPECT_NE(state_checksum(meta, {{"x", &a}}), base);
  a.data()[5] = 0;
  meta["batch"] = "2";
  EXPECT_NE(state_checksum(meta, {{"x", &a}}), base);
  meta["batch"] = "1";
  meta["checksum"] = "anything";  // not part of what it covers
  EXPECT_EQ(state_checksum(meta, {{"x", &a}}), base);
  // Every single-word change of a long buffer changes the data hash.
  std::vector<uint64_t> words(1000, 7);
  const uint64_t h0 = state_data_hash(words.data(), words.size() * 8, 1);
  for (size_t i = 0; i < words.size(); i += 37) {
    words[i] ^= 1ull << (i % 64);
    EXPECT_NE(state_data_hash(words.data(), words.size() * 8, 1), h0) << i;
    words[i] ^= 1ull << (i % 64);
  }
  EXPECT_NE(state_data_hash(words.data(), words.size() * 8 - 1, 1), h0);  // length counts
}

TEST(StateSafety, VersionOneIsRefusedWithAClearMessage) {
  const auto owned = make_model(2);
  LanguageModel& m = *owned;
  TempDir dir("state_v1");
  const std::string file = saved_state(m, dir), old = dir.file("old.state");
  SafeTensors st = load_safetensors(file);
  st.metadata["format"] = "hippo-state-v1";
  st.metadata.erase("checksum");
  std::vector<NamedTensor> list;
  for (auto& [name, t] : st.tensors) list.push_back({name, &t});
  save_safetensors(old, list, st.metadata);
  const std::string e = error_of([&] { load_state(old, m); });
  EXPECT_NE(e.find("hippo-state-v1"), std::string::npos) << e;
  EXPECT_NE(e.find("checksum"), std::string::npos) << e;
  EXPECT_NE(e.find("--save-state"), std::string::npos) << e;
}

TEST(StateSafety, ClaimsAreCheckedAgainstTheTensors) {
  const StateRefusals r(3, "state_claims");
  LanguageModel& m = *r.model;
  auto refused = [&](const char* what, const Edit& edit, const char* expect) {
    r.refused(what, edit, expect);
  };
  // Claims far beyond the data (they would allocate gigabytes) fail on the tensor shapes.
  refused("position", [](auto& meta, auto&) { meta["position"] = "5000000"; }, "shape");
  refused("batch", [](auto& meta, auto&) { meta["batch"] = "1000000"; }, "shape");
  refused("batch beyond int", [](auto& meta, auto&) { meta["batch"] = "4294967297"; }, "batch");
  refused("negative position", [](auto& meta, auto&) { meta["position"] = "-1"; }, "position");
  refused("missing tensor", [](auto&, auto& t) { t.erase("layers.0.shift"); }, "missing");
  refused("extra tensor", [](auto&, auto& t) { t.emplace("layers.9.k", Tensor::zeros({1})); },
          "unexpected state tensor");
  refused("short cache", [](auto&, auto& t) { t["layers.1.k"] = Tensor::zeros({1, 2, 4, 8}); },
          "shape");
  // Consistent batch-2 state from batch-1 tensors repeated: accepted.
  const std::string two = saved_state(m, r.dir, 2);
  EXPECT_EQ(load_state(two, m).batch, 2);
}

// A state whose numbers are not finite (with a valid checksum: made so, not damaged) is refused
// by name: stepping it would only spread NaN into every token (found by fuzz_state).
TEST(StateSafety, NonFiniteValuesAreRefused) {
  const auto owned = make_model(6);
  LanguageModel& m = *owned;
  TempDir dir("state_nonfinite");
  const std::string good = saved_state(m, dir);
  for (const std::string victim : {"layers.0.shift", "layers.1.k", "layers.2.x", "logits"}) {
    const std::string bad = dir.file("bad.state");
    rewrite(good, bad, [&](auto&, auto& tensors) {
      tensors.at(victim).data()[tensors.at(victim).numel() - 1] = std::nanf("");
    });
    const std::string e = error_of([&] {
      std::vector<float> lg;
      load_state(bad, m, &lg);
    });
    EXPECT_NE(e.find(victim), std::string::npos) << victim << ": " << e;
    EXPECT_NE(e.find("non-finite"), std::string::npos) << victim << ": " << e;
  }
  std::vector<float> lg;
  EXPECT_NO_THROW(load_state(good, m, &lg));
}

TEST(StateSafety, StateBytesCountsEveryLayer) {
  const auto owned = make_model(4);
  LanguageModel& m = *owned;
  ModelState st = m.new_state(3);
  const int64_t fresh = state_bytes(st);
  EXPECT_GT(fresh, 0);
  std::vector<int32_t> p(3 * 10, 1);
  m.prefill(p.data(), 3, 10, st);
  // The KV cache of 10 tokens: 3 sequences x 2 (k, v) x 16 floats x at least 10 tokens.
  EXPECT_GE(state_bytes(st) - fresh, 3 * 2 * 16 * 10 * 4);
}

TEST(KvCache, GrowsGeometrically) {
  // Decoding N tokens reallocates the cache O(log N) times, and never holds more than about
  // twice what it needs: memory follows the tokens made, not a requested maximum.
  const auto owned = make_model(5);
  LanguageModel& m = *owned;
  ModelState st = m.new_state(1);
  std::vector<int32_t> p(7, 3);
  m.prefill(p.data(), 1, 7, st);
  const auto& cache = dynamic_cast<const AttentionCache&>(*st.layers[1]);
  int64_t last = cache.capacity;
  int grows = 0;
  for (int i = 0; i < 3000; ++i) {
    const int32_t t = i % 37;
    m.step(&t, st);
    if (cache.capacity != last) ++grows;
    last = cache.capacity;
    EXPECT_LE(cache.capacity, std::max<int64_t>(64, 2 * cache.len)) << "token " << i;
  }
  EXPECT_LE(grows, 8);
}

TEST(ReadWholeFile, RefusesWhatIsNotARegularFile) {
  TempDir dir("read_file");
  const std::string f = dir.file("a.txt");
  write_bytes(f, std::string("abc\0def", 7));
  EXPECT_EQ(read_whole_file(f), std::string("abc\0def", 7));
  write_bytes(f, "");
  EXPECT_EQ(read_whole_file(f), "");
  const std::string d = error_of([&] { read_whole_file(dir.path.string()); });
  EXPECT_NE(d.find(dir.path.string()), std::string::npos) << d;
  EXPECT_NE(d.find("directory"), std::string::npos) << d;
  const std::string z = error_of([&] { read_whole_file("/dev/zero"); });  // would never end
  EXPECT_NE(z.find("not a regular file"), std::string::npos) << z;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { read_whole_file(fifo); }).find("pipe"), std::string::npos);
  // Prompts may come from a pipe (--prompt-file <(cmd)): read to its end.
  std::thread writer([&] {
    const int w = ::open(fifo.c_str(), O_WRONLY);
    if (w >= 0) {
      (void)!::write(w, "piped", 5);
      ::close(w);
    }
  });
  std::string got;
  for (int i = 0; i < 200 && got.empty(); ++i) {  // the writer may not have opened it yet
    got = read_whole_file(fifo, /*allow_pipe=*/true);
    if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  writer.join();
  EXPECT_EQ(got, "piped");
  EXPECT_NE(error_of([&] { read_whole_file("/dev/zero", true); }).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_whole_file(dir.file("none")); }).find("none"), std::string::npos);
}

TEST(OutputPath, NeverAnInputNorAnotherKindOfFile) {
  TempDir dir("out_path");
  const std::string in = dir.file("model.bin"), other = dir.file("notes.txt");
  write_bytes(in, "weights");
  write_bytes(other, "notes");
  fs::create_symlink(in, dir.file("sym"));
  fs::create_hard_link(in, dir.file("hard"));
  auto any_kind = [](const std::string&) { return std::string(); };
  auto no_kind = [](const std::string&) { return std::string("is not a state"); };
  for (const char* name : {"model.bin", "sym", "hard"}) {
    const std::string e =
        error_of([&] { check_output_path(dir.file(name), "--out", {in}, "x", any_kind); });
    EXPECT_NE(e.find("is an input"), std::string::npos) << name << ": " << e;
  }
  EXPECT_NE(error_of([&] { check_output_path(other, "--out", {in}, "x", no_kind); })
                .find("is not a state"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { check_output_path(other, "--out", {in}, "x", any_kind); }), "");
  EXPECT_EQ(error_of([&] { check_output_path(dir.file("new"), "--out", {in}, "x", no_kind); }), "");
  EXPECT_NE(error_of([&] { check_output_path(dir.path.string(), "--out", {in}, "x", any_kind); })
                .find("not a regular file"),
            std::string::npos);
}

// The death tests fork; "threadsafe" re-executes the binary so OpenMP threads do not matter.
TEST(MappedFileDeathTest, TruncatedWhileMappedIsAnErrorMessage) {
  ::testing::GTEST_FLAG(death_test_style) = "threadsafe";
  TempDir dir("mapped_trunc");
  const std::string f = dir.file("weights.bin");
  write_bytes(f, std::string(1 << 16, 'w'));
  EXPECT_EXIT(
      {
        MappedFile m(f);
        volatile unsigned char sink = m.data()[100];
        EXPECT_EQ(::truncate(f.c_str(), 0), 0);
        sink = m.data()[40000];  // past the new end
        (void)sink;
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(1), "hippo: error: .*weights.bin changed or was truncated");
}

TEST(MappedFileDeathTest, OtherBusErrorsKeepTheirDefaultAction) {
  ::testing::GTEST_FLAG(death_test_style) = "threadsafe";
  TempDir dir("mapped_other");
  const std::string ours = dir.file("ours.bin"), theirs = dir.file("theirs.bin");
  write_bytes(ours, std::string(1 << 16, 'o'));
  write_bytes(theirs, std::string(1 << 16, 't'));
  auto fault_elsewhere = [&] {
    MappedFile m(ours);  // installs the handler
    const int fd = ::open(theirs.c_str(), O_RDONLY);
    auto* p = static_cast<volatile unsigned char*>(
        ::mmap(nullptr, 1 << 16, PROT_READ, MAP_PRIVATE, fd, 0));
    if (::truncate(theirs.c_str(), 0) != 0) std::_Exit(3);
    const unsigned char c = p[40000];
    std::_Exit(c == 0 ? 4 : 5);
  };
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer the default action is ASan's own SIGBUS report (then abort).
  EXPECT_DEATH(fault_elsewhere(), "AddressSanitizer: BUS");
#else
  EXPECT_EXIT(fault_elsewhere(), ::testing::KilledBySignal(SIGBUS), "");
#endif
}

// The shift SSM's ring (ssm/shift.h "ring form", H3State). States saved before the ring existed
// have only "layers.<i>.shift": they load as s, step by shift-and-update and hand over to the
// ring N steps later, with the logits of the ring form to rounding. A state saved while still
// in that form continues exactly after loading. The ring and its age come together, and the
// age is a whole number of inputs in [0, N].
namespace {

// Steps st n times with fixed tokens; the logits of every step.
std::vector<float> steps(const LanguageModel& m, ModelState& st, int n) {
  std::vector<float> out;
  for (int t = 0; t < n; ++t) {
    const int32_t tok = (7 * t + 3) % 37;
    const float* lg = m.step(&tok, st);
    out.insert(out.end(), lg, lg + m.config().padded_vocab());
  }
  return out;
}

const H3State& h3_of(const ModelState& st) { return static_cast<const H3State&>(*st.layers[0]); }

}  // namespace

TEST(StateSafety, StatesWithoutAShiftRingLoadAndHandOverToIt) {
  const auto owned = make_model(8);
  LanguageModel& m = *owned;
  const int N = m.config().d_state;
  TempDir dir("state_ring");
  const std::string file = saved_state(m, dir), old = dir.file("old.state");
  rewrite(file, old, [](auto&, auto& t) {
    EXPECT_EQ(t.erase("layers.0.shift_ring") + t.erase("layers.0.shift_age"), 2u);
  });
  ModelState ring = load_state(file, m), upd = load_state(old, m);
  EXPECT_TRUE(h3_of(ring).ring_ready());
  EXPECT_FALSE(h3_of(upd).ring_ready());
  const std::vector<float> a = steps(m, ring, N + 4), b = steps(m, upd, N + 4);
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
  }
  EXPECT_LE(err, 1e-5 * scale);
  EXPECT_TRUE(h3_of(upd).ring_ready());  // N steps later
  EXPECT_FALSE(h3_of(upd).shift_current);

  // Saved halfway through the hand-over (age 3 of N): the loaded copy continues exactly.
  ModelState half = load_state(old, m);
  steps(m, half, 3);
  EXPECT_EQ(h3_of(half).shift_age, 3);
  const std::string mid = dir.file("mid.state");
  save_state(mid, m, half);
  ModelState again = load_state(mid, m);
  EXPECT_EQ(h3_of(again).shift_age, 3);
  EXPECT_EQ(steps(m, again, N + 2), steps(m, half, N + 2));
}

TEST(StateSafety, ShiftRingAndAgeAreCheckedWhenLoaded) {
  const StateRefusals r(9, "state_ring_bad");
  auto refused = [&](const char* what, const Edit& edit, const char* expect) {
    r.refused(what, edit, expect);
  };
  refused("ring alone", [](auto&, auto& t) { t.erase("layers.0.shift_age"); }, "layers.0.shift_age");
  refused("age alone", [](auto&, auto& t) { t.erase("layers.0.shift_ring"); }, "layers.0.shift_ring");
  for (float age : {-1.0f, 2.5f, 9.0f})
    refused("age", [age](auto&, auto& t) { t.at("layers.0.shift_age").data()[0] = age; },
            "layers.0.shift_age");
  refused("ring shape", [](auto&, auto& t) { t["layers.0.shift_ring"] = Tensor::zeros({1, 16, 4}); },
          "shape");
}

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"

using namespace hippo;

namespace {

std::string make_file(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return s + header + std::string(data_bytes, '\x01');
}

std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "f.st");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SafeTensors, RoundTripAndAtomicOverwrite) {
  auto dir = std::filesystem::temp_directory_path() / ("hippo_st_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "w.safetensors").string();
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  for (int i = 0; i < 6; ++i) a[i] = i * 0.5f;
  for (int i = 0; i < 4; ++i) b[i] = -i;
  save_safetensors(path, {{"a", &a}, {"b", &b}}, {{"k", "v"}});
  SafeTensors st = load_safetensors(path);
  EXPECT_EQ(st.metadata["k"], "v");
  EXPECT_EQ(st.get("a", path).shape(), (Shape{2, 3}));
  EXPECT_EQ(st.get("a", path)[5], 2.5f);
  EXPECT_EQ(st.get("b", path)[3], -3.0f);
  save_safetensors(path, {{"b", &b}});
  EXPECT_FALSE(load_safetensors(path).has("a"));
  int leftovers = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) leftovers += e.path().filename() != "w.safetensors";
  EXPECT_EQ(leftovers, 0) << "temporary files must be renamed away";
  std::filesystem::remove_all(dir);
}

TEST(SafeTensors, LyingHeadersAreRefused) {
  const std::string good = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(parse_error(make_file(good, 8)), "");
  EXPECT_NE(parse_error("abc").find("too short"), std::string::npos);
  EXPECT_NE(parse_error(make_file(good, 4)).find("out of range"), std::string::npos);
  std::string huge(8, '\xff');
  EXPECT_NE(parse_error(huge + "{}").find("header length"), std::string::npos);
  EXPECT_NE(parse_error(make_file("{not json", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
                .find("need 12"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8))
                .find("unsupported dtype"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                  12))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8))
                .find("non-negative"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8))
                .find("out of range"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[2]}})", 8)).find("data_offsets"),
            std::string::npos);
  try {
    load_safetensors("/nonexistent/w.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/w.safetensors"), std::string::npos);
  }
}

TEST(SafeTensors, DuplicateKeysAreRefused) {
  const std::string x = R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  EXPECT_NE(parse_error(make_file("{" + x + "," + x + "}", 4)).find("'x' more than once"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"__metadata__":{"a":"1","a":"2"}})", 0)).find("'a' more than once"),
            std::string::npos);
  // The same key in different objects is fine.
  EXPECT_EQ(parse_error(make_file(R"({"__metadata__":{"x":"1"},)" + x + "}", 4)), "");
}

TEST(SafeTensors, HugeShapesAreRefusedBeforeAllocating) {
  // 2^39 * 2^39 elements would overflow a naive numel * dtype size.
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F64","shape":[549755813888,549755813888],)"
                                  R"("data_offsets":[0,8]}})", 8))
                .find("too large"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F64","shape":[1099511627775,8],)"
                                  R"("data_offsets":[0,8]}})", 8))
                .find("too large"),
            std::string::npos);
  EXPECT_NE(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8))
                .find("non-negative integers"),
            std::string::npos);
}

TEST(SafeTensors, ReaderStreamsTensorsAndChecksTruncation) {
  auto dir = std::filesystem::temp_directory_path() / ("hippo_st_reader_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // Mixed dtypes written by hand: F32 [1.5, -2], BF16 [1, -0.5] (0x3f80, 0xbf00), F16 [2] (0x4000).
  std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
      R"("c":{"dtype":"F16","shape":[1],"data_offsets":[12,14]},"__metadata__":{"k":"v"}})";
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  float a[2] = {1.5f, -2.0f};
  bytes.append(reinterpret_cast<const char*>(a), 8);
  const unsigned char rest[6] = {0x80, 0x3f, 0x00, 0xbf, 0x00, 0x40};
  bytes.append(reinterpret_cast<const char*>(rest), 6);
  std::string path = (dir / "m.safetensors").string();
  write_file_atomic(path, bytes);

  SafeTensorsReader r(path);
  EXPECT_EQ(r.header().metadata.at("k"), "v");
  float out[2];
  r.read_f32("a", out);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.0f);
  r.read_f32("b", out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -0.5f);
  r.read_f32("c", out);
  EXPECT_EQ(out[0], 2.0f);
  // Same result as the whole-file parser.
  SafeTensors st = load_safetensors(path);
  EXPECT_EQ(st.get("b", path)[1], -0.5f);
  try {
    r.entry("zz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'zz'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  // A truncated file is refused when opened, naming the tensor that runs past the end.
  write_file_atomic(path, bytes.substr(0, bytes.size() - 1));
  try {
    SafeTensorsReader bad(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(SafeTensors, DataSectionStartsOnACacheLine) {
  // The header is padded with spaces so that the data starts 64 bytes into a page-aligned
  // mapping's lines: mapped fp32 weights whose sizes are multiples of 64 bytes then start on
  // cache lines (the batched decoding kernel's fast layout needs it, kernels/gemm_small.h).
  for (int extra = 0; extra < 70; extra += 7) {
    Tensor a = Tensor::zeros({16}), b = Tensor::zeros({3, 16});
    for (int i = 0; i < 16; ++i) a[i] = static_cast<float>(i);
    const std::string bytes = safetensors_bytes({{"a", &a}, {std::string(extra, 'n') + "b", &b}},
                                                {{"k", std::string(extra, 'v')}});
    const SafeTensorsHeader h = parse_safetensors_header(
        reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), bytes.size(), "f.st");
    EXPECT_EQ(h.data_offset % 64, 0u) << extra;
    EXPECT_EQ(bytes[h.data_offset - 1], ' ') << extra;
    float v = 0;
    std::memcpy(&v, bytes.data() + h.data_offset + 5 * 4, 4);
    EXPECT_EQ(v, 5.0f);
  }
}

// An atomic write renames over its target, so a device, FIFO or folder at the path would be
// replaced: refused instead, and left as it was (random_model once replaced /dev/null).
TEST(SafeTensors, AtomicWriteNeverReplacesANonRegularFile) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hippo_atomic_" + std::to_string(::getpid()));
  fs::create_directories(dir / "folder");
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(hippo::write_file_atomic(fifo, "x"), hippo::Error);
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(fifo)));
  EXPECT_THROW(hippo::write_file_atomic((dir / "folder").string(), "x"), hippo::Error);
  EXPECT_TRUE(fs::is_directory(dir / "folder"));
  hippo::write_file_atomic((dir / "plain").string(), "x");  // a new regular file is fine
  EXPECT_EQ(fs::file_size(dir / "plain"), 1u);
  fs::remove_all(dir);
}

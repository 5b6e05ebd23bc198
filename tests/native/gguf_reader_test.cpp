#include "gguf/gguf.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf_writer.h"
#include "test_support.h"

namespace pipit::gguf {
namespace {

// Byte positions fixed by the format: magic, version, tensor count, kv count, first key.
constexpr size_t kVersionAt = 4;
constexpr size_t kTensorCountAt = 8;
constexpr size_t kKvCountAt = 16;
constexpr size_t kFirstKeyAt = 24;
// With a one-letter first key: its value type, and what follows the type.
constexpr size_t kFirstTypeAt = kFirstKeyAt + 8 + 1;
constexpr size_t kFirstValueAt = kFirstTypeAt + 4;

void patch_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  std::memcpy(&b[at], &v, 4);
}
void patch_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  std::memcpy(&b[at], &v, 8);
}

// Parses and expects Error of `kind` whose message holds every one of `needles`.
void expect_error(const std::vector<uint8_t>& bytes, ErrorKind kind,
                  const std::vector<std::string>& needles, ParseOptions options = {}) {
  try {
    File::parse(bytes, options);
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message lacks '" << n << "': " << e.what();
    }
  }
}

// A file with metadata of several kinds and two tensors whose sizes are multiples of the
// alignment, so no byte at the end is optional padding.
std::vector<uint8_t> sample_file() {
  Writer w;
  w.set("general.architecture", MetaValue::string("llama"));
  w.set("n", MetaValue::u32(7));
  w.set("neg", MetaValue::i8(-3));
  w.set("f", MetaValue::f32(0.5f));
  w.set("b", MetaValue::boolean(true));
  w.set("tokens", MetaValue::strings({"a", "bb", "ccc"}));
  w.set("scores", MetaValue::f32s({1.0f, 2.0f, 3.0f}));
  w.set("nested",
        MetaValue::array(ValueType::kArray, {MetaValue::i32s({1}), MetaValue::strings({"x"})}));
  std::vector<float> v(8, 1.25f);
  w.add_tensor("first", TensorType::F32, {8}, v);
  std::vector<float> h(32, -2.0f);
  w.add_tensor("second", TensorType::F16, {16, 2}, h);
  return w.bytes();
}

TEST(GgufReader, SampleFileParses) {
  const std::vector<uint8_t> bytes = sample_file();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 8u);
  EXPECT_EQ(f.get_string("general.architecture", ""), "llama");
  EXPECT_EQ(f.get_u64("n", 0), 7u);
  EXPECT_EQ(f.get_u64("missing", 11), 11u);
  EXPECT_EQ(f.get_string("missing", "fallback"), "fallback");
  EXPECT_TRUE(f.get_bool("b", false));
  EXPECT_EQ(f.get_f64("f", 0), 0.5);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[1].name, "second");
  EXPECT_EQ(f.tensors()[1].rows(), 2u);
  EXPECT_EQ(f.tensors()[1].nbytes, 64u);
  EXPECT_EQ(f.data_offset() + 32 + 64, bytes.size());
  float first;
  std::memcpy(&first, f.tensors()[0].data, 4);
  EXPECT_EQ(first, 1.25f);
}

TEST(GgufReader, ValueAccessorsNameTheKeyOnMisuse) {
  const std::vector<uint8_t> bytes = sample_file();
  const File f = File::parse(bytes);
  auto expect_misuse = [](auto&& call, const std::string& key) {
    try {
      call();
      ADD_FAILURE() << "no error for " << key;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kFormat);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  EXPECT_EQ(f.require("neg").as_i64(), -3);
  EXPECT_EQ(f.require("neg").as_f64(), -3.0);
  expect_misuse([&] { f.require("neg").as_u64(); }, "'neg'");
  expect_misuse([&] { f.require("n").as_string(); }, "'n'");
  expect_misuse([&] { f.require("n").as_bool(); }, "'n'");
  expect_misuse([&] { f.require("n").size(); }, "'n'");
  expect_misuse([&] { f.require("tokens").at(3); }, "'tokens'");
  expect_misuse([&] { f.require("tokens").as_f32s(); }, "'tokens'");
  expect_misuse([&] { f.require("scores").as_i32s(); }, "'scores'");
  expect_misuse([&] { f.require("scores").as_strings(); }, "'scores'");
  expect_misuse([&] { f.require("absent.key"); }, "'absent.key'");
  EXPECT_EQ(f.require("tokens").at(2).as_string(), "ccc");
  EXPECT_EQ(f.require("nested").at(1).as_strings()[0], "x");
}

TEST(GgufReader, TruncatedAnywhereIsAFormatError) {
  const std::vector<uint8_t> bytes = sample_file();
  const size_t data_offset = static_cast<size_t>(File::parse(bytes).data_offset());
  std::vector<size_t> cuts;
  for (size_t n = 0; n <= data_offset; ++n) cuts.push_back(n);
  for (size_t n : {data_offset + 1, data_offset + 31, data_offset + 32, data_offset + 33,
                   bytes.size() - 17, bytes.size() - 1}) {
    cuts.push_back(n);
  }
  for (size_t n : cuts) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    try {
      File::parse(cut);
      ADD_FAILURE() << "a file cut to " << n << " of " << bytes.size() << " bytes parsed";
    } catch (const Error& e) {
      ASSERT_EQ(e.kind(), ErrorKind::kFormat) << "cut at " << n << ": " << e.what();
    }
  }
}

TEST(GgufReader, HugeCountsFailWithoutAllocating) {
  constexpr uint64_t kHuge = uint64_t{1} << 62;
  std::vector<uint8_t> b = sample_file();
  patch_u64(b, kTensorCountAt, kHuge);
  expect_error(b, ErrorKind::kFormat, {"4611686018427387904", "tensors"});
  b = sample_file();
  patch_u64(b, kKvCountAt, kHuge);
  expect_error(b, ErrorKind::kFormat, {"4611686018427387904", "metadata"});
  b = sample_file();
  patch_u64(b, kFirstKeyAt, kHuge);  // the first key's length
  expect_error(b, ErrorKind::kFormat, {"truncated"});
  patch_u64(b, kFirstKeyAt, ~uint64_t{0});
  expect_error(b, ErrorKind::kFormat, {"truncated"});

  const auto one_key = [](MetaValue v) {
    Writer w;
    w.set("k", std::move(v));
    return w.bytes();
  };
  b = one_key(MetaValue::string("abc"));
  patch_u64(b, kFirstValueAt, kHuge);  // the string's length
  expect_error(b, ErrorKind::kFormat, {"'k'"});
  // Arrays: {element type u32, count u64, ...}; the count follows the element type.
  for (MetaValue v : {MetaValue::f32s({1, 2}), MetaValue::strings({"a"}),
                      MetaValue::array(ValueType::kArray, {MetaValue::i32s({1})})}) {
    b = one_key(v);
    patch_u64(b, kFirstValueAt + 4, kHuge);
    expect_error(b, ErrorKind::kFormat, {"'k'", "4611686018427387904"});
  }
  // A nested array's inner count.
  b = one_key(MetaValue::array(ValueType::kArray, {MetaValue::i32s({1})}));
  patch_u64(b, kFirstValueAt + 4 + 8 + 4, kHuge);
  expect_error(b, ErrorKind::kFormat, {"'k'"});

  Writer w;
  w.add_tensor_info("huge", 0, {kHuge, kHuge}, 0);
  expect_error(w.bytes(), ErrorKind::kFormat, {"'huge'", "dimension"});
  Writer w5;
  w5.add_tensor_info("five", 0, {1, 1, 1, 1, 1}, 0);
  expect_error(w5.bytes(), ErrorKind::kFormat, {"'five'", "5 dimensions"});
  Writer w0;
  w0.add_tensor_info("zero", 0, {4, 0}, 0);
  expect_error(w0.bytes(), ErrorKind::kFormat, {"'zero'", "dimension"});
}

TEST(GgufReader, BadTensorOffsetsAreNamed) {
  {
    Writer w;
    w.add_tensor("ok", TensorType::F32, {8}, std::vector<float>(8, 0.0f));
    w.add_tensor_info("far", 0, {8}, uint64_t{1} << 40);
    const std::vector<uint8_t> b = w.bytes();
    expect_error(b, ErrorKind::kFormat,
                 {"'far'", "1099511627776", "32 bytes", std::to_string(b.size())});
  }
  {
    Writer w;
    w.add_tensor("ok", TensorType::F32, {8}, std::vector<float>(8, 0.0f));
    w.add_tensor_info("past_end", 0, {1024}, 0);
    const std::vector<uint8_t> b = w.bytes();
    expect_error(b, ErrorKind::kFormat,
                 {"'past_end'", "4096 bytes", "offset 0", std::to_string(b.size())});
  }
  {
    Writer w;
    w.add_tensor("ok", TensorType::F32, {8}, std::vector<float>(8, 0.0f));
    w.add_tensor_info("misaligned", 0, {1}, 4);
    expect_error(w.bytes(), ErrorKind::kFormat, {"'misaligned'", "4", "alignment 32"});
  }
  {
    Writer w;
    w.set_alignment(64);
    w.add_tensor("ok", TensorType::F32, {8}, std::vector<float>(8, 0.0f));
    w.add_tensor_info("at32", 0, {1}, 32);
    expect_error(w.bytes(), ErrorKind::kFormat, {"'at32'", "alignment 64"});
  }
}

TEST(GgufReader, UnknownTensorTypeIsUnsupported) {
  Writer w;
  w.add_tensor_info("mystery", 77, {32}, 0);
  expect_error(w.bytes(), ErrorKind::kUnsupported, {"'mystery'", "77"});
  Writer retired;  // 4 and 5 were Q4_2/Q4_3, removed from ggml
  retired.add_tensor_info("old", 4, {32}, 0);
  expect_error(retired.bytes(), ErrorKind::kUnsupported, {"'old'", "4"});
}

TEST(GgufReader, RowsMustBeWholeBlocks) {
  Writer w;
  w.add_tensor_info("odd", static_cast<uint32_t>(TensorType::Q4_0), {33, 2}, 0);
  expect_error(w.bytes(), ErrorKind::kFormat, {"'odd'", "33", "32", "Q4_0"});
  Writer k;
  k.add_tensor_info("kq", static_cast<uint32_t>(TensorType::Q4_K), {128}, 0);
  expect_error(k.bytes(), ErrorKind::kFormat, {"'kq'", "128", "256"});
}

TEST(GgufReader, MagicAndVersion) {
  std::vector<uint8_t> b = sample_file();
  b[3] = 'X';
  expect_error(b, ErrorKind::kFormat, {"GGUF"});
  expect_error({}, ErrorKind::kFormat, {"truncated"});
  expect_error({'G', 'G'}, ErrorKind::kFormat, {"truncated"});

  Writer v1(WriterOptions{.version = 1});
  expect_error(v1.bytes(), ErrorKind::kUnsupported, {"version 1"});
  Writer v4(WriterOptions{.version = 4});
  expect_error(v4.bytes(), ErrorKind::kFormat, {"version 4"});
  Writer v0(WriterOptions{.version = 0});
  expect_error(v0.bytes(), ErrorKind::kFormat, {"version 0"});
  b = sample_file();
  patch_u32(b, kVersionAt, 0x03000000);  // 3 written big-endian
  expect_error(b, ErrorKind::kUnsupported, {"big-endian"});

  Writer v2(WriterOptions{.version = 2});
  v2.set("x", MetaValue::u8(1));
  const std::vector<uint8_t> v2_bytes = v2.bytes();
  EXPECT_EQ(File::parse(v2_bytes).version(), 2u);
}

TEST(GgufReader, InvalidValueTypes) {
  Writer w;
  w.set("k", MetaValue::u32(5));
  std::vector<uint8_t> b = w.bytes();
  patch_u32(b, kFirstTypeAt, 13);
  expect_error(b, ErrorKind::kFormat, {"13", "'k'"});
  patch_u32(b, kFirstTypeAt, 0xFFFFFFFF);
  expect_error(b, ErrorKind::kFormat, {"4294967295"});

  Writer a;
  a.set("k", MetaValue::f32s({1.0f}));
  b = a.bytes();
  patch_u32(b, kFirstValueAt, 42);  // the array's element type
  expect_error(b, ErrorKind::kFormat, {"42", "'k'"});
}

MetaValue nest(int levels) {
  MetaValue v = MetaValue::i32s({1, 2});
  for (int i = 1; i < levels; ++i) v = MetaValue::array(ValueType::kArray, {v});
  return v;
}

TEST(GgufReader, ArrayNestingDepthIsLimited) {
  Writer ok;
  ok.set("deep", nest(8));
  const std::vector<uint8_t> ok_bytes = ok.bytes();
  const File f = File::parse(ok_bytes);
  Value v = f.require("deep");
  for (int i = 1; i < 8; ++i) v = v.at(0);
  EXPECT_EQ(v.as_i32s(), (std::vector<int32_t>{1, 2}));

  Writer too_deep;
  too_deep.set("deeper", nest(9));
  expect_error(too_deep.bytes(), ErrorKind::kFormat, {"'deeper'", "deeply"});
  Writer absurd;
  absurd.set("absurd", nest(200));
  expect_error(absurd.bytes(), ErrorKind::kFormat, {"'absurd'", "deeply"});
}

TEST(GgufReader, DuplicateKeys) {
  Writer w(WriterOptions{.allow_duplicate_keys = true});
  w.add("a", MetaValue::u32(1));
  w.add("twice", MetaValue::string("first"));
  w.add("twice", MetaValue::u32(2));
  const std::vector<uint8_t> b = w.bytes();
  expect_error(b, ErrorKind::kFormat, {"'twice'"});
  const File f = File::parse(b, {.allow_duplicate_keys = true});
  EXPECT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.require("twice").as_string(), "first");
  ASSERT_EQ(f.warnings().size(), 1u);
  EXPECT_NE(f.warnings()[0].find("'twice'"), std::string::npos) << f.warnings()[0];
}

TEST(GgufReader, AlignmentKeyIsChecked) {
  Writer w;
  w.set("general.alignment", MetaValue::u32(48));
  expect_error(w.bytes(), ErrorKind::kFormat, {"general.alignment", "48"});
  Writer z;
  z.set("general.alignment", MetaValue::u32(0));
  expect_error(z.bytes(), ErrorKind::kFormat, {"general.alignment"});
  Writer s;
  s.set("general.alignment", MetaValue::string("32"));
  expect_error(s.bytes(), ErrorKind::kFormat, {"general.alignment", "string"});
  // A power of two, but float tensors would start off their 4-byte boundary (found by fuzzing:
  // a misaligned norm weight read in rms_norm).
  Writer two;
  two.set("general.alignment", MetaValue::u32(2));
  expect_error(two.bytes(), ErrorKind::kFormat, {"general.alignment is 2", "at least 4 bytes"});
}

TEST(GgufReader, DbrxVocabWithItsDuplicateKey) {
  const std::string path = testing::model_path("vocab/extra-pr-branches/ggml-vocab-dbrx.gguf");
  PIPIT_REQUIRE_FILE(path);
  const std::vector<uint8_t> b = read_file(path);
  expect_error(b, ErrorKind::kFormat, {"'general.file_type'"});
  const File f = File::parse(b, {.allow_duplicate_keys = true});
  EXPECT_EQ(f.metadata().size(), 24u);  // 25 entries, one of them the repeat
  ASSERT_EQ(f.warnings().size(), 1u);
  EXPECT_NE(f.warnings()[0].find("general.file_type"), std::string::npos);
  EXPECT_EQ(f.tensors().size(), 0u);
  EXPECT_EQ(f.get_string("general.architecture", ""), "dbrx");
  EXPECT_EQ(f.require("tokenizer.ggml.tokens").size(), 100352u);
  EXPECT_EQ(f.require("tokenizer.ggml.merges").size(), 100000u);
}

TEST(GgufReader, Stories260K) {
  const std::string path = testing::model_path("stories260K/stories260K.gguf");
  PIPIT_REQUIRE_FILE(path);
  const std::vector<uint8_t> b = read_file(path);
  const File f = File::parse(b);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 19u);
  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.data_offset(), 14176u);
  EXPECT_EQ(f.get_u64("llama.embedding_length", 0), 64u);
  EXPECT_EQ(f.require("tokenizer.ggml.tokens").size(), 512u);
  const TensorInfo* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dims, (std::vector<uint64_t>{64, 512}));
  for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.type_id, 0u) << t.name;
}

TEST(GgufReader, SyntheticQ4KM) {
  const std::string path = testing::model_path("synthetic/synth-llama-Q4_K_M.gguf");
  PIPIT_REQUIRE_FILE(path);
  const std::vector<uint8_t> b = read_file(path);
  const File f = File::parse(b);
  EXPECT_EQ(f.tensors().size(), 39u);
  std::map<std::string, int> counts;
  for (const TensorInfo& t : f.tensors()) {
    ++counts[type_name(t.type_id)];
    EXPECT_LE(f.data_offset() + t.offset + t.nbytes, b.size()) << t.name;
  }
  EXPECT_EQ(counts, (std::map<std::string, int>{{"F32", 9}, {"Q4_K", 25}, {"Q6_K", 5}}));
  EXPECT_EQ(f.find_tensor("output.weight")->nbytes, 512u / 256 * 210 * 256);
  EXPECT_EQ(f.get_u64("general.file_type", 0), 15u);
}

TEST(GgufReader, EverySharedModelFileParses) {
  const std::filesystem::path dir = testing::models_dir();
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "models dir not found: " << dir;
  int parsed = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".gguf") continue;
    const std::vector<uint8_t> b = read_file(entry.path().string());
    EXPECT_NO_THROW(File::parse(b, {.allow_duplicate_keys = true})) << entry.path();
    ++parsed;
  }
  EXPECT_GE(parsed, 20);
}

}  // namespace
}  // namespace pipit::gguf

#include "gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/quantize.h"
#include "synthetic.h"
#include "test_support.h"

namespace pipit::gguf {
namespace {

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + 0.1f);
  return v;
}

TEST(GgufWriter, EveryScalarTypeRoundTrips) {
  Writer w;
  w.set("u8", MetaValue::u8(255));
  w.set("i8", MetaValue::i8(-128));
  w.set("u16", MetaValue::u16(65535));
  w.set("i16", MetaValue::i16(-32768));
  w.set("u32", MetaValue::u32(std::numeric_limits<uint32_t>::max()));
  w.set("i32", MetaValue::i32(std::numeric_limits<int32_t>::min()));
  w.set("u64", MetaValue::u64(std::numeric_limits<uint64_t>::max()));
  w.set("i64", MetaValue::i64(std::numeric_limits<int64_t>::min()));
  w.set("f32", MetaValue::f32(3.14159274f));
  w.set("f64", MetaValue::f64(2.718281828459045));
  w.set("yes", MetaValue::boolean(true));
  w.set("no", MetaValue::boolean(false));
  w.set("text", MetaValue::string(std::string("h\xC3\xA9llo \xE2\x96\x81 w\0rld", 16)));
  w.set("empty", MetaValue::string(""));
  const std::vector<uint8_t> bytes = w.bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), 14u);
  EXPECT_EQ(f.metadata()[0].first, "u8");  // insertion order is kept
  EXPECT_EQ(f.require("u8").type(), ValueType::kUInt8);
  EXPECT_EQ(f.require("u8").as_u64(), 255u);
  EXPECT_EQ(f.require("i8").type(), ValueType::kInt8);
  EXPECT_EQ(f.require("i8").as_i64(), -128);
  EXPECT_EQ(f.require("u16").as_u64(), 65535u);
  EXPECT_EQ(f.require("i16").as_i64(), -32768);
  EXPECT_EQ(f.require("u32").type(), ValueType::kUInt32);
  EXPECT_EQ(f.require("u32").as_u64(), 4294967295u);
  EXPECT_EQ(f.require("i32").as_i64(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(f.require("u64").as_u64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.require("i64").as_i64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.require("f32").type(), ValueType::kFloat32);
  EXPECT_EQ(static_cast<float>(f.require("f32").as_f64()), 3.14159274f);
  EXPECT_EQ(f.require("f64").as_f64(), 2.718281828459045);
  EXPECT_TRUE(f.require("yes").as_bool());
  EXPECT_FALSE(f.require("no").as_bool());
  EXPECT_EQ(f.require("text").as_string(),
            std::string_view("h\xC3\xA9llo \xE2\x96\x81 w\0rld", 16));
  EXPECT_EQ(f.require("empty").as_string(), "");
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufWriter, ArraysOfEveryKindRoundTrip) {
  Writer w;
  w.set("u8s", MetaValue::array(ValueType::kUInt8, {MetaValue::u8(1), MetaValue::u8(200)}));
  w.set("i16s", MetaValue::array(ValueType::kInt16, {MetaValue::i16(-5), MetaValue::i16(7)}));
  w.set("u64s", MetaValue::array(ValueType::kUInt64, {MetaValue::u64(1ull << 40)}));
  w.set("i64s", MetaValue::array(ValueType::kInt64, {MetaValue::i64(-(1ll << 40))}));
  w.set("f64s", MetaValue::array(ValueType::kFloat64, {MetaValue::f64(0.5), MetaValue::f64(-2)}));
  w.set("bools",
        MetaValue::array(ValueType::kBool, {MetaValue::boolean(true), MetaValue::boolean(false)}));
  w.set("f32s", MetaValue::f32s({1.5f, -0.25f, 1e-8f}));
  w.set("i32s", MetaValue::i32s({-1, 0, 2147483647}));
  w.set("strings", MetaValue::strings({"<unk>", "", "\xE2\x96\x81the"}));
  w.set("empty", MetaValue::array(ValueType::kUInt32, {}));
  // Nested: inner arrays of different element types and lengths, and strings inside.
  w.set("nested", MetaValue::array(ValueType::kArray,
                                   {MetaValue::i32s({1, 2, 3}), MetaValue::strings({"a", "bc"}),
                                    MetaValue::array(ValueType::kArray, {MetaValue::f32s({9.0f})}),
                                    MetaValue::i32s({})}));
  const std::vector<uint8_t> bytes = w.bytes();
  const File f = File::parse(bytes);

  const Value& u8s = f.require("u8s");
  EXPECT_EQ(u8s.element_type(), ValueType::kUInt8);
  ASSERT_EQ(u8s.size(), 2u);
  EXPECT_EQ(u8s.at(1).as_u64(), 200u);
  EXPECT_EQ(f.require("i16s").as_i32s(), (std::vector<int32_t>{-5, 7}));
  EXPECT_EQ(f.require("u64s").at(0).as_u64(), 1ull << 40);
  EXPECT_EQ(f.require("i64s").at(0).as_i64(), -(1ll << 40));
  EXPECT_EQ(f.require("f64s").as_f32s(), (std::vector<float>{0.5f, -2.0f}));
  EXPECT_TRUE(f.require("bools").at(0).as_bool());
  EXPECT_FALSE(f.require("bools").at(1).as_bool());
  EXPECT_EQ(f.require("f32s").as_f32s(), (std::vector<float>{1.5f, -0.25f, 1e-8f}));
  EXPECT_EQ(f.require("i32s").as_i32s(), (std::vector<int32_t>{-1, 0, 2147483647}));
  const auto strings = f.require("strings").as_strings();
  ASSERT_EQ(strings.size(), 3u);
  EXPECT_EQ(strings[0], "<unk>");
  EXPECT_EQ(strings[1], "");
  EXPECT_EQ(strings[2], "\xE2\x96\x81the");
  EXPECT_EQ(f.require("empty").size(), 0u);
  EXPECT_EQ(f.require("empty").element_type(), ValueType::kUInt32);

  const Value& nested = f.require("nested");
  EXPECT_EQ(nested.element_type(), ValueType::kArray);
  ASSERT_EQ(nested.size(), 4u);
  EXPECT_EQ(nested.at(0).as_i32s(), (std::vector<int32_t>{1, 2, 3}));
  const auto inner_strings = nested.at(1).as_strings();
  ASSERT_EQ(inner_strings.size(), 2u);
  EXPECT_EQ(inner_strings[1], "bc");
  EXPECT_EQ(nested.at(2).at(0).as_f32s(), (std::vector<float>{9.0f}));
  EXPECT_EQ(nested.at(3).size(), 0u);
}

TEST(GgufWriter, MetaValueFromCopiesAnyValue) {
  Writer w;
  w.set("neg", MetaValue::i16(-300));
  w.set("big", MetaValue::u64(std::numeric_limits<uint64_t>::max()));
  w.set("nested",
        MetaValue::array(ValueType::kArray, {MetaValue::strings({"x"}), MetaValue::i32s({-4})}));
  const std::vector<uint8_t> original = w.bytes();
  const File f = File::parse(original);
  Writer copy;
  for (const auto& [key, value] : f.metadata()) copy.set(key, MetaValue::from(value));
  EXPECT_EQ(copy.bytes(), original);
}

TEST(GgufWriter, MixedArrayIsRejected) {
  try {
    MetaValue::array(ValueType::kInt32, {MetaValue::i32(1), MetaValue::u32(2)});
    FAIL() << "a uint32 in an int32 array must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("element 1"), std::string::npos) << e.what();
  }
}

void check_tensors(uint32_t alignment) {
  Writer w;
  if (alignment != 32) w.set_alignment(alignment);
  w.set("general.architecture", MetaValue::string("test"));
  const std::vector<float> values = ramp(64 * 3, 2.0f);
  const std::vector<TensorType> types = {TensorType::F32, TensorType::F16, TensorType::Q8_0,
                                         TensorType::Q4_0};
  for (TensorType t : types) {
    w.add_tensor(std::string("t.") + type_traits(t).name, t, {64, 3}, values);
  }
  std::vector<uint8_t> raw(7 * 4);  // an odd size, so the next tensor needs padding
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 13);
  w.add_tensor("raw", TensorType::F32, {7}, raw);
  w.add_tensor("generated", TensorType::Q8_0, {32, 5}, [](uint64_t row, float* out) {
    for (int i = 0; i < 32; ++i) out[i] = static_cast<float>(row) + 0.01f * static_cast<float>(i);
  });

  const std::vector<uint8_t> bytes = w.bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  EXPECT_EQ(bytes.size() % alignment, 0u);
  if (alignment == 32) {
    EXPECT_EQ(f.find("general.alignment"), nullptr);
  } else {
    EXPECT_EQ(f.require("general.alignment").type(), ValueType::kUInt32);
    EXPECT_EQ(f.require("general.alignment").as_u64(), alignment);
  }
  ASSERT_EQ(f.tensors().size(), types.size() + 2);
  for (size_t i = 0; i < types.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    EXPECT_EQ(t.offset % alignment, 0u) << t.name;
    EXPECT_EQ(t.type_id, static_cast<uint32_t>(types[i]));
    EXPECT_EQ(t.dims, (std::vector<uint64_t>{64, 3}));
    std::vector<uint8_t> want(t.nbytes);
    quantize_row(types[i], values.data(), want.data(), 64 * 3);
    ASSERT_EQ(0, std::memcmp(t.data, want.data(), want.size())) << t.name;
  }
  const TensorInfo* raw_t = f.find_tensor("raw");
  ASSERT_NE(raw_t, nullptr);
  EXPECT_EQ(raw_t->nbytes, raw.size());
  EXPECT_EQ(0, std::memcmp(raw_t->data, raw.data(), raw.size()));
  const TensorInfo* gen = f.find_tensor("generated");
  ASSERT_NE(gen, nullptr);
  EXPECT_EQ(gen->offset % alignment, 0u);
  std::vector<float> row(32);
  dequantize_row(TensorType::Q8_0, gen->data + 4 * 34, row.data(), 32);
  EXPECT_NEAR(row[0], 4.0f, 0.02f);
  EXPECT_NEAR(row[31], 4.31f, 0.02f);
}

TEST(GgufWriter, TensorsOfEveryTypeWithAlignment32) {
  check_tensors(32);
}
TEST(GgufWriter, TensorsOfEveryTypeWithAlignment64) {
  check_tensors(64);
}
TEST(GgufWriter, TensorsOfEveryTypeWithAlignment256) {
  check_tensors(256);
}

TEST(GgufWriter, RefusesInconsistentInput) {
  Writer w;
  auto expect_invalid = [](auto&& f, const std::string& needle) {
    try {
      f();
      FAIL() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_invalid([&] { w.set_alignment(48); }, "48");
  expect_invalid([&] { w.add_tensor("a", TensorType::Q4_0, {48, 2}, ramp(96, 1.0f)); }, "48");
  expect_invalid([&] { w.add_tensor("b", TensorType::F32, {4}, std::vector<uint8_t>(15)); }, "15");
  expect_invalid([&] { w.add_tensor("c", TensorType::F32, {4, 2}, ramp(7, 1.0f)); }, "7");
  expect_invalid([&] { w.add_tensor("d", TensorType::F32, {}, ramp(1, 1.0f)); }, "dimensions");
  w.add_tensor("e", TensorType::F32, {4}, ramp(4, 1.0f));
  expect_invalid([&] { w.add_tensor("e", TensorType::F32, {4}, ramp(4, 1.0f)); }, "'e'");
  w.add("k", MetaValue::u8(1));
  expect_invalid([&] { w.add("k", MetaValue::u8(2)); }, "'k'");
  // Failed additions leave nothing behind.
  const std::vector<uint8_t> bytes = w.bytes();
  EXPECT_EQ(File::parse(bytes).tensors().size(), 1u);
}

TEST(GgufWriter, OddFilesOnRequest) {
  Writer w(WriterOptions{.version = 2, .allow_duplicate_keys = true});
  w.add("dup", MetaValue::u32(1));
  w.add("dup", MetaValue::u32(2));
  w.add_tensor_info("ghost", 77, {5}, 96);
  const std::vector<uint8_t> bytes = w.bytes();
  uint32_t version;
  std::memcpy(&version, bytes.data() + 4, 4);
  EXPECT_EQ(version, 2u);
  EXPECT_THROW(File::parse(bytes), Error);  // the duplicate, the unknown type

  Writer w2(WriterOptions{.version = 2, .allow_duplicate_keys = true});
  w2.add("dup", MetaValue::u32(1));
  w2.add("dup", MetaValue::u32(2));
  const std::vector<uint8_t> dup = w2.bytes();
  const File lenient = File::parse(dup, {.allow_duplicate_keys = true});
  EXPECT_EQ(lenient.version(), 2u);
  EXPECT_EQ(lenient.require("dup").as_u64(), 1u);
}

TEST(GgufWriter, WriteFileMatchesBytes) {
  Writer w;
  w.set("x", MetaValue::string("y"));
  w.add_tensor("t", TensorType::Q4_0, {32, 2}, ramp(64, 1.0f));
  const std::string path =
      (std::filesystem::temp_directory_path() / "pipit_writer_test.gguf").string();
  w.write_file(path);
  EXPECT_EQ(read_file(path), w.bytes());
  std::filesystem::remove(path);
  EXPECT_THROW(w.write_file("/nonexistent-dir/x.gguf"), Error);
  EXPECT_THROW(read_file("/nonexistent-dir/x.gguf"), Error);
}

// ---- synthetic models ----

SyntheticConfig small_config() {
  SyntheticConfig c;
  c.n_vocab = 300;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_ff = 96;
  c.n_ctx = 128;
  c.seed = 42;
  return c;
}

TEST(Synthetic, HasLlamaCppKeysAndTensors) {
  SyntheticConfig c = small_config();
  c.matrix_type = TensorType::Q8_0;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.get_string("general.architecture", ""), "llama");
  EXPECT_EQ(f.get_u64("general.file_type", 99), 7u);
  EXPECT_EQ(f.get_u64("llama.vocab_size", 0), 300u);
  EXPECT_EQ(f.get_u64("llama.context_length", 0), 128u);
  EXPECT_EQ(f.get_u64("llama.embedding_length", 0), 64u);
  EXPECT_EQ(f.get_u64("llama.block_count", 0), 2u);
  EXPECT_EQ(f.get_u64("llama.feed_forward_length", 0), 96u);
  EXPECT_EQ(f.get_u64("llama.attention.head_count", 0), 4u);
  EXPECT_EQ(f.get_u64("llama.attention.head_count_kv", 0), 2u);
  EXPECT_EQ(f.get_u64("llama.rope.dimension_count", 0), 16u);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_f64("llama.rope.freq_base", 0)), 10000.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_f64("llama.attention.layer_norm_rms_epsilon", 0)),
                  1e-5f);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model", ""), "llama");
  EXPECT_EQ(f.require("tokenizer.ggml.tokens").size(), 300u);
  EXPECT_EQ(f.require("tokenizer.ggml.scores").size(), 300u);
  EXPECT_EQ(f.require("tokenizer.ggml.token_type").size(), 300u);

  struct Want {
    std::string name;
    std::vector<uint64_t> dims;
    TensorType type;
  };
  std::vector<Want> want = {{"token_embd.weight", {64, 300}, TensorType::Q8_0}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    want.push_back({p + "attn_norm.weight", {64}, TensorType::F32});
    want.push_back({p + "attn_q.weight", {64, 64}, TensorType::Q8_0});
    want.push_back({p + "attn_k.weight", {64, 32}, TensorType::Q8_0});
    want.push_back({p + "attn_v.weight", {64, 32}, TensorType::Q8_0});
    want.push_back({p + "attn_output.weight", {64, 64}, TensorType::Q8_0});
    want.push_back({p + "ffn_norm.weight", {64}, TensorType::F32});
    want.push_back({p + "ffn_gate.weight", {64, 96}, TensorType::Q8_0});
    want.push_back({p + "ffn_up.weight", {64, 96}, TensorType::Q8_0});
    want.push_back({p + "ffn_down.weight", {96, 64}, TensorType::Q8_0});
  }
  want.push_back({"output_norm.weight", {64}, TensorType::F32});
  want.push_back({"output.weight", {64, 300}, TensorType::Q8_0});
  ASSERT_EQ(f.tensors().size(), want.size());
  for (const Want& w : want) {
    const TensorInfo* t = f.find_tensor(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->dims, w.dims) << w.name;
    EXPECT_EQ(t->type_id, static_cast<uint32_t>(w.type)) << w.name;
  }
}

TEST(Synthetic, WeightsHaveTheIntendedScale) {
  SyntheticConfig c = small_config();
  c.n_embd = 256;
  c.n_ff = 512;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  auto stats = [&](const std::string& name, double& mean, double& stddev) {
    const TensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    std::vector<float> v(t->elements());
    std::memcpy(v.data(), t->data, v.size() * 4);
    double s = 0, s2 = 0;
    for (float x : v) s += x;
    mean = s / static_cast<double>(v.size());
    for (float x : v) s2 += (x - mean) * (x - mean);
    stddev = std::sqrt(s2 / static_cast<double>(v.size()));
  };
  double mean, stddev;
  stats("blk.0.ffn_up.weight", mean, stddev);
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_NEAR(stddev, 1.0 / 16.0, 0.003);  // 1/sqrt(row length 256)
  stats("blk.1.ffn_down.weight", mean, stddev);
  EXPECT_NEAR(stddev, 1.0 / std::sqrt(512.0), 0.003);
  stats("blk.0.attn_norm.weight", mean, stddev);
  EXPECT_NEAR(mean, 1.0, 0.03);
  EXPECT_NEAR(stddev, 0.1, 0.03);
  stats("output.weight", mean, stddev);
  EXPECT_NEAR(stddev, 3.0 / 16.0, 0.01);
  // Rows are independent streams, not copies of one another.
  const TensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  EXPECT_NE(0, std::memcmp(q->data, q->data + 256 * 4, 256 * 4));
  const TensorInfo* k = f.find_tensor("blk.0.attn_k.weight");
  EXPECT_NE(0, std::memcmp(q->data, k->data, 256 * 4));
}

TEST(Synthetic, SameSeedSameBytes) {
  SyntheticConfig c = small_config();
  c.matrix_type = TensorType::Q4_0;
  const std::vector<uint8_t> a = synthetic_llama(c).bytes();
  const std::vector<uint8_t> b = synthetic_llama(c).bytes();
  EXPECT_EQ(a, b);
  c.seed = 43;
  const std::vector<uint8_t> other = synthetic_llama(c).bytes();
  ASSERT_EQ(other.size(), a.size());
  EXPECT_NE(other, a);
}

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001B3ull;
  return h;
}

// The same suite runs natively and in WASM, so this pins the generator's output across
// platforms: the value was recorded from the native build. A change to the generator that
// is meant must update it (and the benchmark models will change with it).
TEST(Synthetic, BytesAreTheSameOnEveryPlatform) {
  SyntheticConfig c = small_config();
  c.matrix_type = TensorType::Q4_0;
  EXPECT_EQ(fnv1a(synthetic_llama(c).bytes()), 0x96981BB21E068D88ull);
}

TEST(Synthetic, TiedOutputHasNoOutputTensor) {
  SyntheticConfig c = small_config();
  c.tied_output = true;
  c.matrix_type = TensorType::F16;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  EXPECT_NE(f.find_tensor("output_norm.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("token_embd.weight")->type_id, static_cast<uint32_t>(TensorType::F16));
  EXPECT_EQ(f.get_u64("general.file_type", 99), 1u);
  EXPECT_EQ(f.tensors().size(), 1u + 2 * 9 + 1);
}

TEST(Synthetic, GeneratedVocabIsSentencePieceShaped) {
  Writer w;
  add_generated_vocab(w, 1000);
  const std::vector<uint8_t> bytes = w.bytes();  // the File points into these
  const File f = File::parse(bytes);
  const auto tokens = f.require("tokenizer.ggml.tokens").as_strings();
  const auto types = f.require("tokenizer.ggml.token_type").as_i32s();
  ASSERT_EQ(tokens.size(), 1000u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(tokens[3 + 0xAB], "<0xAB>");
  EXPECT_EQ(tokens[258], "<0xFF>");
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(types[100], 6);
  EXPECT_EQ(types[259], 1);
  EXPECT_EQ(std::set<std::string_view>(tokens.begin(), tokens.end()).size(), tokens.size());
  EXPECT_EQ(f.get_u64("tokenizer.ggml.bos_token_id", 0), 1u);
  EXPECT_EQ(f.get_u64("tokenizer.ggml.eos_token_id", 0), 2u);
  EXPECT_THROW(add_generated_vocab(w, 258), Error);
}

TEST(Synthetic, CopiesTheTokenizerOfAVocabFile) {
  const std::string vocab = testing::model_path("stories260K/stories260K.gguf");
  PIPIT_REQUIRE_FILE(vocab);
  SyntheticConfig c = small_config();
  c.vocab_from = vocab;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  const std::vector<uint8_t> vocab_bytes = read_file(vocab);
  const File source = File::parse(vocab_bytes);
  EXPECT_EQ(f.get_u64("llama.vocab_size", 0), 512u);
  EXPECT_EQ(f.find_tensor("token_embd.weight")->dims, (std::vector<uint64_t>{64, 512}));
  int copied = 0;
  for (const auto& [key, value] : source.metadata()) {
    if (!key.starts_with("tokenizer.")) continue;
    ++copied;
    const Value* v = f.find(key);
    ASSERT_NE(v, nullptr) << key;
    ASSERT_EQ(v->type(), value.type()) << key;
    if (value.type() == ValueType::kArray && value.element_type() == ValueType::kString) {
      EXPECT_EQ(v->as_strings(), value.as_strings()) << key;
    } else if (value.type() == ValueType::kArray) {
      EXPECT_EQ(v->as_f32s(), value.as_f32s()) << key;
    } else if (value.type() == ValueType::kString) {
      EXPECT_EQ(v->as_string(), value.as_string()) << key;
    } else {
      EXPECT_EQ(v->as_f64(), value.as_f64()) << key;
    }
  }
  EXPECT_GE(copied, 8);
  // Only tokenizer keys come over: the architecture keys are the synthetic model's own.
  EXPECT_EQ(f.get_u64("llama.block_count", 0), 2u);
}

TEST(Synthetic, RefusesBadConfigs) {
  auto refuses = [](SyntheticConfig c, const std::string& needle) {
    try {
      synthetic_llama(c);
      FAIL() << "expected a refusal mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  SyntheticConfig c = small_config();
  c.n_head = 5;
  refuses(c, "n_head");
  c = small_config();
  c.n_head_kv = 3;
  refuses(c, "n_head_kv");
  c = small_config();
  c.n_ff = 100;
  c.matrix_type = TensorType::Q4_0;
  refuses(c, "n_ff");
  c = small_config();
  c.matrix_type = TensorType::Q4_K;
  refuses(c, "Q4_K");
  c = small_config();
  c.n_layer = 0;
  refuses(c, "n_layer");
  c = small_config();
  c.vocab_from = "/nonexistent/vocab.gguf";
  refuses(c, "/nonexistent/vocab.gguf");
}

}  // namespace
}  // namespace pipit::gguf

// Inputs the fuzz targets (tests/fuzz) found to break the runtime, kept as regression tests.
// Under the sanitize tier (ASan + UBSan) each failed before its fix; elsewhere they check the
// output the fix guarantees.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf_writer.h"
#include "grammar/json_schema.h"
#include "quant/activations.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace pipit {
namespace {

// fuzz_tokenizer_bpe: invalid UTF-8 before and after a special token. The first fragment's
// words were cached under views of a scratch buffer that the second fragment rewrote (heap use
// after free), and a stale entry could also have handed back another word's ids.
TEST(FuzzRegression, BpeInvalidUtf8AcrossSpecialTokens) {
  const std::string path = testing::model_path("vocab/ggml-vocab-gpt-2.gguf");
  PIPIT_REQUIRE_FILE(path);
  const std::vector<uint8_t> bytes = gguf::read_file(path);
  const auto tok = Tokenizer::from_gguf(gguf::File::parse(bytes));
  const std::string first = "\xff\xff\xff't can't ";
  const std::string second = "I'm we'll 3.t c\xff\xff\xff\xff\xff\xff\xff[INST] Hi there";
  const std::string text = first + "<|endoftext|>" + second;
  const std::vector<TokenId> whole = tok->encode(text, false, true);
  std::vector<TokenId> pieces = tok->encode(first, false, true);
  pieces.push_back(50256);  // <|endoftext|>
  for (TokenId id : tok->encode(second, false, true)) pieces.push_back(id);
  EXPECT_EQ(whole, pieces);
  EXPECT_EQ(tok->decode(whole), tok->decode(pieces));
}

// fuzz_gguf_model: a model with NaN weights made NaN activations, whose conversion to int8
// was undefined. They quantize to 0 now; finite values are untouched.
TEST(FuzzRegression, NonFiniteActivationsQuantizeToZero) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i - 16);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[5] = std::numeric_limits<float>::infinity();
  kernels::BlockQ8_0 block;
  kernels::quantize_q8_0(x.data(), &block, 32);
  EXPECT_EQ(block.qs[3], 0);
  EXPECT_EQ(block.qs[5], 0);

  std::vector<float> finite(32);
  for (int i = 0; i < 32; ++i) finite[i] = static_cast<float>(i - 16) / 16.0f;
  kernels::quantize_q8_0(finite.data(), &block, 32);
  EXPECT_EQ(block.qs[0], -127);  // -1.0 is the largest magnitude
  EXPECT_EQ(block.qs[24], 64);   // 0.5 * 127 = 63.5 rounds to even
}

// fuzz_json_schema: invalid UTF-8 inside a schema string passed the JSON reader and broke
// the grammar compiled from it, with an error about the grammar. The reader refuses it now.
TEST(FuzzRegression, SchemaWithInvalidUtf8IsRefusedAsJson) {
  try {
    grammar::json_schema_to_gbnf("{\"enum\":[\"re\x94\",\"green\",1,null,true]}");
    FAIL() << "a schema with invalid UTF-8 compiled";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_STREQ(e.what(), "invalid JSON at line 1, column 13: the text is not valid UTF-8");
  }
}

// fuzz_gguf_model: attn_v's data offset moved onto attn_k's bytes. The loader remembers
// rearranged weights by address, handed attn_v the matrix already made for attn_k, and a
// 32-row product was written into attn_v's 16 outputs. The reader refuses shared bytes now.
TEST(FuzzRegression, TensorsSharingBytesAreRefused) {
  const auto expect_refused = [](const gguf::Writer& w, const std::string& first,
                                 const std::string& second) {
    const std::vector<uint8_t> bytes = w.bytes();
    try {
      gguf::File::parse(bytes);
      ADD_FAILURE() << "parsed a file whose tensors share bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kFormat);
      const std::string message = e.what();
      EXPECT_NE(message.find("'" + first + "'"), std::string::npos) << message;
      EXPECT_NE(message.find("'" + second + "'"), std::string::npos) << message;
      EXPECT_NE(message.find("share bytes"), std::string::npos) << message;
    }
  };
  {
    gguf::Writer w;
    w.add_tensor("blk.0.attn_k.weight", TensorType::F32, {8}, std::vector<float>(8, 1.0f));
    w.add_tensor_info("blk.0.attn_v.weight", static_cast<uint32_t>(TensorType::F32), {8}, 0);
    expect_refused(w, "blk.0.attn_k.weight", "blk.0.attn_v.weight");
  }
  {
    gguf::Writer w;  // the second lies inside the first, starting at its second half
    w.add_tensor("whole", TensorType::F32, {16}, std::vector<float>(16, 1.0f));
    w.add_tensor_info("inside", static_cast<uint32_t>(TensorType::F32), {8}, 32);
    expect_refused(w, "whole", "inside");
  }
  {
    gguf::Writer w;  // neighbours whose bytes touch are fine
    w.add_tensor("a", TensorType::F32, {8}, std::vector<float>(8, 1.0f));
    w.add_tensor("b", TensorType::F32, {8}, std::vector<float>(8, 2.0f));
    const std::vector<uint8_t> bytes = w.bytes();
    EXPECT_EQ(gguf::File::parse(bytes).tensors().size(), 2u);
  }
}

}  // namespace
}  // namespace pipit

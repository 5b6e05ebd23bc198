// Byte-level BPE and WordPiece against llama.cpp's test vectors, their pre-tokenizers and
// Unicode tables on their own, and the guarantees generation relies on (special tokens,
// end of generation, streaming whole characters, malformed and huge inputs).
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/utf8.h"
#include "test_support.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_vectors.h"

namespace pipit {
namespace {

using testing::check_vectors;
using testing::ids_string;
using testing::load_tokenizer;
using testing::LoadedTokenizer;
using testing::model_path;
using testing::RoundTrip;

constexpr const char* kNewest = "vocab/";
constexpr const char* kFeb2025 = "vocab/llama.cpp-2025-02/";
constexpr const char* kPrBranches = "vocab/extra-pr-branches/";

void check_bpe(const std::string& name, const char* dir, gguf::ParseOptions options = {}) {
  const std::string file = "ggml-vocab-" + name + ".gguf";
  const std::string vocab_dir = std::string(dir) == kPrBranches ? kPrBranches : kNewest;
  check_vectors(vocab_dir + file, dir, file, RoundTrip::kExact, options);
}

TEST(BpeVectors, Gpt2) {
  check_bpe("gpt-2", kNewest);
}
TEST(BpeVectors, Gpt2Feb2025) {
  check_bpe("gpt-2", kFeb2025);
}
TEST(BpeVectors, DeepseekCoder) {
  check_bpe("deepseek-coder", kNewest);
}
TEST(BpeVectors, DeepseekCoderFeb2025) {
  check_bpe("deepseek-coder", kFeb2025);
}
TEST(BpeVectors, DeepseekLlm) {
  check_bpe("deepseek-llm", kNewest);
}
TEST(BpeVectors, DeepseekLlmFeb2025) {
  check_bpe("deepseek-llm", kFeb2025);
}
TEST(BpeVectors, Falcon) {
  check_bpe("falcon", kNewest);
}
TEST(BpeVectors, FalconFeb2025) {
  check_bpe("falcon", kFeb2025);
}
TEST(BpeVectors, Mpt) {
  check_bpe("mpt", kNewest);
}
TEST(BpeVectors, MptFeb2025) {
  check_bpe("mpt", kFeb2025);
}
TEST(BpeVectors, Refact) {
  check_bpe("refact", kNewest);
}
TEST(BpeVectors, RefactFeb2025) {
  check_bpe("refact", kFeb2025);
}
TEST(BpeVectors, Starcoder) {
  check_bpe("starcoder", kNewest);
}
TEST(BpeVectors, StarcoderFeb2025) {
  check_bpe("starcoder", kFeb2025);
}
// The Llama 3 pre-tokenizer's only vocabulary here. The file repeats general.file_type.
TEST(BpeVectors, Dbrx) {
  check_bpe("dbrx", kPrBranches, {.allow_duplicate_keys = true});
}

TEST(WordPieceVectors, BertBge) {
  const std::string file = "ggml-vocab-bert-bge.gguf";
  check_vectors(std::string(kNewest) + file, kNewest, file, RoundTrip::kNone);
}
TEST(WordPieceVectors, BertBgeFeb2025) {
  const std::string file = "ggml-vocab-bert-bge.gguf";
  check_vectors(std::string(kNewest) + file, kFeb2025, file, RoundTrip::kNone);
}

}  // namespace
}  // namespace pipit

// Reading llama.cpp's tokenizer test vectors and the vocab GGUFs they belong to, shared by
// the tokenizer test files.
#pragma once

#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/gguf.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace pipit::testing {

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A GGUF's bytes kept alive alongside the tokenizer that was built from them.
struct LoadedTokenizer {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Tokenizer> tokenizer;
};

inline LoadedTokenizer load_tokenizer(const std::string& path, gguf::ParseOptions options = {}) {
  LoadedTokenizer l;
  l.bytes = read_bytes(path);
  l.tokenizer = Tokenizer::from_gguf(gguf::File::parse(l.bytes, options));
  return l;
}

// llama.cpp's test-tokenizer-0 format: inputs separated by a marker line, one line of
// space-separated ids per input.
struct TokenizerVector {
  std::string text;
  std::vector<TokenId> ids;
};

inline std::vector<TokenizerVector> read_vectors(const std::string& inp_path,
                                                 const std::string& out_path) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::string inp = read_text(inp_path);
  std::vector<std::string> texts;
  for (size_t pos; (pos = inp.find(sep)) != std::string::npos; inp.erase(0, pos + sep.size())) {
    texts.push_back(inp.substr(0, pos));
  }
  std::istringstream out(read_text(out_path));
  std::vector<TokenizerVector> vectors;
  std::string line;
  for (const std::string& text : texts) {
    if (!std::getline(out, line)) break;
    TokenizerVector v{text, {}};
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) v.ids.push_back(id);
    vectors.push_back(std::move(v));
  }
  EXPECT_EQ(vectors.size(), texts.size()) << out_path << " has fewer lines than inputs";
  return vectors;
}

inline std::string ids_string(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += " " + std::to_string(id);
  return s;
}

enum class RoundTrip {
  kExact,  // decode(encode(text)) == text for every vector
  kNone,   // the tokenizer normalises (WordPiece): the test checks decoding separately
};

// Every vector of `vector_dir + vocab_file` encodes as llama.cpp's test-tokenizer-0 calls it
// (no BOS, special tokens not parsed) to exactly its ids. Prints and records the pass count.
inline void check_vectors(const std::string& vocab_path, const std::string& vector_dir,
                          const std::string& vocab_file, RoundTrip round_trip,
                          gguf::ParseOptions options = {}) {
  const std::string gguf_path = model_path(vocab_path);
  const std::string inp = model_path(vector_dir + vocab_file + ".inp");
  PIPIT_REQUIRE_FILE(gguf_path);
  PIPIT_REQUIRE_FILE(inp);
  const LoadedTokenizer l = load_tokenizer(gguf_path, options);
  const std::vector<TokenizerVector> vectors =
      read_vectors(inp, model_path(vector_dir + vocab_file + ".out"));
  ASSERT_FALSE(vectors.empty());
  size_t passed = 0, round_trips = 0;
  for (const TokenizerVector& v : vectors) {
    const std::vector<TokenId> got = l.tokenizer->encode(v.text, false, false);
    if (got == v.ids) {
      ++passed;
    } else {
      ADD_FAILURE() << "'" << v.text << "'\n  llama.cpp:" << ids_string(v.ids)
                    << "\n  pipit:    " << ids_string(got);
    }
    if (round_trip == RoundTrip::kNone) continue;
    const std::string back = l.tokenizer->decode(got);
    if (back == v.text) {
      ++round_trips;
    } else {
      ADD_FAILURE() << "decode(encode('" << v.text << "')) gave '" << back << "'";
    }
  }
  std::cout << "[ vectors  ] " << vector_dir << vocab_file << ": " << passed << "/"
            << vectors.size() << " encode";
  if (round_trip == RoundTrip::kExact) {
    std::cout << ", " << round_trips << "/" << vectors.size() << " round trip";
  }
  std::cout << "\n";
  ::testing::Test::RecordProperty("encode_passed",
                                  std::to_string(passed) + "/" + std::to_string(vectors.size()));
}

}  // namespace pipit::testing

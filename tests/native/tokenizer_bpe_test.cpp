// Byte-level BPE and WordPiece against llama.cpp's test vectors, their pre-tokenizers and
// Unicode tables on their own, and the guarantees generation relies on (special tokens,
// end of generation, streaming whole characters, malformed and huge inputs).
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

// Vectors whose vocab GGUF could not be obtained here (PROVENANCE.md, section 4: their
// blobs exceed what the snapshots hold). They run as soon as the file is put in place.
struct MissingVocab {
  const char* name;
  const char* dir;
};

class VectorsWithoutVocab : public ::testing::TestWithParam<MissingVocab> {};

TEST_P(VectorsWithoutVocab, RunWhenTheFileExists) {
  const MissingVocab m = GetParam();
  const std::string file = std::string("ggml-vocab-") + m.name + ".gguf";
  if (!std::filesystem::exists(model_path(std::string(kNewest) + file))) {
    GTEST_SKIP() << "no " << file << " here (not obtainable, see PROVENANCE.md section 4): the "
                 << m.dir << file << ".inp vectors cannot run";
  }
  check_vectors(std::string(kNewest) + file, m.dir, file, RoundTrip::kExact);
}

INSTANTIATE_TEST_SUITE_P(
    Bpe, VectorsWithoutVocab,
    ::testing::Values(MissingVocab{"qwen2", kNewest}, MissingVocab{"qwen2", kFeb2025},
                      MissingVocab{"llama-bpe", kNewest}, MissingVocab{"llama-bpe", kFeb2025},
                      MissingVocab{"command-r", kNewest}, MissingVocab{"command-r", kFeb2025},
                      MissingVocab{"deepseek-r1-qwen", kFeb2025},
                      MissingVocab{"roberta-bpe", kFeb2025}, MissingVocab{"smollm", kPrBranches}),
    [](const ::testing::TestParamInfo<MissingVocab>& info) {
      std::string n =
          std::string(info.param.name) + (std::string(info.param.dir) == kFeb2025      ? "_Feb2025"
                                          : std::string(info.param.dir) == kPrBranches ? "_PrBranch"
                                                                                       : "");
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

// ---- Unicode tables ----

TEST(UnicodeTables, CategoriesAcrossScripts) {
  using namespace unicode;
  const auto major = [](uint32_t cp) { return flags(cp) & ~kWhitespace; };
  EXPECT_EQ(major('A'), kLetter);
  EXPECT_EQ(major(0xE9), kLetter);     // é
  EXPECT_EQ(major(0x0436), kLetter);   // ж
  EXPECT_EQ(major(0x4E2D), kLetter);   // 中, inside the "CJK Ideograph, First>/Last>" range
  EXPECT_EQ(major(0x20000), kLetter);  // CJK extension B, another range
  EXPECT_EQ(major(0xAC00), kLetter);   // 가, the Hangul syllable range
  EXPECT_EQ(major('7'), kNumber);
  EXPECT_EQ(major(0x0663), kNumber);       // ٣ Arabic-Indic digit (Nd)
  EXPECT_EQ(major(0x216B), kNumber);       // Ⅻ (Nl)
  EXPECT_EQ(major(0xBD), kNumber);         // ½ (No)
  EXPECT_EQ(major(0x0301), kMark);         // combining acute (Mn)
  EXPECT_EQ(major(0x0947), kMark);         // Devanagari vowel sign E (Mc)
  EXPECT_EQ(major(0xBF), kPunctuation);    // ¿
  EXPECT_EQ(major(0x3001), kPunctuation);  // 、
  EXPECT_EQ(major('$'), kSymbol);
  EXPECT_EQ(major('~'), kSymbol);
  EXPECT_EQ(major(0x20AC), kSymbol);   // €
  EXPECT_EQ(major(0x1F999), kSymbol);  // 🦙
  EXPECT_EQ(major(0x200B), kControl);  // zero width space is a format character, not a space
  EXPECT_EQ(major(0xE000), kControl);  // private use, a range
  EXPECT_EQ(major(0x0378), 0);         // unassigned
  EXPECT_EQ(flags(0x110000), 0);
  for (uint32_t ws :
       {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2007u, 0x2028u, 0x3000u}) {
    EXPECT_TRUE(flags(ws) & kWhitespace) << std::hex << ws;
  }
  for (uint32_t not_ws : {0x200Bu, 0x180Eu, 0xFEFFu, 0x61u}) {
    EXPECT_FALSE(flags(not_ws) & kWhitespace) << std::hex << not_ws;
  }
}

TEST(UnicodeTables, LowercaseAndDecomposition) {
  using namespace unicode;
  EXPECT_EQ(to_lower('Q'), uint32_t{'q'});
  EXPECT_EQ(to_lower(0x03A3), 0x03C3u);        // Σ σ
  EXPECT_EQ(to_lower(0x0130), uint32_t{'i'});  // İ
  EXPECT_EQ(to_lower(0x0416), 0x0436u);        // Ж ж
  EXPECT_EQ(to_lower(0x4E2D), 0x4E2Du);
  EXPECT_EQ(decomposition_first(0xE9), uint32_t{'e'});    // é
  EXPECT_EQ(decomposition_first(0x01D6), uint32_t{'u'});  // ǖ, two levels deep
  EXPECT_EQ(decomposition_first(0x1E69), uint32_t{'s'});  // ṩ
  EXPECT_EQ(decomposition_first(0xAC01), 0x1100u);        // 각: Hangul, by formula
  EXPECT_EQ(decomposition_first('a'), uint32_t{'a'});
}

TEST(UnicodeTables, DecodeReplacesEachBadByte) {
  std::vector<uint32_t> cps, offsets;
  std::string clean;
  EXPECT_TRUE(unicode::decode("a\xC3\xA9", cps, offsets, clean));
  EXPECT_EQ(cps, (std::vector<uint32_t>{'a', 0xE9}));
  EXPECT_EQ(offsets, (std::vector<uint32_t>{0, 1, 3}));
  // A lone lead byte, an overlong '/', a surrogate and a stray continuation byte.
  EXPECT_FALSE(unicode::decode("x\xE2(\xC0\xAF\xED\xA0\x80\x80", cps, offsets, clean));
  EXPECT_EQ(cps.size(), 9u);
  EXPECT_EQ(cps[1], 0xFFFDu);
  EXPECT_EQ(cps[2], uint32_t{'('});
  std::string expected = "x\xEF\xBF\xBD(";
  for (int i = 0; i < 6; ++i) expected += "\xEF\xBF\xBD";
  EXPECT_EQ(clean, expected);
  EXPECT_EQ(offsets.back(), clean.size());
}

// ---- pre-tokenizers ----

std::vector<std::string> words(tokenizer_detail::PreTokenizer kind, const std::string& text) {
  std::vector<uint32_t> cps, offsets, ends;
  std::string clean;
  EXPECT_TRUE(unicode::decode(text, cps, offsets, clean));
  tokenizer_detail::pre_tokenize(kind, cps, ends);
  std::vector<std::string> out;
  uint32_t begin = 0;
  for (uint32_t end : ends) {
    out.push_back(text.substr(offsets[begin], offsets[end] - offsets[begin]));
    begin = end;
  }
  return out;
}

using tokenizer_detail::PreTokenizer;
using Words = std::vector<std::string>;

TEST(PreTokenizers, Gpt2) {
  EXPECT_EQ(words(PreTokenizer::kGpt2, "Hello world's  123 \xC2\xBD \xC2\xBFQu\xC3\xA9?\n\n  x"),
            (Words{"Hello", " world", "'s", " ", " 123", " \xC2\xBD", " \xC2\xBF", "Qu\xC3\xA9",
                   "?", "\n\n ", " x"}));
  // Devanagari vowel signs and the virama are marks, not letters: they split words.
  EXPECT_EQ(words(PreTokenizer::kGpt2,
                  "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4"
                  "\xA4\xE0\xA5\x87"),
            (Words{"\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8", "\xE0\xA5\x8D", "\xE0\xA4\xA4",
                   "\xE0\xA5\x87"}));
  EXPECT_EQ(words(PreTokenizer::kGpt2, "\xD0\x9F\xD1\x80\xD0\xB8 \xD0\xBC\xD0\xB8\xD1\x80"),
            (Words{"\xD0\x9F\xD1\x80\xD0\xB8", " \xD0\xBC\xD0\xB8\xD1\x80"}));  // При мир
  EXPECT_EQ(words(PreTokenizer::kGpt2, "'S're"), (Words{"'", "S", "'re"}));     // case-sensitive
  EXPECT_EQ(words(PreTokenizer::kGpt2, ""), Words{});
}

TEST(PreTokenizers, Llama3AndQwen2) {
  const std::string text = "I'M 12345 abc\r\n\n  def  !!\n";
  EXPECT_EQ(words(PreTokenizer::kLlama3, text),
            (Words{"I", "'M", " ", "123", "45", " abc", "\r\n\n", " ", " def", " ", " !!\n"}));
  EXPECT_EQ(words(PreTokenizer::kQwen2, text),
            (Words{"I", "'M", " ", "1", "2", "3", "4", "5", " abc", "\r\n\n", " ", " def", " ",
                   " !!\n"}));
  // A punctuation mark leads the letters that follow it.
  EXPECT_EQ(words(PreTokenizer::kLlama3, "(hi)"), (Words{"(hi", ")"}));
}

TEST(PreTokenizers, DefaultSplitsPunctuationAndDigitTriples) {
  EXPECT_EQ(words(PreTokenizer::kDefault, "Hello!! 12345 x"),
            (Words{"Hello", "!!", " ", "123", "45", " x"}));
}

TEST(PreTokenizers, FalconAndStarcoder) {
  EXPECT_EQ(words(PreTokenizer::kFalcon, "a=b`c 1234"),
            (Words{"a", "=", "b", "`", "c", " ", "123", "4"}));
  EXPECT_EQ(words(PreTokenizer::kStarcoder, "x12 y"), (Words{"x", "1", "2", " y"}));
}

TEST(PreTokenizers, Deepseek) {
  EXPECT_EQ(
      words(PreTokenizer::kDeepseekLlm, "Hello \xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x80ok 12\n  "),
      (Words{"Hello", " ", "\xE4\xB8\x96\xE7\x95\x8C", "\xE3\x80\x80ok", " ", "12", "\n", "  "}));
  // U+3000 lies in the CJK range of the pattern but llama.cpp sees it as whitespace there.
  EXPECT_EQ(words(PreTokenizer::kDeepseekLlm, "\xE4\xB8\x96\xE3\x80\x80\xE7\x95\x8C"),
            (Words{"\xE4\xB8\x96", "\xE3\x80\x80", "\xE7\x95\x8C"}));
  EXPECT_EQ(words(PreTokenizer::kDeepseekCoder, "foo(bar) 42"),
            (Words{"foo", "(", "bar", ")", " ", "4", "2"}));
}

TEST(PreTokenizers, NamesAndTheirRules) {
  using tokenizer_detail::pre_tokenizer_from_name;
  EXPECT_EQ(pre_tokenizer_from_name("").kind, PreTokenizer::kDefault);
  const auto llama3 = pre_tokenizer_from_name("llama-bpe");
  EXPECT_EQ(llama3.kind, PreTokenizer::kLlama3);
  EXPECT_TRUE(llama3.ignore_merges);
  EXPECT_TRUE(llama3.add_bos);
  const auto dbrx = pre_tokenizer_from_name("dbrx");
  EXPECT_EQ(dbrx.kind, PreTokenizer::kLlama3);
  EXPECT_FALSE(dbrx.ignore_merges);
  EXPECT_FALSE(dbrx.add_bos);
  EXPECT_EQ(pre_tokenizer_from_name("deepseek-r1-qwen").kind, PreTokenizer::kQwen2);
  EXPECT_EQ(pre_tokenizer_from_name("smollm").kind, PreTokenizer::kStarcoder);
  EXPECT_EQ(pre_tokenizer_from_name("mpt").kind, PreTokenizer::kGpt2);
  try {
    pre_tokenizer_from_name("klingon");
    FAIL() << "an unknown pre-tokenizer was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("'klingon'"), std::string::npos) << e.what();
  }
}

// ---- the GPT-2 vocabulary ----

class Gpt2 : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = model_path("vocab/ggml-vocab-gpt-2.gguf");
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "model file not found: " << path;
    loaded_ = load_tokenizer(path);
  }
  const Tokenizer& tok() const { return *loaded_.tokenizer; }
  std::vector<TokenId> enc(const std::string& s, bool parse_special = false) const {
    return tok().encode(s, false, parse_special);
  }
  LoadedTokenizer loaded_;
};

TEST_F(Gpt2, KnownIdsAndSpecialTokens) {
  EXPECT_EQ(enc("Hello world"), (std::vector<TokenId>{15496, 995}));
  EXPECT_EQ(tok().vocab().eos, 50256);
  EXPECT_TRUE(tok().vocab().is_end_of_generation(50256));
  EXPECT_FALSE(tok().vocab().add_bos);
  EXPECT_EQ(tok().encode("", true, false), (std::vector<TokenId>{50256}));
  EXPECT_TRUE(enc("").empty());
  // <|endoftext|> is a control token: only parse_special turns its text into it.
  const std::vector<TokenId> parsed = enc("a<|endoftext|>b", true);
  EXPECT_EQ(parsed, (std::vector<TokenId>{64, 50256, 65}));
  const std::vector<TokenId> plain = enc("a<|endoftext|>b");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0) << ids_string(plain);
  EXPECT_EQ(tok().decode(plain), "a<|endoftext|>b");
  EXPECT_EQ(tok().decode(parsed), "ab");  // control tokens show nothing
  EXPECT_EQ(tok().token_bytes(15496), "Hello");
  EXPECT_EQ(tok().token_bytes(995), " world");
  EXPECT_THROW(tok().token_bytes(50257), Error);
}

// Bytes of one character spread over several tokens; the stream holds them back until the
// character is whole, and the pieces join to the text.
TEST_F(Gpt2, StreamingKeepsCharactersWhole) {
  const std::string text =
      "Hi \xF0\x9F\xA6\x99 \xC3\xBC \xE4\xB8\xAD\xE6\x96\x87! \xE0\xA4\xA8\xE0\xA5\x8D";
  const std::vector<TokenId> ids = enc(text);
  StreamingDetokenizer s(tok());
  std::string joined;
  int held_back = 0;
  for (TokenId id : ids) {
    const std::string piece = s.push(id);
    EXPECT_EQ(utf8::sanitize(piece), piece) << "a piece split a character:" << ids_string(ids);
    if (piece.empty()) ++held_back;
    joined += piece;
  }
  joined += s.flush();
  EXPECT_EQ(joined, text);
  EXPECT_GT(held_back, 0) << "no token ended inside a character:" << ids_string(ids);
}

// Malformed UTF-8 is tokenized as U+FFFD per bad byte (what llama.cpp does), so decoding
// shows U+FFFD where those bytes were.
TEST_F(Gpt2, MalformedInput) {
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(enc("a\xFF"
                "b"),
            enc("a" + replacement + "b"));
  EXPECT_EQ(tok().decode(enc("a\xFF"
                             "b\xC3(")),
            "a" + replacement + "b" + replacement + "(");
  EXPECT_EQ(tok().decode(enc("\xE2\x82")), replacement + replacement);
}

// A megabyte of varied text (the per-call word cache), and a megabyte-long single word (the
// merge heap), both come back unchanged.
TEST_F(Gpt2, MegabyteInputs) {
  std::string varied;
  const std::string pieces[] = {
      "Hello, world! ", "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE ", "\xF0\x9F\xA6\x99.cpp ", "3333 ",
      "\n\t ",          "\xE6\x88\x91\xE6\x83\xB3 apple ",   "can't won't "};
  std::mt19937 rng(7);
  while (varied.size() < (1u << 20)) varied += pieces[rng() % std::size(pieces)];
  const std::string same(1u << 20, 'a');
  for (const std::string& text : {varied, same}) {
    const std::vector<TokenId> ids = enc(text);
    EXPECT_LT(ids.size(), text.size());
    EXPECT_EQ(tok().decode(ids), text);
  }
}

// ---- other vocabularies ----

// GPT-NeoX's file has no tokenizer.ggml.pre, so llama.cpp (and pipit) use its "default"
// pre-tokenizer: punctuation runs, GPT-2's pattern, numbers, then digit triples. It has no
// vectors; its tokens must still carry every test string through unchanged.
TEST(BpeGptNeox, DefaultPreTokenizerAndRoundTrip) {
  const std::string path = model_path("vocab/ggml-vocab-gpt-neox.gguf");
  const std::string inp = model_path("vocab/ggml-vocab-gpt-2.gguf.inp");
  PIPIT_REQUIRE_FILE(path);
  PIPIT_REQUIRE_FILE(inp);
  const LoadedTokenizer l = load_tokenizer(path);
  const Tokenizer& t = *l.tokenizer;
  for (const auto& v : testing::read_vectors(inp, model_path("vocab/ggml-vocab-gpt-2.gguf.out"))) {
    EXPECT_EQ(t.decode(t.encode(v.text, false, false)), v.text);
  }
  const auto enc = [&](const std::string& s) { return t.encode(s, false, false); };
  std::vector<TokenId> split = enc(" ");
  for (const char* part : {"123", "45"}) {
    const std::vector<TokenId> ids = enc(part);
    split.insert(split.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(enc(" 12345"), split);
}

TEST(BpeDbrx, Llama3StyleVocabulary) {
  const std::string path = model_path("vocab/extra-pr-branches/ggml-vocab-dbrx.gguf");
  PIPIT_REQUIRE_FILE(path);
  const LoadedTokenizer l = load_tokenizer(path, {.allow_duplicate_keys = true});
  const Tokenizer& t = *l.tokenizer;
  EXPECT_EQ(t.vocab().size(), 100352);
  EXPECT_TRUE(t.vocab().is_end_of_generation(100257));  // <|endoftext|>
  const std::vector<TokenId> ids = t.encode("<|im_start|>user\nhi<|im_end|>", false, true);
  EXPECT_EQ(ids.size(), 5u) << ids_string(ids);
  EXPECT_TRUE(t.vocab().is_end_of_generation(ids.back())) << ids_string(ids);
}

TEST(WordPiece, BertNormalisesAndWraps) {
  const std::string path = model_path("vocab/ggml-vocab-bert-bge.gguf");
  PIPIT_REQUIRE_FILE(path);
  const LoadedTokenizer l = load_tokenizer(path);
  const Tokenizer& t = *l.tokenizer;
  // add_bos wraps in [CLS] ... [SEP], as llama.cpp's add_special does for BERT.
  EXPECT_EQ(t.encode("Hello, World!", true, false),
            (std::vector<TokenId>{101, 7592, 1010, 2088, 999, 102}));
  // Lowercased, accents stripped, punctuation split off: decoding shows the normal form.
  EXPECT_EQ(t.encode("Caf\xC3\xA9", false, false), t.encode("cafe", false, false));
  EXPECT_EQ(t.decode(t.encode("Hello, World!", false, false)), "hello , world !");
  EXPECT_EQ(t.decode(t.encode("unaffable", false, false)), "unaffable");
  EXPECT_TRUE(t.encode(" \t\n", false, false).empty());
  EXPECT_TRUE(t.encode("", false, false).empty());
  EXPECT_EQ(t.encode("", true, false), (std::vector<TokenId>{101, 102}));
  // Malformed bytes become U+FFFD, which BERT's normalisation drops (the word stays whole).
  EXPECT_EQ(t.encode("un\xFF"
                     "affable",
                     false, false),
            t.encode("unaffable", false, false));
  EXPECT_EQ(t.encode("\xF0\x9F\xA6\x99", false, false), (std::vector<TokenId>{100}));  // [UNK]
}

// The GPT-2-vocabulary models of ../shared/reference: llama.cpp's prompt ids (as it tokenized
// them, BOS rules included) and the text it printed for the generated ids.
TEST(BpeReference, SyntheticGpt2PromptsAndGeneratedText) {
  int checked = 0;
  for (const char* stem : {"synth-gpt2-F16", "synth-gpt2-Q8_0"}) {
    const std::string model = model_path(std::string("synthetic/") + stem + ".gguf");
    const std::string ref_path = testing::models_dir() + "/../reference/" + stem + ".json";
    if (!std::filesystem::exists(model) || !std::filesystem::exists(ref_path)) continue;
    const LoadedTokenizer l = load_tokenizer(model);
    const Tokenizer& t = *l.tokenizer;
    std::ifstream in(ref_path);
    const nlohmann::json ref = nlohmann::json::parse(in);
    EXPECT_EQ(t.vocab().add_bos, ref["add_bos"].get<bool>());
    for (const auto& run : ref["runs"]) {
      const std::string prompt = run["prompt"].get<std::string>();
      std::vector<TokenId> ids = t.encode(prompt, t.vocab().add_bos, false);
      // An empty prompt is BOS alone, which generation (not the tokenizer) inserts.
      if (run["bos_inserted_for_empty_prompt"].get<bool>()) ids.insert(ids.begin(), t.vocab().bos);
      EXPECT_EQ(ids, run["prompt_tokens"].get<std::vector<TokenId>>()) << "'" << prompt << "'";
      const auto generated = run["generated_tokens"].get<std::vector<TokenId>>();
      EXPECT_EQ(t.decode(generated, TextPosition::kContinuation),
                utf8::sanitize(run["generated_text"].get<std::string>()))
          << stem << " '" << prompt << "'";
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "no synthetic gpt2 model with a reference here";
}

}  // namespace
}  // namespace pipit

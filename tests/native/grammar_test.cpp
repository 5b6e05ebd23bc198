// GBNF parsing, the grammar matcher over bytes, and token masking against brute force.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace pipit::grammar {
namespace {

Matcher matcher_for(const std::string& gbnf) {
  return Matcher(std::make_shared<const Grammar>(parse_gbnf(gbnf)));
}

// Whether the whole of `text` is a sentence of the grammar, fed in one piece.
bool matches(const std::string& gbnf, const std::string& text) {
  Matcher m = matcher_for(gbnf);
  return m.advance(text) && m.can_end();
}

// The same, one byte at a time (every byte boundary is a token boundary).
bool matches_bytewise(const std::string& gbnf, const std::string& text) {
  Matcher m = matcher_for(gbnf);
  for (char c : text) {
    if (!m.advance(std::string(1, c))) return false;
  }
  return m.can_end();
}

std::string error_of(const std::string& gbnf) {
  try {
    parse_gbnf(gbnf);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    return e.what();
  }
  return "(no error)";
}

TEST(Gbnf, LiteralsAlternativesAndGroups) {
  const std::string g = R"(root ::= "ab" ("c" | "de")  # a comment
)";
  EXPECT_TRUE(matches(g, "abc"));
  EXPECT_TRUE(matches(g, "abde"));
  EXPECT_FALSE(matches(g, "abd"));
  EXPECT_FALSE(matches(g, "abcc"));
  EXPECT_FALSE(matches(g, "ab"));
  Matcher m = matcher_for(g);
  ASSERT_TRUE(m.advance("ab"));
  EXPECT_FALSE(m.can_end());
  ASSERT_TRUE(m.advance("c"));
  EXPECT_TRUE(m.done());
}

TEST(Gbnf, RepetitionOperators) {
  const std::string g = "root ::= \"a\"* \"b\"+ \"c\"? [0-9]{2,3} \"x\"{2} \"y\"{1,}\n";
  EXPECT_TRUE(matches(g, "b12xxy"));
  EXPECT_TRUE(matches(g, "aaabbc123xxyyy"));
  EXPECT_FALSE(matches(g, "12xxy"));     // b+ needs one
  EXPECT_FALSE(matches(g, "b1xxy"));     // {2,3} needs two digits
  EXPECT_FALSE(matches(g, "b1234xxy"));  // and at most three
  EXPECT_FALSE(matches(g, "b12xy"));     // {2} exactly
  EXPECT_FALSE(matches(g, "b12xx"));     // {1,} at least one
  EXPECT_TRUE(matches("root ::= (\"ab\"){0,2}\n", ""));
  EXPECT_TRUE(matches("root ::= (\"ab\"){0,2}\n", "abab"));
  EXPECT_FALSE(matches("root ::= (\"ab\"){0,2}\n", "ababab"));
}

TEST(Gbnf, CharacterClassesRangesNegationAndEscapes) {
  const std::string g = R"(root ::= [a-cx] [^0-9\n] [\x41-\x43] "\u00e9\t" [\]\\-] .
)";
  EXPECT_TRUE(matches(g, "a!B\xC3\xA9\t]\xE2\x82\xAC"));  // é, then . takes the euro sign
  EXPECT_TRUE(matches(g, "xzC\xC3\xA9\t-z"));
  EXPECT_FALSE(matches(g, "d!B\xC3\xA9\t]z"));
  EXPECT_FALSE(matches(g, "a5B\xC3\xA9\t]z"));
  EXPECT_FALSE(matches(g, "a\nB\xC3\xA9\t]z"));
  EXPECT_FALSE(matches(g, "a!D\xC3\xA9\t]z"));
  EXPECT_FALSE(matches(g, "a!B\xC3\xA9\tqz"));
}

TEST(Gbnf, RulesRecursionAndMultiLineGroups) {
  const std::string g = R"g(
# Balanced parentheses and sums, with rules defined after use.
root ::= expr
expr ::= term ("+" term)*
term ::= num | "(" expr ")"
num  ::= [0-9]+
list ::= (
    "a" |
    "b"
  )
)g";
  EXPECT_TRUE(matches(g, "1+(2+(3))+45"));
  EXPECT_FALSE(matches(g, "1+(2"));
  EXPECT_FALSE(matches(g, "1++2"));
}

TEST(Gbnf, MultiByteCharactersSplitAcrossTokens) {
  const std::string g = "root ::= [\\u0400-\\u04FF]+ \"!\"\n";  // Cyrillic
  EXPECT_TRUE(matches_bytewise(g, "\xD0\x96\xD0\x96!"));        // ЖЖ!
  Matcher m = matcher_for(g);
  EXPECT_TRUE(m.accepts("\xD0"));       // could still become a Cyrillic letter
  EXPECT_FALSE(m.accepts("\xC3"));      // U+00C0..U+00FF: never
  EXPECT_FALSE(m.accepts("\xE2\x82"));  // U+2080..U+20BF: never
  EXPECT_FALSE(m.accepts("\x80"));      // not UTF-8 at all
  ASSERT_TRUE(m.advance("\xD0"));
  EXPECT_FALSE(m.can_end());  // a character is pending
  EXPECT_TRUE(m.accepts("\x96!"));
  EXPECT_FALSE(m.accepts("!"));
}

TEST(Gbnf, ErrorsNameLineAndColumn) {
  EXPECT_NE(error_of("root ::= \"a\"\nfoo ::= [a-\n")
                .find("line 2, column 9: unterminated character class"),
            std::string::npos)
      << error_of("root ::= \"a\"\nfoo ::= [a-\n");
  EXPECT_NE(error_of("root ::= \"abc\n").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("root ::= ( \"a\" \n").find("unclosed '('"), std::string::npos);
  EXPECT_NE(error_of("root = \"a\"\n").find("line 1, column 6: expected '::='"), std::string::npos)
      << error_of("root = \"a\"\n");
  EXPECT_NE(error_of("root ::= \"\\q\"\n").find("unknown escape"), std::string::npos);
  EXPECT_NE(error_of("root ::= [z-a]\n").find("end before its start"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{3,2}\n").find("n < m"), std::string::npos);
  EXPECT_NE(error_of("root ::= []\n").find("empty character class"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\" ]\n").find("unexpected ']'"), std::string::npos);
}

TEST(Gbnf, UndefinedRulesMissingRootAndLeftRecursionAreRefused) {
  EXPECT_NE(
      error_of("root ::= item\n  \nx ::= \"a\"\n").find("line 1, column 10: undefined rule 'item'"),
      std::string::npos)
      << error_of("root ::= item\n");
  EXPECT_NE(error_of("start ::= \"a\"\n").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"\n").find("defined twice"), std::string::npos);
  const std::string left =
      error_of("root ::= expr\nexpr ::= expr \"+\" num | num\nnum ::= [0-9]\n");
  EXPECT_NE(left.find("left-recursive"), std::string::npos) << left;
  // Through a rule that can match nothing, too.
  const std::string hidden = error_of("root ::= opt root \"x\" | \"y\"\nopt ::= \"a\"?\n");
  EXPECT_NE(hidden.find("left-recursive"), std::string::npos) << hidden;
}

// A grammar whose parses of the same text double with every "(" (each nested `a` can belong to
// either repetition): fuzz_gbnf found one that ran a step for a minute and then out of memory.
// Past the matcher's bound it is refused with an error that says why; below it, it works.
TEST(Gbnf, GrammarsTooAmbiguousToFollowAreRefused) {
  const std::string gbnf = "root ::= a\na ::= \"(\" a* a* \")\"\n";
  EXPECT_TRUE(matches(gbnf, "((()())())"));
  Matcher m = matcher_for(gbnf);
  EXPECT_TRUE(m.advance(std::string(6, '(')));
  try {
    m.advance(std::string(40, '('));
    ADD_FAILURE() << "40 more '(' were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("too ambiguous"), std::string::npos) << e.what();
  }
}

// ---- masking over a real vocabulary, checked against token-by-token brute force ----

struct Vocabulary {
  std::vector<uint8_t> file;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<std::string> bytes;
};

std::unique_ptr<Vocabulary> load_vocab(const std::string& path) {
  auto v = std::make_unique<Vocabulary>();
  std::ifstream in(path, std::ios::binary);
  v->file.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  v->tokenizer = Tokenizer::from_gguf(gguf::File::parse(v->file));
  for (TokenId id = 0; id < v->tokenizer->vocab().size(); ++id) {
    v->bytes.push_back(v->tokenizer->token_bytes(id));
  }
  return v;
}

void expect_mask_matches_brute_force(Matcher& m, const TokenTrie& trie,
                                     const std::vector<std::string>& bytes, int* allowed_count) {
  std::vector<uint8_t> allowed;
  m.mask(trie, allowed);
  ASSERT_EQ(allowed.size(), bytes.size());
  int count = 0;
  for (size_t id = 0; id < bytes.size(); ++id) {
    const bool expected = !bytes[id].empty() && m.accepts(bytes[id]);
    ASSERT_EQ(allowed[id] != 0, expected) << "token " << id << " '" << bytes[id] << "'";
    count += expected;
  }
  *allowed_count = count;
}

TEST(GrammarMask, AgreesWithBruteForceOverTheLlamaVocabulary) {
  const std::string path = pipit::testing::model_path("vocab/ggml-vocab-llama-spm.gguf");
  PIPIT_REQUIRE_FILE(path);
  const auto vocab = load_vocab(path);
  const TokenTrie trie(vocab->bytes);
  const std::string schema = R"({"type":"object","properties":{
      "name":{"type":"string"},"age":{"type":"integer"},
      "tags":{"type":"array","items":{"enum":["a","b\u00e9"]}}},"required":["name"]})";
  Matcher m(std::make_shared<const Grammar>(parse_gbnf(json_schema_to_gbnf(schema))));
  // Walk a valid document in pieces, checking the mask at each point: at the start, inside a
  // string (almost everything allowed), inside a number, inside a multi-byte character.
  const std::vector<std::string> pieces = {"{",        "\"name\"", ": \"Zo",
                                           "\xC3",     "\xA9",     "\", ",
                                           "\"age\":", " 4",       "2, \"tags\": [\"b",
                                           "\xC3",     "\xA9\"]",  "}"};
  std::vector<int> counts;
  for (const std::string& piece : pieces) {
    int count = 0;
    expect_mask_matches_brute_force(m, trie, vocab->bytes, &count);
    counts.push_back(count);
    ASSERT_TRUE(m.advance(piece)) << piece;
  }
  EXPECT_TRUE(m.done());
  EXPECT_GT(counts[3], 20000);  // in a string nearly every token fits
  EXPECT_LT(counts[0], 10);     // at the start only '{' (and tokens that begin with it)
}

// Masks take whole trie subtrees at once where every byte below loops back to the state
// (plain text inside strings): random documents, stepped by random allowed tokens, must still
// get exactly the brute-force mask, in and out of strings, escapes and multi-byte characters.
TEST(GrammarMask, RandomDocumentsAgreeWithBruteForce) {
  const std::string path = pipit::testing::model_path("vocab/ggml-vocab-llama-spm.gguf");
  PIPIT_REQUIRE_FILE(path);
  const auto vocab = load_vocab(path);
  const TokenTrie trie(vocab->bytes);
  const std::vector<std::string> grammars = {json_object_gbnf(),
                                             R"(root ::= [^\n\u00e9]* "\n")"
                                             "\n",
                                             R"(root ::= ("<" [a-z]+ ">" | [^<]{1,5})+)"
                                             "\n"};
  std::mt19937 rng(7);
  for (const std::string& gbnf : grammars) {
    Matcher m = matcher_for(gbnf);
    for (int step = 0; step < 12 && !m.done(); ++step) {
      int count = 0;
      expect_mask_matches_brute_force(m, trie, vocab->bytes, &count);
      ASSERT_GT(count, 0) << gbnf << " step " << step;
      std::vector<uint8_t> allowed;
      m.mask(trie, allowed);
      std::vector<size_t> ids;
      for (size_t id = 0; id < allowed.size(); ++id) {
        if (allowed[id] != 0) ids.push_back(id);
      }
      ASSERT_TRUE(m.advance(vocab->bytes[ids[rng() % ids.size()]]));
    }
  }
}

TEST(GrammarMask, TokensSpanningSeveralSymbolsAndRules) {
  const std::vector<std::string> bytes = {"",
                                          "a",
                                          "a1",
                                          "a12b",
                                          "1b",
                                          "b",
                                          "2",
                                          "ba",
                                          "1",
                                          "\xC3",
                                          "\xA9",
                                          "\xC3\xA9"
                                          "b"};
  const TokenTrie trie(bytes);
  Matcher m = matcher_for("root ::= \"a\" digits (\"b\" | [\\u00e9] \"b\")\ndigits ::= [0-9]+\n");
  std::vector<uint8_t> allowed;
  m.mask(trie, allowed);
  EXPECT_EQ(allowed, (std::vector<uint8_t>{0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(m.advance("a1"));
  m.mask(trie, allowed);
  // After "a1": more digits, "b" (ends), "1b", or é then b, possibly split mid-character.
  EXPECT_EQ(allowed, (std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1}));
  ASSERT_TRUE(m.advance("\xC3"));
  m.mask(trie, allowed);
  EXPECT_EQ(allowed, (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  ASSERT_TRUE(m.advance("\xA9"));
  ASSERT_TRUE(m.advance("b"));
  EXPECT_TRUE(m.done());
  m.mask(trie, allowed);
  EXPECT_EQ(allowed, std::vector<uint8_t>(bytes.size(), 0));
}

}  // namespace
}  // namespace pipit::grammar

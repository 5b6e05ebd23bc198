// GBNF grammars (the syntax llama.cpp and wllama accept) parsed into a flat rule table that
// grammar/matcher.h runs as a pushdown automaton over Unicode code points.
//
// Syntax: `name ::= alternatives` rules (a newline ends a rule except inside parentheses);
// alternatives separated by `|`; sequences of items; items are rule names, "string literals",
// [character classes] with ranges and `^` negation, `.` (any character), and ( groups ), each
// optionally followed by `*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}`. Escapes in literals and
// classes: \n \r \t \\ \" \' \[ \] \- \/ \xHH \uHHHH \UHHHHHHHH. `#` starts a comment. The start
// rule is `root`. Left recursion is refused (the matcher expands rules top-down).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pipit::grammar {

// A set of code points: sorted, disjoint inclusive ranges, possibly negated.
struct CharClass {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  bool negated = false;
  uint64_t ascii[2] = {0, 0};  // membership of 0..127 after negation, for the common case

  void finish();  // sorts and merges the ranges, fills `ascii`
  bool matches(uint32_t cp) const;
  // Whether some code point in [lo, hi] matches: prunes a partial UTF-8 sequence early.
  bool matches_any(uint32_t lo, uint32_t hi) const;
  // Whether every code point in [lo, hi] matches.
  bool matches_all(uint32_t lo, uint32_t hi) const;
};

enum class ElementType : uint8_t {
  kEnd,   // ends an alternative
  kChar,  // one code point from classes[value]
  kRule,  // the rule rules[value]
};

struct Element {
  ElementType type;
  uint32_t value;
};

struct Grammar {
  // Every alternative of every rule, each a run of elements ending with kEnd.
  std::vector<Element> elements;
  // Per rule, the index in `elements` where each of its alternatives starts.
  std::vector<std::vector<uint32_t>> alternatives;
  std::vector<std::string> rule_names;  // generated helper rules are named `rule_N`
  std::vector<CharClass> classes;
  uint32_t root = 0;
};

// Error(kInvalidArgument) for a syntax error ("grammar line L, column C: ..."), a rule used
// but never defined, a missing root rule, or left recursion.
Grammar parse_gbnf(std::string_view text);

}  // namespace pipit::grammar

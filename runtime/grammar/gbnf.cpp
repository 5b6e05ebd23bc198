#include "grammar/gbnf.h"

#include <algorithm>
#include <map>
#include <string>

#include "core/error.h"

namespace pipit::grammar {

void CharClass::finish() {
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  ranges = std::move(merged);
  ascii[0] = ascii[1] = 0;
  for (uint32_t cp = 0; cp < 128; ++cp) {
    bool in = false;
    for (const auto& [lo, hi] : ranges) in = in || (cp >= lo && cp <= hi);
    if (in != negated) ascii[cp >> 6] |= uint64_t{1} << (cp & 63);
  }
}

bool CharClass::matches(uint32_t cp) const {
  if (cp < 128) return (ascii[cp >> 6] >> (cp & 63)) & 1;
  bool in = false;
  for (const auto& [lo, hi] : ranges) {
    if (cp < lo) break;
    if (cp <= hi) {
      in = true;
      break;
    }
  }
  return in != negated;
}

bool CharClass::matches_any(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& [a, b] : ranges) {
      if (a <= hi && b >= lo) return true;
    }
    return false;
  }
  // Negated: some code point of [lo, hi] lies outside every range.
  uint32_t next = lo;
  for (const auto& [a, b] : ranges) {
    if (b < next) continue;
    if (a > next) return true;
    if (b >= hi) return false;
    next = b + 1;
  }
  return next <= hi;
}

bool CharClass::matches_all(uint32_t lo, uint32_t hi) const {
  if (negated) {
    for (const auto& [a, b] : ranges) {
      if (a <= hi && b >= lo) return false;
    }
    return true;
  }
  // The ranges are merged, so one of them must cover [lo, hi] whole.
  for (const auto& [a, b] : ranges) {
    if (a <= lo && b >= hi) return true;
  }
  return false;
}

namespace {

constexpr int kMaxRepetition = 10000;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Grammar run() {
    skip_space(true);
    while (pos_ < text_.size()) {
      const size_t name_at = pos_;
      const std::string name = parse_name("a rule name");
      skip_space(false);
      if (text_.substr(pos_, 3) != "::=")
        error(pos_, "expected '::=' after rule name '" + name + "'");
      pos_ += 3;
      skip_space(true);
      const uint32_t id = rule_id(name, name_at);
      if (defined_[id]) error(name_at, "rule '" + name + "' is defined twice");
      defined_[id] = true;
      rules_[id] = parse_alternatives(name, false);
      skip_space(false);
      if (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') {
        error(pos_, "unexpected '" + std::string(1, text_[pos_]) + "' in rule '" + name + "'");
      }
      skip_space(true);
    }
    for (uint32_t id = 0; id < rules_.size(); ++id) {
      if (!defined_[id]) error(first_use_[id], "undefined rule '" + names_[id] + "'");
    }
    const auto root = ids_.find("root");
    if (root == ids_.end()) fail(ErrorKind::kInvalidArgument, "the grammar has no 'root' rule");
    check_left_recursion();
    return flatten(root->second);
  }

 private:
  using Sequence = std::vector<Element>;
  using Alternatives = std::vector<Sequence>;

  [[noreturn]] void error(size_t at, const std::string& message) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<uint8_t>(text_[i]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    fail(ErrorKind::kInvalidArgument, "grammar line " + std::to_string(line) + ", column " +
                                          std::to_string(column) + ": " + message);
  }

  // Spaces, tabs and comments; newlines too when `newlines` (inside groups, between rules).
  void skip_space(bool newlines) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || ((c == '\n' || c == '\r') && newlines)) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  }

  std::string parse_name(const char* what) {
    const size_t start = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    if (pos_ == start) {
      if (pos_ >= text_.size()) error(pos_, std::string("expected ") + what + ", found the end");
      error(pos_, std::string("expected ") + what + ", found '" + text_[pos_] + "'");
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  uint32_t rule_id(const std::string& name, size_t used_at) {
    const auto [it, inserted] = ids_.try_emplace(name, static_cast<uint32_t>(names_.size()));
    if (inserted) {
      names_.push_back(name);
      rules_.emplace_back();
      defined_.push_back(false);
      first_use_.push_back(used_at);
    }
    return it->second;
  }

  uint32_t new_rule(const std::string& base, Alternatives alternatives) {
    std::string name;
    do {
      name = base + "_" + std::to_string(++generated_);
    } while (ids_.count(name) != 0);
    const uint32_t id = rule_id(name, pos_);
    defined_[id] = true;
    rules_[id] = std::move(alternatives);
    return id;
  }

  uint32_t add_class(CharClass c) {
    c.finish();
    classes_.push_back(std::move(c));
    return static_cast<uint32_t>(classes_.size() - 1);
  }

  uint32_t decode_utf8() {
    const auto lead = static_cast<uint8_t>(text_[pos_]);
    const size_t start = pos_;
    int extra = lead < 0x80 ? 0 : lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : -1;
    if (extra < 0) error(start, "invalid UTF-8 in the grammar");
    uint32_t cp = extra == 0 ? lead : lead & (0x3F >> extra);
    ++pos_;
    for (; extra > 0; --extra, ++pos_) {
      if (pos_ >= text_.size() || (static_cast<uint8_t>(text_[pos_]) & 0xC0) != 0x80) {
        error(start, "invalid UTF-8 in the grammar");
      }
      cp = (cp << 6) | (static_cast<uint8_t>(text_[pos_]) & 0x3F);
    }
    return cp;
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i, ++pos_) {
      if (pos_ >= text_.size()) error(pos_, "expected a hex digit, found the end");
      const char c = text_[pos_];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) error(pos_, std::string("expected a hex digit, found '") + c + "'");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    if (v > 0x10FFFF) error(pos_, "code point above U+10FFFF");
    return v;
  }

  // One character of a literal or class, escapes decoded.
  uint32_t parse_char(const char* inside) {
    if (pos_ >= text_.size()) error(pos_, std::string("unterminated ") + inside);
    if (text_[pos_] != '\\') return decode_utf8();
    const size_t at = pos_++;
    if (pos_ >= text_.size()) error(at, std::string("unterminated ") + inside);
    const char c = text_[pos_++];
    switch (c) {
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case '\\':
      case '"':
      case '\'':
      case '[':
      case ']':
      case '-':
      case '/':
        return static_cast<uint8_t>(c);
      case 'x':
        return parse_hex(2);
      case 'u':
        return parse_hex(4);
      case 'U':
        return parse_hex(8);
      default:
        error(at, std::string("unknown escape '\\") + c + "'");
    }
  }

  Alternatives parse_alternatives(const std::string& rule, bool nested) {
    Alternatives alts;
    alts.push_back(parse_sequence(rule, nested));
    while (pos_ < text_.size() && text_[pos_] == '|') {
      ++pos_;
      skip_space(true);
      alts.push_back(parse_sequence(rule, nested));
    }
    return alts;
  }

  Sequence parse_sequence(const std::string& rule, bool nested) {
    Sequence seq;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '|' || c == ')' || c == '\n' || c == '\r') break;
      const size_t item_at = pos_;
      Sequence item;
      if (c == '"') {
        ++pos_;
        while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\n') {
          CharClass one;
          const uint32_t cp = parse_char("string literal");
          one.ranges.push_back({cp, cp});
          item.push_back({ElementType::kChar, add_class(std::move(one))});
        }
        if (pos_ >= text_.size() || text_[pos_] != '"') {
          error(item_at, "unterminated string literal");
        }
        ++pos_;
      } else if (c == '[') {
        ++pos_;
        CharClass cls;
        if (pos_ < text_.size() && text_[pos_] == '^') {
          cls.negated = true;
          ++pos_;
        }
        while (pos_ < text_.size() && text_[pos_] != ']') {
          if (text_[pos_] == '\n' || text_[pos_] == '\r') break;
          const uint32_t lo = parse_char("character class");
          uint32_t hi = lo;
          if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']' &&
              text_[pos_ + 1] != '\n') {
            ++pos_;
            hi = parse_char("character class");
            if (hi < lo) error(item_at, "character range with its end before its start");
          }
          cls.ranges.push_back({lo, hi});
        }
        if (pos_ >= text_.size() || text_[pos_] != ']') {
          error(item_at, "unterminated character class");
        }
        if (cls.ranges.empty()) error(item_at, "empty character class");
        ++pos_;
        item.push_back({ElementType::kChar, add_class(std::move(cls))});
      } else if (c == '.') {
        ++pos_;
        CharClass any;
        any.negated = true;
        item.push_back({ElementType::kChar, add_class(std::move(any))});
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        Alternatives inner = parse_alternatives(rule, true);
        if (pos_ >= text_.size() || text_[pos_] != ')') error(item_at, "unclosed '('");
        ++pos_;
        item.push_back({ElementType::kRule, new_rule(rule, std::move(inner))});
      } else if (is_name_char(c)) {
        const std::string name = parse_name("a rule name");
        item.push_back({ElementType::kRule, rule_id(name, item_at)});
      } else {
        error(pos_, std::string("unexpected '") + c + "'");
      }
      skip_space(nested);
      apply_repetition(rule, item);
      seq.insert(seq.end(), item.begin(), item.end());
      skip_space(nested);
    }
    return seq;
  }

  int parse_count() {
    const size_t start = pos_;
    long v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      v = v * 10 + (text_[pos_++] - '0');
      if (v > kMaxRepetition)
        error(start, "repetition count above " + std::to_string(kMaxRepetition));
    }
    if (pos_ == start) error(pos_, "expected a repetition count");
    return static_cast<int>(v);
  }

  // Rewrites `item` for a following *, +, ?, or {m,n} into rules without repetition.
  void apply_repetition(const std::string& rule, Sequence& item) {
    if (pos_ >= text_.size()) return;
    const char c = text_[pos_];
    int min = 0, max = -1;  // -1: unbounded
    if (c == '*') {
      ++pos_;
    } else if (c == '+') {
      ++pos_;
      min = 1;
    } else if (c == '?') {
      ++pos_;
      max = 1;
    } else if (c == '{') {
      const size_t at = pos_++;
      skip_space(false);
      min = parse_count();
      skip_space(false);
      max = min;
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        skip_space(false);
        max = pos_ < text_.size() && text_[pos_] == '}' ? -1 : parse_count();
        skip_space(false);
      }
      if (pos_ >= text_.size() || text_[pos_] != '}') error(at, "unclosed '{' repetition");
      ++pos_;
      if (max >= 0 && max < min) error(at, "repetition {m,n} with n < m");
    } else {
      return;
    }
    // One element to repeat: a literal of several characters becomes a rule first.
    Element e = item.size() == 1 ? item[0] : Element{ElementType::kRule, new_rule(rule, {item})};
    Sequence out;
    for (int i = 0; i < min; ++i) out.push_back(e);
    if (max < 0) {
      // star ::= e star | (empty): right recursion, which the matcher runs as a loop.
      const uint32_t star = new_rule(rule, {});
      rules_[star] = {{e, {ElementType::kRule, star}}, {}};
      out.push_back({ElementType::kRule, star});
    } else if (max > min) {
      // Nested optionals e (e (e)?)? accept 0..max-min copies without ambiguity.
      uint32_t opt = new_rule(rule, {{e}, {}});
      for (int i = 1; i < max - min; ++i) {
        opt = new_rule(rule, {{e, {ElementType::kRule, opt}}, {}});
      }
      out.push_back({ElementType::kRule, opt});
    }
    item = std::move(out);
  }

  void check_left_recursion() const {
    const size_t n = rules_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Sequence& alt : rules_[r]) {
          const bool all = std::all_of(alt.begin(), alt.end(), [&](const Element& e) {
            return e.type == ElementType::kRule && nullable[e.value];
          });
          if (all) {
            nullable[r] = changed = true;
            break;
          }
        }
      }
    }
    // Edges r -> s where s can be the first thing r matches.
    std::vector<std::vector<uint32_t>> first(n);
    for (size_t r = 0; r < n; ++r) {
      for (const Sequence& alt : rules_[r]) {
        for (const Element& e : alt) {
          if (e.type != ElementType::kRule) break;
          first[r].push_back(e.value);
          if (!nullable[e.value]) break;
        }
      }
    }
    std::vector<int> state(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<uint32_t> path;
    const auto visit = [&](auto&& self, uint32_t r) -> void {
      state[r] = 1;
      path.push_back(r);
      for (uint32_t s : first[r]) {
        if (state[s] == 1) {
          std::string cycle;
          const auto from = std::find(path.begin(), path.end(), s);
          for (auto it = from; it != path.end(); ++it) cycle += names_[*it] + " -> ";
          fail(ErrorKind::kInvalidArgument,
               "grammar rule '" + names_[s] + "' is left-recursive (" + cycle + names_[s] +
                   "), which pipit does not support: rewrite it with repetition, e.g. "
                   "x ::= a (\"+\" a)*");
        }
        if (state[s] == 0) self(self, s);
      }
      path.pop_back();
      state[r] = 2;
    };
    for (uint32_t r = 0; r < n; ++r) {
      if (state[r] == 0) visit(visit, r);
    }
  }

  Grammar flatten(uint32_t root) {
    Grammar g;
    g.root = root;
    g.rule_names = names_;
    g.classes = std::move(classes_);
    g.alternatives.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const Sequence& alt : rules_[r]) {
        g.alternatives[r].push_back(static_cast<uint32_t>(g.elements.size()));
        g.elements.insert(g.elements.end(), alt.begin(), alt.end());
        g.elements.push_back({ElementType::kEnd, 0});
      }
    }
    return g;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<Alternatives> rules_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::vector<CharClass> classes_;
  int generated_ = 0;
};

}  // namespace

Grammar parse_gbnf(std::string_view text) {
  return Parser(text).run();
}

}  // namespace pipit::grammar

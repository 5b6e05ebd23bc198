#include "grammar/json.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/utf8.h"

namespace pipit::grammar {
namespace {

constexpr int kMaxDepth = 512;

class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text) {}

  Json document() {
    // JSON text is UTF-8 (RFC 8259). Invalid bytes inside a string would otherwise pass
    // through into the grammar compiled from a schema, which then fails with an error about
    // the grammar rather than the caller's JSON (found by fuzz_json_schema).
    const std::string clean = utf8::sanitize(s_);
    if (clean != s_) {
      i_ = static_cast<size_t>(
          std::mismatch(s_.begin(), s_.end(), clean.begin(), clean.end()).first - s_.begin());
      error("the text is not valid UTF-8");
    }
    Json v = value(0);
    space();
    if (i_ < s_.size()) error("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& message) const {
    size_t line = 1, column = 1;
    for (size_t k = 0; k < i_ && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    fail(ErrorKind::kInvalidArgument, "invalid JSON at line " + std::to_string(line) + ", column " +
                                          std::to_string(column) + ": " + message);
  }

  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) error("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    space();
    if (i_ >= s_.size()) error("expected a value, found the end");
    Json v;
    const char c = s_[i_];
    if (c == '{') {
      v.type = Json::Type::kObject;
      ++i_;
      space();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        space();
        if (i_ >= s_.size() || s_[i_] != '"') error("expected a member name in quotes");
        std::string key = string();
        space();
        if (i_ >= s_.size() || s_[i_] != ':') error("expected ':' after a member name");
        ++i_;
        v.members.emplace_back(std::move(key), value(depth + 1));
        space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return v;
        }
        error("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.type = Json::Type::kArray;
      ++i_;
      space();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return v;
        }
        error("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.type = Json::Type::kString;
      v.text = string();
      return v;
    }
    if (literal("true") || literal("false")) {
      v.type = Json::Type::kBool;
      v.boolean = c == 't';
      return v;
    }
    if (literal("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    error(std::string("unexpected '") + c + "'");
  }

  Json number() {
    const size_t start = i_;
    const auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == from) error("expected a digit in a number");
    };
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else {
      digits();
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      digits();
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      digits();
    }
    Json v;
    v.type = Json::Type::kNumber;
    v.text = std::string(s_.substr(start, i_ - start));
    v.number = std::strtod(v.text.c_str(), nullptr);
    return v;
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) error("expected 4 hex digits after \\u");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) error("expected 4 hex digits after \\u");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) error("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<uint8_t>(c) < 0x20) error("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) error("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            const uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) error("unpaired UTF-16 surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xD800 && cp < 0xE000) {
            error("unpaired UTF-16 surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

void dump_string(const std::string& s, std::string& out) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<uint8_t>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<uint8_t>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

void dump_into(const Json& v, std::string& out) {
  switch (v.type) {
    case Json::Type::kNull:
      out += "null";
      break;
    case Json::Type::kBool:
      out += v.boolean ? "true" : "false";
      break;
    case Json::Type::kNumber:
      out += v.text;
      break;
    case Json::Type::kString:
      dump_string(v.text, out);
      break;
    case Json::Type::kArray:
      out += '[';
      for (size_t k = 0; k < v.items.size(); ++k) {
        if (k > 0) out += ',';
        dump_into(v.items[k], out);
      }
      out += ']';
      break;
    case Json::Type::kObject:
      out += '{';
      for (size_t k = 0; k < v.members.size(); ++k) {
        if (k > 0) out += ',';
        dump_string(v.members[k].first, out);
        out += ':';
        dump_into(v.members[k].second, out);
      }
      out += '}';
      break;
  }
}

}  // namespace

const Json* Json::find(std::string_view key) const {
  for (const auto& [k, v] : members) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string Json::dump() const {
  std::string out;
  dump_into(*this, out);
  return out;
}

Json parse_json(std::string_view text) {
  return Reader(text).document();
}

}  // namespace pipit::grammar

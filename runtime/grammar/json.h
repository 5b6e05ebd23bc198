// A small JSON reader for what the runtime itself must read (JSON schemas): values keep their
// members in document order, since a schema's property order is the order generated.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pipit::grammar {

struct Json {
  // A pair of key and value, declared before Json is complete: std::pair<std::string, Json>
  // here would need the complete type (libstdc++ tolerates it under GCC, not under clang).
  struct Member;
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0.0;
  std::string text;  // a string's value, or a number as written
  std::vector<Json> items;
  std::vector<Member> members;

  const Json* find(std::string_view key) const;  // nullptr when absent (or not an object)
  std::string dump() const;                      // compact JSON text
};

struct Json::Member {
  Member(std::string key, Json value) : first(std::move(key)), second(std::move(value)) {}
  std::string first;
  Json second;
};

// Error(kInvalidArgument) "invalid JSON at line L, column C: ..." for malformed text.
Json parse_json(std::string_view text);

}  // namespace pipit::grammar

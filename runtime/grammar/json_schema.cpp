#include "grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "grammar/json.h"

namespace pipit::grammar {
namespace {

// The building blocks, each added to the output once when some schema needs it.
const std::map<std::string, std::pair<std::string, std::vector<std::string>>>& primitives() {
  static const std::map<std::string, std::pair<std::string, std::vector<std::string>>> p = {
      {"ws", {R"(( " " | "\n" " "{0,20} )?)", {}}},
      {"char", {R"([^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ))", {}}},
      {"string", {R"("\"" char* "\"")", {"char"}}},
      {"integer", {R"("-"? ( "0" | [1-9] [0-9]{0,15} ))", {}}},
      // Two exponent digits keep every number inside a double (at most ~1e115), so that any JSON
      // parser reads it back; three would allow 1e999.
      {"number", {R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)", {"integer"}}},
      {"boolean", {R"("true" | "false")", {}}},
      {"null", {R"("null")", {}}},
      {"value",
       {"object | array | string | number | boolean | null",
        {"object", "array", "string", "number", "boolean", "null"}}},
      {"member", {R"(string ws ":" ws value ws)", {"string", "ws", "value"}}},
      {"object", {R"("{" ws ( member ( "," ws member )* )? "}")", {"member", "ws"}}},
      {"array", {R"("[" ws ( value ws ( "," ws value ws )* )? "]")", {"value", "ws"}}},
      {"date",
       {R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ))", {}}},
      {"time",
       {R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))",
        {}}},
      {"date-time", {R"(date "T" time)", {"date", "time"}}},
      {"uuid",
       {R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})",
        {}}},
  };
  return p;
}

const std::set<std::string>& annotations() {
  static const std::set<std::string> a = {"title",     "description", "default",  "examples",
                                          "$schema",   "$id",         "$comment", "readOnly",
                                          "writeOnly", "deprecated",  "$defs",    "definitions"};
  return a;
}

const std::set<std::string>& supported() {
  static const std::set<std::string> s = {
      "type",      "properties", "required", "additionalProperties",
      "items",     "minItems",   "maxItems", "enum",
      "const",     "anyOf",      "oneOf",    "$ref",
      "minLength", "maxLength",  "format"};
  return s;
}

// A GBNF string literal matching exactly `text`.
std::string literal(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<uint8_t>(c) < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(static_cast<uint8_t>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

class Compiler {
 public:
  explicit Compiler(const Json& root) : root_(root) {}

  std::string run() {
    const std::string top = visit(root_, "");
    std::string out = "root ::= " + top + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    return out;
  }

 private:
  [[noreturn]] static void error(const std::string& pointer, const std::string& message) {
    fail(ErrorKind::kInvalidArgument,
         "JSON schema at " + (pointer.empty() ? std::string("/") : pointer) + ": " + message);
  }

  std::string use(const std::string& name) {
    if (used_.insert(name).second) {
      const auto& [body, needs] = primitives().at(name);
      for (const std::string& n : needs) use(n);
      rules_.emplace_back(name, body);
    }
    return name;
  }

  // A new rule for `body`; its name carries a hint of where it came from.
  std::string rule(const std::string& hint, const std::string& body) {
    const std::string name = reserve(hint);
    define(name, body);
    return name;
  }

  std::string reserve(const std::string& hint) {
    std::string clean;
    for (char c : hint) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (ok && clean.size() < 24) clean += c;
    }
    return "s" + std::to_string(++counter_) + "-" + (clean.empty() ? "item" : clean);
  }

  void define(const std::string& name, const std::string& body) { rules_.emplace_back(name, body); }

  int count(const Json& s, const char* key, const std::string& pointer, int fallback) {
    const Json* v = s.find(key);
    if (v == nullptr) return fallback;
    const std::string at = pointer + "/" + key;
    if (v->type != Json::Type::kNumber || v->number < 0 || v->number != std::floor(v->number)) {
      error(at, std::string("'") + key + "' must be a non-negative integer");
    }
    if (v->number > 10000) error(at, std::string("'") + key + "' above 10000 is not supported");
    return static_cast<int>(v->number);
  }

  std::string visit(const Json& s, const std::string& pointer) {
    if (s.type == Json::Type::kBool) {
      if (!s.boolean) error(pointer, "the schema 'false' allows no value");
      return use("value");
    }
    if (s.type != Json::Type::kObject) error(pointer, "a schema must be an object or a boolean");
    for (const auto& [key, v] : s.members) {
      if (supported().count(key) == 0 && annotations().count(key) == 0) {
        error(pointer + "/" + pointer_token(key), "'" + key + "' is not supported");
      }
    }
    if (const Json* ref = s.find("$ref")) return reference(*ref, pointer + "/$ref");
    if (const Json* c = s.find("const")) return literal(c->dump());
    if (const Json* e = s.find("enum")) {
      if (e->type != Json::Type::kArray || e->items.empty()) {
        error(pointer + "/enum", "'enum' must be a non-empty array");
      }
      std::string alts;
      for (const Json& item : e->items) alts += (alts.empty() ? "" : " | ") + literal(item.dump());
      return "( " + alts + " )";
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (const Json* list = s.find(key)) {
        const std::string at = pointer + "/" + key;
        if (list->type != Json::Type::kArray || list->items.empty()) {
          error(at, std::string("'") + key + "' must be a non-empty array");
        }
        std::string alts;
        for (size_t i = 0; i < list->items.size(); ++i) {
          alts += (i == 0 ? "" : " | ") + visit(list->items[i], at + "/" + std::to_string(i));
        }
        return "( " + alts + " )";
      }
    }
    const Json* type = s.find("type");
    if (type == nullptr) {
      if (s.find("properties") || s.find("additionalProperties")) return object(s, pointer);
      if (s.find("items")) return array(s, pointer);
      return use("value");
    }
    if (type->type == Json::Type::kString) return typed(s, type->text, pointer, pointer + "/type");
    if (type->type == Json::Type::kArray && !type->items.empty()) {
      std::string alts;
      for (size_t i = 0; i < type->items.size(); ++i) {
        const std::string at = pointer + "/type/" + std::to_string(i);
        if (type->items[i].type != Json::Type::kString) error(at, "a type must be a string");
        alts += (i == 0 ? "" : " | ") + typed(s, type->items[i].text, pointer, at);
      }
      return "( " + alts + " )";
    }
    error(pointer + "/type", "'type' must be a string or a non-empty array of strings");
  }

  std::string typed(const Json& s, const std::string& type, const std::string& pointer,
                    const std::string& type_pointer) {
    if (type == "object") return object(s, pointer);
    if (type == "array") return array(s, pointer);
    if (type == "string") return string(s, pointer);
    if (type == "number" || type == "integer" || type == "boolean" || type == "null") {
      return use(type);
    }
    error(type_pointer, "unknown type '" + type + "'");
  }

  std::string reference(const Json& ref, const std::string& pointer) {
    if (ref.type != Json::Type::kString) error(pointer, "'$ref' must be a string");
    const auto known = refs_.find(ref.text);
    if (known != refs_.end()) return known->second;
    const std::string& path = ref.text;
    if (path.empty() || path[0] != '#') {
      error(pointer,
            "only references inside the schema ('#/$defs/...') are supported, not '" + path + "'");
    }
    const Json* target = &root_;
    size_t i = 1;
    while (i < path.size()) {
      if (path[i] != '/') error(pointer, "cannot resolve '" + path + "'");
      const size_t end = std::min(path.find('/', i + 1), path.size());
      std::string key;
      for (size_t k = i + 1; k < end; ++k) {
        if (path[k] == '~' && k + 1 < end && (path[k + 1] == '0' || path[k + 1] == '1')) {
          key += path[++k] == '0' ? '~' : '/';
        } else {
          key += path[k];
        }
      }
      target = target->find(key);
      if (target == nullptr) error(pointer, "cannot resolve '" + path + "'");
      i = end;
    }
    // Named before it is compiled, so that a recursive schema refers to itself.
    const std::string name = reserve(path.substr(path.rfind('/') + 1));
    refs_[path] = name;
    define(name, visit(*target, path.substr(1)));
    return name;
  }

  std::string object(const Json& s, const std::string& pointer) {
    struct Member {
      std::string kv;
      bool required;
      bool repeats;
    };
    std::vector<Member> members;
    const Json* props = s.find("properties");
    if (props != nullptr && props->type != Json::Type::kObject) {
      error(pointer + "/properties", "'properties' must be an object");
    }
    std::set<std::string> required;
    if (const Json* req = s.find("required")) {
      if (req->type != Json::Type::kArray)
        error(pointer + "/required", "'required' must be an array");
      for (size_t i = 0; i < req->items.size(); ++i) {
        const std::string at = pointer + "/required/" + std::to_string(i);
        const Json& name = req->items[i];
        if (name.type != Json::Type::kString) error(at, "a required name must be a string");
        if (props == nullptr || props->find(name.text) == nullptr) {
          error(at, "'" + name.text + "' is required but is not among the properties");
        }
        required.insert(name.text);
      }
    }
    use("ws");
    if (props != nullptr) {
      for (const auto& [key, sub] : props->members) {
        Json key_json;
        key_json.type = Json::Type::kString;
        key_json.text = key;
        const std::string value = visit(sub, pointer + "/properties/" + pointer_token(key));
        members.push_back({rule(key, literal(key_json.dump()) + " ws \":\" ws " + value + " ws"),
                           required.count(key) > 0, false});
      }
    }
    if (const Json* extra = s.find("additionalProperties")) {
      const std::string at = pointer + "/additionalProperties";
      if (extra->type == Json::Type::kBool ? extra->boolean : true) {
        const std::string value =
            extra->type == Json::Type::kBool ? use("value") : visit(*extra, at);
        use("string");
        members.push_back({rule("extra", "string ws \":\" ws " + value + " ws"), false, true});
      }
    }
    // after(i): members i.. once something was written (each behind a comma);
    // first(i): members i.. when nothing was written yet.
    const auto after = [&](size_t from) {
      std::string out;
      for (size_t j = from; j < members.size(); ++j) {
        const std::string part = "\",\" ws " + members[j].kv;
        out += members[j].required  ? " " + part
               : members[j].repeats ? " ( " + part + " )*"
                                    : " ( " + part + " )?";
      }
      return out;
    };
    std::string first;  // built from the last member backwards
    for (size_t i = members.size(); i-- > 0;) {
      std::string written = members[i].kv;
      if (members[i].repeats) written += " ( \",\" ws " + members[i].kv + " )*";
      written += after(i + 1);
      first = members[i].required ? written : "( " + written + " | " + first + " )";
    }
    return rule("object", "\"{\" ws " + first + " \"}\"");
  }

  std::string array(const Json& s, const std::string& pointer) {
    std::string item;
    if (const Json* items = s.find("items")) {
      item = visit(*items, pointer + "/items");
    } else {
      item = use("value");
    }
    const int min = count(s, "minItems", pointer, 0);
    const int max = count(s, "maxItems", pointer, -1);
    if (max >= 0 && max < min) error(pointer + "/maxItems", "'maxItems' is below 'minItems'");
    use("ws");
    const std::string elem = rule("item", item + " ws");
    std::string body;
    if (max == 0) {
      body = "\"[\" ws \"]\"";
    } else {
      const std::string more = "( \",\" ws " + elem + " )";
      const std::string lo = std::to_string(min == 0 ? 0 : min - 1);
      const std::string reps =
          max < 0 ? more + "{" + lo + ",}" : more + "{" + lo + "," + std::to_string(max - 1) + "}";
      body = min == 0 ? "\"[\" ws ( " + elem + " " + reps + " )? \"]\""
                      : "\"[\" ws " + elem + " " + reps + " \"]\"";
    }
    return rule("array", body);
  }

  std::string string(const Json& s, const std::string& pointer) {
    const bool lengths = s.find("minLength") != nullptr || s.find("maxLength") != nullptr;
    if (const Json* format = s.find("format")) {
      const std::string at = pointer + "/format";
      if (format->type != Json::Type::kString) error(at, "'format' must be a string");
      const std::string& f = format->text;
      if (f != "date" && f != "time" && f != "date-time" && f != "uuid") {
        error(at, "format '" + f + "' is not supported (date, time, date-time, uuid are)");
      }
      if (lengths) error(pointer, "minLength/maxLength together with 'format' are not supported");
      return "\"\\\"\" " + use(f) + " \"\\\"\"";
    }
    if (!lengths) return use("string");
    const int min = count(s, "minLength", pointer, 0);
    const int max = count(s, "maxLength", pointer, -1);
    if (max >= 0 && max < min) error(pointer + "/maxLength", "'maxLength' is below 'minLength'");
    use("char");
    const std::string reps =
        "{" + std::to_string(min) + "," + (max < 0 ? "" : std::to_string(max)) + "}";
    return "\"\\\"\" char" + reps + " \"\\\"\"";
  }

  const Json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::set<std::string> used_;
  std::map<std::string, std::string> refs_;
  int counter_ = 0;
};

}  // namespace

std::string json_schema_to_gbnf(std::string_view schema) {
  const Json root = parse_json(schema);
  return Compiler(root).run();
}

std::string json_object_gbnf() {
  Json schema;
  schema.type = Json::Type::kObject;
  Json type;
  type.type = Json::Type::kString;
  type.text = "object";
  schema.members.emplace_back("type", type);
  Json extra;
  extra.type = Json::Type::kBool;
  extra.boolean = true;
  schema.members.emplace_back("additionalProperties", extra);
  return Compiler(schema).run();
}

}  // namespace pipit::grammar

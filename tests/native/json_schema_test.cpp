// JSON schemas compiled to grammars: what they accept, the errors they give, and generation
// under them with random-weight models, every output parsed (by nlohmann::json, independent of
// the runtime's own reader) and validated against its schema.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "model/model.h"
#include "session/session.h"
#include "test_support.h"

namespace pipit {
namespace {

using nlohmann::json;

bool schema_accepts(const std::string& schema, const std::string& text) {
  grammar::Matcher m(std::make_shared<const grammar::Grammar>(
      grammar::parse_gbnf(grammar::json_schema_to_gbnf(schema))));
  return m.advance(text) && m.can_end();
}

std::string schema_error(const std::string& schema) {
  try {
    grammar::parse_gbnf(grammar::json_schema_to_gbnf(schema));
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    return e.what();
  }
  return "(no error)";
}

// Validation of the supported subset, written straight from the JSON Schema spec; `root`
// resolves $ref. Returns "" when valid, else the first problem.
std::string validate(const json& v, const json& s, const json& root) {
  if (s.is_boolean()) return s.get<bool>() ? "" : "false schema";
  if (s.contains("$ref")) {
    std::string ref = s["$ref"].get<std::string>().substr(1);
    return validate(v, root.at(json::json_pointer(ref)), root);
  }
  if (s.contains("const") && v != s["const"]) return "const";
  if (s.contains("enum")) {
    bool found = false;
    for (const json& e : s["enum"]) found = found || e == v;
    if (!found) return "enum";
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    bool any = false;
    for (const json& sub : s[key]) any = any || validate(v, sub, root).empty();
    if (!any) return key;
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_string()) {
      types.push_back(s["type"]);
    } else {
      for (const json& t : s["type"]) types.push_back(t);
    }
    bool ok = false;
    for (const std::string& t : types) {
      ok = ok || (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
           (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
           (t == "integer" &&
            (v.is_number_integer() ||
             (v.is_number_float() && v.get<double>() == (long long)v.get<double>()))) ||
           (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null());
    }
    if (!ok) return "type";
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const json& r : s.value("required", json::array())) {
      if (!v.contains(r.get<std::string>())) return "required " + r.get<std::string>();
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        const std::string e = validate(it.value(), props[it.key()], root);
        if (!e.empty()) return it.key() + ": " + e;
      } else {
        const json extra = s.value("additionalProperties", json(false));
        if (extra.is_boolean() && !extra.get<bool>()) return "additional property " + it.key();
        const std::string e = validate(it.value(), extra, root);
        if (!e.empty()) return it.key() + ": " + e;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return "minItems";
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return "maxItems";
    if (s.contains("items")) {
      for (const json& item : v) {
        const std::string e = validate(item, s["items"], root);
        if (!e.empty()) return "item: " + e;
      }
    }
  }
  if (v.is_string()) {
    const std::string text = v.get<std::string>();
    size_t chars = 0;
    for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
    if (s.contains("minLength") && chars < s["minLength"].get<size_t>()) return "minLength";
    if (s.contains("maxLength") && chars > s["maxLength"].get<size_t>()) return "maxLength";
    if (s.contains("format")) {
      static const std::map<std::string, std::regex> formats = {
          {"date", std::regex(R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))")},
          {"uuid", std::regex(R"([0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")},
          {"date-time",
           std::regex(
               R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))")},
      };
      if (!std::regex_match(text, formats.at(s["format"].get<std::string>()))) return "format";
    }
  }
  return "";
}

TEST(JsonSchema, AcceptsWhatTheSchemaAllowsAndNothingElse) {
  const std::string s = R"({"type":"object","properties":{
    "name":{"type":"string","maxLength":3},"age":{"type":"integer"},
    "ok":{"type":"boolean"},"x":{"type":["number","null"]}},"required":["name","ok"]})";
  EXPECT_TRUE(schema_accepts(s, R"({"name":"abc","ok":true})"));
  EXPECT_TRUE(schema_accepts(s, R"({ "name": "", "age": -12, "ok": false, "x": 1.5e-3 })"));
  EXPECT_TRUE(schema_accepts(s, "{\n  \"name\": \"a\",\n  \"ok\": true,\n  \"x\": null\n}"));
  EXPECT_FALSE(schema_accepts(s, R"({"ok":true})"));                       // name required
  EXPECT_FALSE(schema_accepts(s, R"({"name":"abcd","ok":true})"));         // maxLength
  EXPECT_FALSE(schema_accepts(s, R"({"name":"a","ok":true,"zz":1})"));     // no extra members
  EXPECT_FALSE(schema_accepts(s, R"({"name":"a","age":1.5,"ok":true})"));  // integer
  EXPECT_FALSE(schema_accepts(s, R"({"ok":true,"name":"a"})"));            // schema order
  EXPECT_FALSE(schema_accepts(s, R"({"name":"a","ok":true,})"));
}

TEST(JsonSchema, ArraysEnumsConstRefsAndFormats) {
  const std::string s = R"({"$defs":{"pt":{"type":"array","items":{"type":"integer"},
    "minItems":2,"maxItems":3}},"type":"object","properties":{
    "kind":{"enum":["a","b\"c",3,null]},"v":{"const":{"k":[1,true]}},
    "pts":{"type":"array","items":{"$ref":"#/$defs/pt"},"maxItems":2},
    "d":{"type":"string","format":"date"},"id":{"type":"string","format":"uuid"}},
    "required":["kind","v","pts","d","id"]})";
  const std::string good =
      R"({"kind":"b\"c","v":{"k":[1,true]},"pts":[[1,2],[3,4,5]],"d":"2024-02-29",)"
      R"("id":"123e4567-e89b-12d3-a456-426614174000"})";
  EXPECT_TRUE(schema_accepts(s, good));
  std::string bad = good;
  EXPECT_FALSE(schema_accepts(s, bad.replace(bad.find("[1,2]"), 5, "[1]")));  // minItems
  bad = good;
  EXPECT_FALSE(schema_accepts(s, bad.replace(bad.find("b\\\"c"), 4, "d")));  // enum
  bad = good;
  EXPECT_FALSE(schema_accepts(s, bad.replace(bad.find("2024-02"), 7, "2024-13")));  // date
  EXPECT_TRUE(schema_accepts(R"({"type":"object","additionalProperties":{"type":"integer"}})",
                             R"({"a":1,"b":2})"));
  EXPECT_FALSE(schema_accepts(R"({"type":"object","additionalProperties":{"type":"integer"}})",
                              R"({"a":"x"})"));
  // A recursive schema through $ref.
  const std::string tree = R"({"$defs":{"n":{"type":"object","properties":{"c":{"type":"array",
    "items":{"$ref":"#/$defs/n"}}},"required":["c"]}},"$ref":"#/$defs/n"})";
  EXPECT_TRUE(schema_accepts(tree, R"({"c":[{"c":[]},{"c":[{"c":[]}]}]})"));
  EXPECT_FALSE(schema_accepts(tree, R"({"c":[{}]})"));
}

TEST(JsonSchema, ErrorsNameTheJsonPointer) {
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a":{"type":"string","pattern":"x"}}})")
                .find("JSON schema at /properties/a/pattern: 'pattern' is not supported"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a~b/c":{"type":"strin"}}})")
                .find("at /properties/a~0b~1c/type: unknown type 'strin'"),
            std::string::npos)
      << schema_error(R"({"type":"object","properties":{"a~b/c":{"type":"strin"}}})");
  EXPECT_NE(schema_error(R"({"type":"object","properties":{"a":{}},"required":["a","b"]})")
                .find("at /required/1: 'b' is required"),
            std::string::npos);
  EXPECT_NE(
      schema_error(R"({"items":{"$ref":"#/$defs/nope"}})").find("at /items/$ref: cannot resolve"),
      std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"array","minItems":3,"maxItems":1})").find("at /maxItems"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"string","format":"email"})").find("at /format"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type":"object",})").find("invalid JSON at line 1, column 18"),
            std::string::npos)
      << schema_error(R"({"type":"object",})");
  EXPECT_NE(schema_error("[1]").find("at /: a schema must be an object"), std::string::npos);
}

// ---- generation under schemas with real and random-weight models ----

class ConstrainedGeneration : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string path = testing::model_path(GetParam());
    PIPIT_REQUIRE_FILE(path);
    size_t size = 0;
    OwnedBytes bytes = read_file(path, &size);
    model_ = Model::load(std::move(bytes), size, {});
  }

  // Generates under `options`; the text, with finish reason checked to be "stop".
  std::string run(Session& session, const GenerateOptions& options) {
    session.begin({}, options);
    std::string text;
    for (;;) {
      const Step step = session.next();
      text += step.text;
      if (step.finish != FinishReason::kNone) {
        EXPECT_TRUE(step.finish == FinishReason::kGrammarComplete ||
                    step.finish == FinishReason::kEndOfGeneration)
            << finish_reason_name(step.finish) << " after: " << text;
        return text;
      }
    }
  }

  std::unique_ptr<Model> model_;
};

GenerateOptions sampled(uint64_t seed) {
  GenerateOptions o;
  o.max_tokens = 2000;
  o.sampling.temperature = 1.0f;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.seed = seed;
  return o;
}

const char* const kSchemas[] = {
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
       "age":{"type":"integer"},"score":{"type":"number"},"member":{"type":"boolean"},
       "tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":4},
       "when":{"type":"string","format":"date"}},"required":["name","age","tags"]})",
    R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"integer"},
       "y":{"type":["integer","null"]}},"required":["x","y"]}},
       "type":"object","properties":{"points":{"type":"array","items":{"$ref":"#/$defs/pt"},
       "minItems":1,"maxItems":3},"label":{"anyOf":[{"const":"none"},
       {"type":"string","minLength":1,"maxLength":8}]}},"required":["points","label"]})",
    R"({"type":"array","items":{"type":"object","properties":{"k":{"enum":[1,2,3]},
       "v":{"type":"string","maxLength":6}},"required":["k"]},"maxItems":5})",
};

TEST_P(ConstrainedGeneration, SchemaOutputsAlwaysParseAndValidate) {
  Session session(*model_, 2048);
  int seeds = 0;
  for (const char* schema_text : kSchemas) {
    const json schema = json::parse(schema_text);
    for (uint64_t seed = 0; seed < 12; ++seed) {
      GenerateOptions o = sampled(seed * 7919 + 1);
      o.response_format = ResponseFormat::kJsonSchema;
      o.json_schema = schema_text;
      const std::string text = run(session, o);
      json v;
      ASSERT_NO_THROW(v = json::parse(text)) << text;
      EXPECT_EQ(validate(v, schema, schema), "") << text;
      ++seeds;
    }
  }
  EXPECT_EQ(seeds, 36);
}

TEST_P(ConstrainedGeneration, JsonObjectOutputsAreObjects) {
  // Any object may hold strings of any length, and stories260K inside a string writes its
  // story for ever: the outputs that end must parse as objects, those cut at max_tokens must
  // still be a prefix the grammar accepts, and with random weights a good share must end (how
  // many moves with the last bits of the arithmetic, hence 16 seeds and a low bar).
  Session session(*model_, 2048);
  int complete = 0;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    GenerateOptions o = sampled(seed + 100);
    o.max_tokens = 400;
    o.response_format = ResponseFormat::kJsonObject;
    session.begin({}, o);
    std::string text;
    Step step;
    do {
      step = session.next();
      text += step.text;
    } while (step.finish == FinishReason::kNone);
    if (step.finish == FinishReason::kLength) {
      grammar::Matcher m(std::make_shared<const grammar::Grammar>(
          grammar::parse_gbnf(grammar::json_object_gbnf())));
      EXPECT_TRUE(m.advance(text)) << text;
      continue;
    }
    ++complete;
    json v;
    ASSERT_NO_THROW(v = json::parse(text)) << text;
    EXPECT_TRUE(v.is_object()) << text;
  }
  if (std::string(GetParam()).find("synth") != std::string::npos) {
    EXPECT_GE(complete, 4);
  }
}

TEST_P(ConstrainedGeneration, GreedyAndGbnfOutputsMatchTheGrammar) {
  const std::string gbnf = R"g(root ::= sum ("," ws sum){0,3}
sum ::= term (ws [+*-] ws term){0,4}
term ::= [0-9]{1,3} | "(" sum ")"
ws ::= " "?
)g";
  Session session(*model_, 2048);
  for (uint64_t seed = 0; seed < 8; ++seed) {
    GenerateOptions o = sampled(seed);
    if (seed == 0) o.sampling.temperature = 0.0f;  // greedy takes the argmax fast path
    o.grammar = gbnf;
    const std::string text = run(session, o);
    grammar::Matcher m(std::make_shared<const grammar::Grammar>(grammar::parse_gbnf(gbnf)));
    EXPECT_TRUE(m.advance(text) && m.can_end()) << text;
  }
}

TEST_P(ConstrainedGeneration, InvalidGrammarsAndSchemasAreRefusedBeforeGenerating) {
  Session session(*model_, 64);
  GenerateOptions o = sampled(1);
  o.grammar = "root ::= \"a\" undefined\n";
  try {
    session.begin({}, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("undefined rule 'undefined'"), std::string::npos);
  }
  o.grammar.clear();
  o.response_format = ResponseFormat::kJsonSchema;
  o.json_schema = R"({"type":"object","properties":{"n":{"type":"integer","minimum":3}}})";
  try {
    session.begin({}, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/properties/n/minimum"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ConstrainedGeneration,
                         ::testing::Values("stories260K/stories260K.gguf",
                                           "synthetic/synth-llama-Q8_0.gguf"),
                         [](const auto& info) {
                           return info.index == 0 ? std::string("stories260K")
                                                  : std::string("synth_llama_Q8_0");
                         });

}  // namespace
}  // namespace pipit

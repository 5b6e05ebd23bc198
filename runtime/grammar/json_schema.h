// JSON schemas (the subset OpenAI's structured outputs use, plus a few cheap extras) compiled
// to GBNF text for grammar/gbnf.h.
//
// Supported: type (one or a list), properties with required, additionalProperties (false by
// default, as OpenAI's strict mode has it: a schema that names properties gets those and no
// others; true or a schema allows extra members after the named ones, whose names are not
// checked against the named ones), items with minItems/maxItems, enum, const, anyOf/oneOf (both
// as "any of": the grammar cannot enforce "exactly one"), $ref to #/$defs/... or
// #/definitions/..., minLength/maxLength, and the string formats date, time, date-time and
// uuid. Annotations (title, description, default, examples, $schema, $id, $comment) are
// ignored. Anything else that constrains values (pattern, minimum, ...) is refused rather than
// silently not enforced.
//
// Output shape: properties in the schema's order; no whitespace except an optional single
// space or a newline plus up to 20 spaces of indentation between tokens; numbers have at most
// 16 integer digits, 16 fraction digits and 3 exponent digits. The bounds keep a weak model
// from writing whitespace or digits forever.
#pragma once

#include <string>
#include <string_view>

namespace pipit::grammar {

// GBNF for one JSON value matching the schema (given as JSON text). Error(kInvalidArgument)
// naming the JSON pointer of the offending part: "JSON schema at /properties/age: ...".
std::string json_schema_to_gbnf(std::string_view schema);

// GBNF for any JSON object (response_format {type: "json_object"}).
std::string json_object_gbnf();

}  // namespace pipit::grammar

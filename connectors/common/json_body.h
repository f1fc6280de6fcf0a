// Validating JSON parsing for webhook bodies (simdjson DOM: the whole body
// is checked, not just the fields read). The parsed element lives in a
// thread-local parser: it is valid until the next ParseJsonObject call on the
// same thread.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

// InvalidArgument("body is not valid JSON: ...") or ("... not an object").
Status ParseJsonObject(std::string_view body, simdjson::dom::object* out);

// A body that is one JSON object, or an array of them (a vendor's batched
// delivery: HaloPSA's, v2.164 and later): each object in order, and
// *batched set for an array. InvalidArgument for anything else, an empty
// array, or an element that is not an object (which one is said). Valid
// until the next ParseJsonObjects call on the same thread.
Status ParseJsonObjects(std::string_view body, std::vector<simdjson::dom::object>* out,
                        bool* batched);

// A string field, or a number rendered as text (vendors send both). nullopt
// when absent or null; *wrong_type set when present with another type.
std::optional<std::string> StringOrNumberField(const simdjson::dom::object& obj,
                                               std::string_view key, bool* wrong_type);

// A string member `key` of the body's top-level object, or of its member
// object `obj` when given; empty when the body does not parse or it is not
// there as a string.
std::string JsonStringAt(std::string_view body, const char* obj, const char* key);

// The string member `key` of `e`, or "" (absent, not a string, or `e`
// itself an error: a missing parent never throws). E: an element, or a
// lookup's result (chained lookups carry their error).
template <class E>
std::string StringMember(const E& e, const char* key) {
  std::string_view v;
  if (e[key].get(v)) return "";
  return std::string(v);
}

// What a JSON webhook says it is, as most vendors name it: the first of
// its "type", "event" and "event_type" string fields; "" for none, or for
// a body that is not a JSON object.
std::string JsonWebhookKind(std::string_view body);

}  // namespace dfm

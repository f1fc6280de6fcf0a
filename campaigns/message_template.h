// A step's text with the contact's fields: "Hi {{first_name|there}}, ..."
//
// Grammar: text with placeholders
//   placeholder = "{{" space* name ("|" fallback)? space* "}}"
//   name        = one of kTemplateFields
//   fallback    = any characters but "}" (used when the field is empty)
// Outside placeholders "{{" is not allowed (say "{ {" to write braces).
//
// Pure.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace dfm {

// The contact fields a template may name (sync/fact.h's, and the
// customer's name).
extern const std::vector<std::string> kTemplateFields;

// InvalidArgument, saying where, for a malformed template or an unknown
// field.
Status CheckTemplate(std::string_view text);

// The text with each placeholder replaced by the field's value, or its
// fallback when empty or absent. REQUIRES: CheckTemplate(text).ok().
std::string RenderTemplate(std::string_view text, const std::map<std::string, std::string>& fields);

}  // namespace dfm

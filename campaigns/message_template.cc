#include "campaigns/message_template.h"

#include <algorithm>

namespace dfm {

const std::vector<std::string> kTemplateFields = {
    "first_name", "last_name", "email",        "phone", "city",
    "state",      "country",   "company_name", "title", "customer_name"};

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Walks `text`: `literal` for the text between placeholders, `field` for
// each placeholder's name and fallback. InvalidArgument when malformed.
template <class Literal, class Field>
Status Walk(std::string_view text, Literal literal, Field field) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find("{{", at);
    if (open == std::string_view::npos) {
      literal(text.substr(at));
      return Status::OK();
    }
    literal(text.substr(at, open - at));
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos)
      return Status::InvalidArgument("a \"{{\" at character " + std::to_string(open) +
                                     " is never closed");
    std::string_view inside = text.substr(open + 2, close - open - 2);
    if (inside.find('{') != std::string_view::npos)
      return Status::InvalidArgument("a \"{{\" inside a placeholder at character " +
                                     std::to_string(open));
    const size_t bar = inside.find('|');
    const std::string_view name = Trim(inside.substr(0, bar));
    const std::string_view fallback =
        bar == std::string_view::npos ? std::string_view() : Trim(inside.substr(bar + 1));
    if (std::find(kTemplateFields.begin(), kTemplateFields.end(), name) == kTemplateFields.end())
      return Status::InvalidArgument("unknown field \"" + std::string(name) + "\" at character " +
                                     std::to_string(open));
    field(name, fallback);
    at = close + 2;
  }
  return Status::OK();
}

}  // namespace

Status CheckTemplate(std::string_view text) {
  return Walk(
      text, [](std::string_view) {}, [](std::string_view, std::string_view) {});
}

std::string RenderTemplate(std::string_view text,
                           const std::map<std::string, std::string>& fields) {
  std::string out;
  (void)Walk(
      text, [&out](std::string_view s) { out += s; },
      [&](std::string_view name, std::string_view fallback) {
        auto it = fields.find(std::string(name));
        out += it != fields.end() && !it->second.empty() ? std::string_view(it->second) : fallback;
      });
  return out;
}

}  // namespace dfm

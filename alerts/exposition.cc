#include "alerts/exposition.h"

#include <cmath>
#include <cstdlib>

namespace dfm {
namespace {

bool NameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// One line into *out; false when it is not a sample.
bool ParseLine(std::string_view line, MetricSample* out) {
  size_t i = 0;
  while (i < line.size() && NameChar(line[i], i == 0)) ++i;
  if (i == 0) return false;
  out->name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t k = i;
      while (i < line.size() && NameChar(line[i], i == k)) ++i;
      if (i == k || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
      std::string key(line.substr(k, i - k)), value;
      for (i += 2; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value.push_back(line[i] == 'n' ? '\n' : line[i]);
        } else {
          value.push_back(line[i]);
        }
      }
      if (i >= line.size()) return false;
      ++i;  // the closing quote
      out->labels[key] = std::move(value);
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const std::string rest(line.substr(i));
  if (rest.empty()) return false;
  char* end = nullptr;
  out->value = std::strtod(rest.c_str(), &end);
  return end != rest.c_str() && !std::isnan(out->value);
}

}  // namespace

std::vector<MetricSample> ParseExposition(std::string_view text) {
  std::vector<MetricSample> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    MetricSample s;
    if (ParseLine(line, &s)) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace dfm

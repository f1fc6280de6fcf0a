// Enumerations named in payloads and answers: each a table of (value,
// name), read both ways. Pure.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace dfm {

template <class E, size_t N>
std::string_view NameIn(const std::pair<E, std::string_view> (&table)[N], E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return table[0].second;
}

// False for a name the table lacks.
template <class E, size_t N>
bool ValueIn(const std::pair<E, std::string_view> (&table)[N], std::string_view name, E* out) {
  for (const auto& [v, n] : table) {
    if (n == name) {
      *out = v;
      return true;
    }
  }
  return false;
}

}  // namespace dfm

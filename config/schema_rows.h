// The rows of the configuration's schema (config/schema.h) as its tables
// write them: internal to config/schema*.cc.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

namespace dfm::schema_rows {

inline constexpr KeyEffect kReload = KeyEffect::kReload;
inline constexpr KeyEffect kRestart = KeyEffect::kRestart;

// The value into a field of its type.
template <typename T>
void Assign(T* out, const KeyValue& v) {
  if constexpr (std::is_same_v<T, bool>) {
    *out = v.flag;
  } else if constexpr (std::is_integral_v<T>) {
    *out = static_cast<T>(v.number);
  } else if constexpr (std::is_same_v<T, std::string>) {
    *out = v.text;
  } else {
    *out = v.items;
  }
}
#define INTO(field) [](GlobalSettings& s, const KeyValue& v) { Assign(&s.field, v); }

using Setter = std::function<void(GlobalSettings&, const KeyValue&)>;

inline KeySpec Spec(const char* key, KeyType type, const char* def, KeyEffect apply, Setter set, const char* doc) {
  KeySpec k;
  k.key = key;
  k.type = type;
  k.default_value = def;
  k.apply = apply;
  k.set = std::move(set);
  k.doc = doc;
  return k;
}
inline KeySpec Text(const char* key, const char* def, KeyEffect a, Setter set, const char* doc) {
  return Spec(key, KeyType::kText, def, a, std::move(set), doc);
}
inline KeySpec Flag(const char* key, const char* def, KeyEffect a, Setter set, const char* doc) {
  return Spec(key, KeyType::kBool, def, a, std::move(set), doc);
}
inline KeySpec List(const char* key, const char* def, KeyEffect a, Setter set, const char* doc) {
  return Spec(key, KeyType::kList, def, a, std::move(set), doc);
}
inline KeySpec Listen(const char* key, const char* def, KeyEffect a, Setter set, const char* doc) {
  return Spec(key, KeyType::kListen, def, a, std::move(set), doc);
}
inline KeySpec Num(const char* key, const char* def, int64_t lo, int64_t hi, KeyEffect a, Setter set,
            const char* doc) {
  KeySpec k = Spec(key, KeyType::kWholeNumber, def, a, std::move(set), doc);
  k.min = lo;
  k.max = hi;
  return k;
}
inline KeySpec Choice(const char* key, const char* def, std::vector<std::string> choices, KeyEffect a,
               Setter set, const char* doc) {
  KeySpec k = Spec(key, KeyType::kChoice, def, a, std::move(set), doc);
  k.choices = std::move(choices);
  return k;
}

}  // namespace dfm::schema_rows

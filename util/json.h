// A small JSON writer for responses, CLI output and JSON lines. Output is
// compact and valid UTF-8 is passed through; control characters and quotes
// are escaped. Invalid UTF-8 bytes are replaced by U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dfm {

void AppendJsonString(std::string* out, std::string_view s);

class JsonObject {
 public:
  JsonObject& Str(std::string_view key, std::string_view value);
  JsonObject& Int(std::string_view key, int64_t value);
  JsonObject& UInt(std::string_view key, uint64_t value);
  JsonObject& Bool(std::string_view key, bool value);
  JsonObject& Null(std::string_view key);
  // `json` must already be valid JSON text.
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string Finish() const { return body_ + "}"; }
  // Continues a finished object: more keys go after its own.
  // REQUIRES: `finished` is the text of a JSON object (a Finish() result, or
  // one written by hand) ending in its closing '}'.
  static JsonObject Extend(std::string finished);

 private:
  void Key(std::string_view key);
  std::string body_ = "{";
};

// An array of strings or of JSON texts (e.g. JsonObject::Finish results).
class JsonArray {
 public:
  JsonArray& Str(std::string_view value);
  // `json` must already be valid JSON text.
  JsonArray& Raw(std::string_view json);
  std::string Finish() const { return body_ + "]"; }

 private:
  std::string body_ = "[";
};

}  // namespace dfm

// Reads test data from the source tree (DFM_SOURCE_DIR is set by CMake).
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace dfm::testing {

inline std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(DFM_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Fixture(const std::string& name) {
  std::string s = ReadSourceFile("tests/fixtures/" + name);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace dfm::testing

#include "connectors/common/webhook_source.h"

namespace dfm {

int64_t PositiveSeconds(const SystemSettings& s, const std::string& key,
                        std::vector<SettingProblem>* problems) {
  int64_t v = -1;
  try {
    auto it = s.find(key);
    if (it != s.end()) v = std::stoll(it->second);
  } catch (...) {
  }
  if (v > 0) return v;
  problems->push_back({key, "must be a positive number of seconds"});
  return 0;
}

std::string UrlDecode(std::string_view s, bool plus_is_space, bool* ok) {
  std::string out;
  out.reserve(s.size());
  *ok = true;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      auto hex = [](char h) {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        *ok = false;
        return out;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseForm(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(pos, amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string_view k = pair.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      bool ok1 = true, ok2 = true;
      std::string dk = UrlDecode(k, true, &ok1);
      std::string dv = UrlDecode(v, true, &ok2);
      if (!ok1 || !ok2) return std::nullopt;
      out.emplace_back(std::move(dk), std::move(dv));
    }
    pos = amp + 1;
  }
  return out;
}

}  // namespace dfm

#include "sync/consent.h"

#include <array>

#include "util/strings.h"

namespace dfm {

namespace {

constexpr std::array<std::string_view, 9> kOptOutWords = {
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"};
constexpr std::array<std::string_view, 3> kOptInWords = {"START", "UNSTOP", "YES"};

// Bytes of non-ASCII characters (emoji, curly quotes, a no-break space
// that phones add) count as punctuation: "STOP\u00a0" and "Stop 🛑" are
// opt-outs. No opt-out word has a non-ASCII letter.
bool IsPunct(unsigned char c) {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
         (c >= 0x7b && c <= 0x7e) || c >= 0x80;
}

template <size_t N>
const std::string_view* Find(const std::array<std::string_view, N>& words, std::string_view w) {
  for (const auto& x : words)
    if (x == w) return &x;
  return nullptr;
}

}  // namespace

std::vector<std::string> SplitChannels(std::string_view list, char sep) {
  std::vector<std::string> out;
  while (!list.empty()) {
    size_t comma = list.find(sep);
    std::string_view ch = list.substr(0, comma);
    if (!ch.empty()) out.emplace_back(ch);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

std::string JoinChannels(const std::vector<std::string>& channels) {
  std::string out;
  for (const auto& c : channels) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

TextConsent ClassifyText(std::string_view body) {
  // Whole-text form: punctuation removed, whitespace collapsed.
  std::string whole;
  // Word form: punctuation is a separator too.
  std::vector<std::string> words(1);
  bool space = false;
  for (unsigned char c : body) {
    if (IsAsciiSpace(static_cast<char>(c))) {
      space = !whole.empty();
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (IsPunct(c)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (space) whole.push_back(' ');
    space = false;
    char u = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : static_cast<char>(c);
    whole.push_back(u);
    words.back().push_back(u);
  }
  if (words.back().empty()) words.pop_back();

  TextConsent r;
  if (const auto* w = Find(kOptOutWords, whole)) {
    r.kind = TextConsent::Kind::kOptOut;
    r.word = std::string(*w);
    return r;
  }
  if (const auto* w = Find(kOptInWords, whole)) {
    r.kind = TextConsent::Kind::kOptIn;
    r.word = std::string(*w);
    return r;
  }
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string_view* w = Find(kOptOutWords, words[i]);
    std::string pair;
    if (!w && i + 1 < words.size()) {
      pair = words[i] + " " + words[i + 1];
      w = Find(kOptOutWords, pair);
    }
    if (w) {
      r.kind = TextConsent::Kind::kReview;
      r.word = std::string(*w);
      return r;
    }
  }
  return r;
}

bool ConsentFromText(std::string_view text, Consent* c) {
  TextConsent tc = ClassifyText(text);
  if (tc.kind == TextConsent::Kind::kNone) return false;
  c->change = tc.kind == TextConsent::Kind::kOptOut  ? Consent::Change::kOptOut
              : tc.kind == TextConsent::Kind::kOptIn ? Consent::Change::kOptIn
                                                     : Consent::Change::kReview;
  c->reason = (tc.kind == TextConsent::Kind::kReview ? "contains " : "keyword ") + tc.word;
  return true;
}

}  // namespace dfm

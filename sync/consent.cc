#include "sync/consent.h"

#include <array>

#include "util/strings.h"

namespace dfm {

namespace {

constexpr std::array<std::string_view, 10> kOptOutWords = {
    "STOP",   "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL",
    "END",    "QUIT",    "REVOKE",   "OPTOUT",      "OPT OUT"};
constexpr std::array<std::string_view, 3> kOptInWords = {"START", "UNSTOP", "YES"};

constexpr bool HasSpace(std::string_view w) { return w.find(' ') != std::string_view::npos; }
// Among a longer text's words, ClassifyText finds a two-word entry only as
// "OPT" then "OUT" (the last entry); any other two-word entry starts with a
// listed one-word entry, which finds it ("STOP ALL" as STOP). The whole-text
// comparison finds every entry as it is.
constexpr bool EveryPairIsFound() {
  for (size_t i = 0; i + 1 < kOptOutWords.size(); ++i) {
    std::string_view w = kOptOutWords[i];
    if (!HasSpace(w)) continue;
    bool first_listed = false;
    for (const auto& one : kOptOutWords)
      if (!HasSpace(one) && w.substr(0, w.find(' ')) == one) first_listed = true;
    if (!first_listed) return false;
  }
  for (const auto& w : kOptInWords)
    if (HasSpace(w)) return false;
  return kOptOutWords.back() == "OPT OUT";
}
static_assert(EveryPairIsFound(), "a two-word keyword ClassifyText cannot find in a text");

// Bytes of non-ASCII characters (emoji, curly quotes, a no-break space
// that phones add) count as punctuation: "STOP\u00a0" and "Stop 🛑" are
// opt-outs. No opt-out word has a non-ASCII letter.
bool IsPunct(unsigned char c) {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
         (c >= 0x7b && c <= 0x7e) || c >= 0x80;
}

// The longest opt-out or opt-in word, "UNSUBSCRIBE": a longer word or whole
// text can match none of them.
constexpr size_t kLongestWord = 11;

template <size_t N>
constexpr bool AllFit(const std::array<std::string_view, N>& words) {
  for (const auto& w : words)
    if (w.size() > kLongestWord) return false;
  return true;
}
static_assert(AllFit(kOptOutWords) && AllFit(kOptInWords),
              "a listed word is longer than kLongestWord");

// The first kLongestWord upper-cased characters of a word or of the whole
// text, and whether there were more.
class ShortText {
 public:
  void Push(char c) {
    if (n_ < kLongestWord)
      buf_[n_++] = c;
    else
      longer_ = true;
  }
  bool empty() const { return n_ == 0; }
  void clear() {
    n_ = 0;
    longer_ = false;
  }
  // The text when it may be a word of the lists; empty (which none is) when longer.
  std::string_view view() const {
    return longer_ ? std::string_view() : std::string_view(buf_, n_);
  }

 private:
  char buf_[kLongestWord] = {};
  size_t n_ = 0;
  bool longer_ = false;
};

template <size_t N>
const std::string_view* Find(const std::array<std::string_view, N>& words, std::string_view w) {
  for (const auto& x : words)
    if (x == w) return &x;
  return nullptr;
}

}  // namespace

std::string SupersededReason(std::string_view op, std::string_view push_id,
                             std::string_view system) {
  return "superseded by a later " + std::string(op) + " (" + std::string(push_id) + ") before " +
         std::string(system) + " took it";
}

std::string SupersedingPush(std::string_view reason) {
  constexpr std::string_view kHead = "superseded by a later ";
  if (reason.substr(0, kHead.size()) != kHead) return "";
  const size_t open = reason.find(" (", kHead.size());
  const size_t close = open == std::string_view::npos ? open : reason.find(") before ", open);
  if (close == std::string_view::npos) return "";
  return std::string(reason.substr(open + 2, close - open - 2));
}

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
  // One pass, no allocation: the whole-text form (punctuation removed,
  // whitespace collapsed) and the current word (punctuation separates
  // words too) are kept only as far as a listed word could match them.
  ShortText whole, word, previous;
  bool space = false;
  const std::string_view* found = nullptr;  // the first opt-out word among the words
  auto end_word = [&] {
    if (word.empty()) return;
    // Word i and the pair (i, i+1) are tried before word i+1 alone; only
    // "OPT" + "OUT" pairs, and "OPT" alone is no word of the lists.
    if (!found) {
      found = previous.view() == "OPT" && word.view() == "OUT" ? &kOptOutWords.back()
                                                               : Find(kOptOutWords, word.view());
    }
    previous = word;
    word.clear();
  };
  for (unsigned char c : body) {
    if (IsAsciiSpace(static_cast<char>(c))) {
      space = !whole.empty();
      end_word();
      continue;
    }
    if (IsPunct(c)) {
      end_word();
      continue;
    }
    if (space) whole.Push(' ');
    space = false;
    char u = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : static_cast<char>(c);
    whole.Push(u);
    word.Push(u);
  }
  end_word();

  TextConsent r;
  if (const auto* out = Find(kOptOutWords, whole.view())) {
    r.kind = TextConsent::Kind::kOptOut;
    r.word = std::string(*out);
  } else if (const auto* in = Find(kOptInWords, whole.view())) {
    r.kind = TextConsent::Kind::kOptIn;
    r.word = std::string(*in);
  } else if (found) {
    r.kind = TextConsent::Kind::kReview;
    r.word = std::string(*found);
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
  c->actor = Consent::Actor::kPerson;
  c->needs_reply = tc.kind == TextConsent::Kind::kOptIn && tc.word == "YES";
  return true;
}

const char* ActorName(Consent::Actor a) {
  switch (a) {
    case Consent::Actor::kStaff:
      return "staff";
    case Consent::Actor::kCarrier:
      return "carrier";
    case Consent::Actor::kPerson:
      break;
  }
  return "person";
}

Consent::Actor ActorOf(std::string_view name) {
  if (name == "staff") return Consent::Actor::kStaff;
  if (name == "carrier") return Consent::Actor::kCarrier;
  return Consent::Actor::kPerson;
}

}  // namespace dfm

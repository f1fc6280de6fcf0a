#include "console/read_parts.h"

#include <simdjson.h>

#include <algorithm>

#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

namespace {

// The first byte of a UTF-8 character (not a continuation byte).
bool Starts(const std::string& s, size_t i) {
  return i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
}

std::string Encode(const ApiResponse& whole, const std::string& token, uint64_t offset,
                   size_t len) {
  return JsonObject()
      .Int("v", 2)
      .Int("status", whole.status)
      .Str("content_type", whole.content_type)
      .Str("token", token)
      .UInt("offset", offset)
      .UInt("total", whole.body.size())
      .Str("body", std::string_view(whole.body).substr(offset, len))
      .Finish();
}

}  // namespace

std::string EncodeReadPart(const ApiResponse& whole, const std::string& token, uint64_t offset,
                           size_t max_encoded, size_t* length) {
  const std::string& b = whole.body;
  size_t len = std::min<size_t>(b.size() - offset, max_encoded / 2);
  for (;;) {
    size_t end = offset + len;
    while (end > offset + 1 && !Starts(b, end)) --end;
    while (end < b.size() && !Starts(b, end)) ++end;  // one character at least
    std::string part = Encode(whole, token, offset, end - offset);
    if (part.size() <= max_encoded || end - offset <= 1) {
      if (length) *length = end - offset;
      return part;
    }
    len = (end - offset) / 2;  // escapes took more room than the bytes
  }
}

bool DecodeReadPart(std::string_view data, ReadPart* p) {
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  int64_t v = 0, status = 0;
  std::string_view content_type, token, body;
  if (parser.parse(data.data(), data.size()).get(o) != simdjson::SUCCESS ||
      o["v"].get(v) != simdjson::SUCCESS || v != 2 ||
      o["status"].get(status) != simdjson::SUCCESS || status < 100 || status > 599 ||
      o["content_type"].get(content_type) != simdjson::SUCCESS ||
      o["token"].get(token) != simdjson::SUCCESS || token.empty() ||
      o["offset"].get(p->offset) != simdjson::SUCCESS ||
      o["total"].get(p->total) != simdjson::SUCCESS || o["body"].get(body) != simdjson::SUCCESS)
    return false;
  if (body.empty() || p->offset >= p->total || body.size() > p->total - p->offset) return false;
  p->status = static_cast<int>(status);
  p->content_type.assign(content_type);
  p->token.assign(token);
  p->body.assign(body);
  return true;
}

std::string ParkedAnswers::Park(const std::string& tenant, ApiResponse a, int64_t now_us) {
  std::lock_guard<std::mutex> lk(mu_);
  Expire(now_us);
  if (a.body.empty() || bytes_ + a.body.size() > max_bytes_) return "";
  std::string token = RandomHex(16);
  bytes_ += a.body.size();
  parked_[token] = Parked{tenant, std::move(a), now_us + ttl_us_, 0};
  return token;
}

bool ParkedAnswers::Part(const std::string& token, const std::string& tenant, uint64_t offset,
                         int64_t now_us, size_t max_encoded, std::string* encoded) {
  std::lock_guard<std::mutex> lk(mu_);
  Expire(now_us);
  // The token is the asking node's secret: compared in constant time.
  auto it = parked_.begin();
  while (it != parked_.end() && !ConstantTimeEquals(it->first, token)) ++it;
  if (it == parked_.end() || it->second.tenant != tenant) return false;
  Parked& p = it->second;
  // The part asked again (an answer lost on its way), or the next one.
  if (offset > p.next || offset >= p.answer.body.size() || !Starts(p.answer.body, offset))
    return false;
  size_t length = 0;
  *encoded = EncodeReadPart(p.answer, token, offset, max_encoded, &length);
  p.next = std::max<uint64_t>(p.next, offset + length);
  p.expires_us = now_us + ttl_us_;
  if (p.next >= p.answer.body.size()) {
    bytes_ -= p.answer.body.size();
    parked_.erase(it);
  }
  return true;
}

size_t ParkedAnswers::bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_;
}

void ParkedAnswers::Expire(int64_t now_us) {
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->second.expires_us > now_us) {
      ++it;
      continue;
    }
    bytes_ -= it->second.answer.body.size();
    it = parked_.erase(it);
  }
}

}  // namespace dfm

#include "console/read_parts.h"

#include <simdjson.h>

#include <algorithm>
#include <optional>

#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

namespace {

std::string Encode(const ApiResponse& whole, const std::string& token, uint64_t offset,
                   uint64_t total, std::string_view bytes) {
  return JsonObject()
      .Int("v", 2)
      .Int("status", whole.status)
      .Str("content_type", whole.content_type)
      .Str("token", token)
      .UInt("offset", offset)
      .UInt("total", total)
      .Str("body64", Base64Encode(bytes))
      .Finish();
}

// The bytes a part within `max_encoded` carries: base64 takes 4 characters
// for 3 bytes, and the rest of the part (status, type, token) under 1 KiB.
size_t PartBytes(const ApiResponse& whole, const std::string& token, size_t max_encoded) {
  const size_t rest = 256 + whole.content_type.size() * 6 + token.size() * 6;
  const size_t room = max_encoded > rest + 4 ? max_encoded - rest : 4;
  return std::max<size_t>(3, room / 4 * 3);
}

}  // namespace

std::string EncodeReadPart(const ApiResponse& whole, const std::string& token, uint64_t offset,
                           size_t max_encoded, size_t* length) {
  const size_t len =
      std::min<size_t>(whole.body.size() - offset, PartBytes(whole, token, max_encoded));
  if (length) *length = len;
  return Encode(whole, token, offset, whole.body.size(),
                std::string_view(whole.body).substr(offset, len));
}

bool DecodeReadPart(std::string_view data, ReadPart* p) {
  // Most answers are whole (version 1): told apart before a parse.
  if (data.find("\"v\":2,") == std::string_view::npos) return false;
  simdjson::dom::parser parser;
  simdjson::dom::object o;
  int64_t v = 0, status = 0;
  std::string_view content_type, token, body64;
  if (parser.parse(data.data(), data.size()).get(o) != simdjson::SUCCESS ||
      o["v"].get(v) != simdjson::SUCCESS || v != 2 ||
      o["status"].get(status) != simdjson::SUCCESS || status < 100 || status > 599 ||
      o["content_type"].get(content_type) != simdjson::SUCCESS ||
      o["token"].get(token) != simdjson::SUCCESS || token.empty() ||
      o["offset"].get(p->offset) != simdjson::SUCCESS ||
      o["total"].get(p->total) != simdjson::SUCCESS || o["body64"].get(body64) != simdjson::SUCCESS)
    return false;
  std::optional<std::string> body = Base64Decode(body64);
  if (!body || body->empty() || p->offset >= p->total || body->size() > p->total - p->offset)
    return false;
  p->status = static_cast<int>(status);
  p->content_type.assign(content_type);
  p->token.assign(token);
  p->body = std::move(*body);
  return true;
}

std::string ParkedAnswers::Park(const std::string& tenant, ApiResponse a, int64_t now_us) {
  std::lock_guard<std::mutex> lk(mu_);
  ExpireLocked(now_us);
  size_t& tenant_bytes = tenant_bytes_[tenant];
  if (a.body.empty() || bytes_ + a.body.size() > max_bytes_ ||
      tenant_bytes + a.body.size() > tenant_max_bytes_) {
    if (tenant_bytes == 0) tenant_bytes_.erase(tenant);
    return "";
  }
  std::string token = RandomHex(16);
  bytes_ += a.body.size();
  tenant_bytes += a.body.size();
  parked_[token] = Parked{tenant, std::move(a), now_us + ttl_us_, 0};
  return token;
}

bool ParkedAnswers::Part(const std::string& token, const std::string& tenant, uint64_t offset,
                         int64_t now_us, size_t max_encoded, std::string* encoded) {
  ApiResponse head;  // the part's status and type; its bytes apart
  std::string bytes;
  uint64_t total = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ExpireLocked(now_us);
    // The token is the asking node's secret: compared in constant time.
    auto it = parked_.begin();
    while (it != parked_.end() && !ConstantTimeEquals(it->first, token)) ++it;
    if (it == parked_.end() || it->second.tenant != tenant) return false;
    Parked& p = it->second;
    // The part asked again (an answer lost on its way), or the next one.
    total = p.answer.body.size();
    if (offset > p.next || offset >= total) return false;
    head.status = p.answer.status;
    head.content_type = p.answer.content_type;
    bytes = p.answer.body.substr(offset, PartBytes(p.answer, token, max_encoded));
    p.next = std::max<uint64_t>(p.next, offset + bytes.size());
    p.expires_us = now_us + ttl_us_;
    if (p.next >= total) LetGo(it);
  }
  *encoded = Encode(head, token, offset, total, bytes);  // outside the lock
  return true;
}

size_t ParkedAnswers::bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_;
}

void ParkedAnswers::Expire(int64_t now_us) {
  std::lock_guard<std::mutex> lk(mu_);
  ExpireLocked(now_us);
}

void ParkedAnswers::DropTenant(const std::string& tenant) {
  std::lock_guard<std::mutex> lk(mu_);
  EraseIf([&tenant](const Parked& p) { return p.tenant == tenant; });
}

void ParkedAnswers::ExpireLocked(int64_t now_us) {
  EraseIf([now_us](const Parked& p) { return p.expires_us <= now_us; });
}

template <typename Pred>
void ParkedAnswers::EraseIf(Pred gone) {
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (!gone(it->second)) {
      ++it;
      continue;
    }
    it = LetGo(it);
  }
}

std::map<std::string, ParkedAnswers::Parked>::iterator ParkedAnswers::LetGo(
    std::map<std::string, Parked>::iterator it) {
  const size_t size = it->second.answer.body.size();
  bytes_ -= size;
  auto share = tenant_bytes_.find(it->second.tenant);
  if ((share->second -= size) == 0) tenant_bytes_.erase(share);
  return parked_.erase(it);
}

}  // namespace dfm

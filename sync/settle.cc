#include "sync/settle.h"

#include <simdjson.h>

#include <algorithm>

#include "util/json.h"

namespace dfm {

Status DecodeSettleRequest(std::string_view body, SettleRequest* out) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS)
    return Status::InvalidArgument("body is not a JSON object");
  SettleRequest r;
  int64_t seq = 0;
  if (root["conflict"].get(seq) != simdjson::SUCCESS || seq <= 0)
    return Status::InvalidArgument("\"conflict\" must be the identity.conflict's sequence number");
  r.conflict_seq = static_cast<uint64_t>(seq);
  std::string_view s;
  bool has_contact = root["contact"].get(s) == simdjson::SUCCESS && !s.empty();
  if (has_contact) r.contact_id = std::string(s);
  bool dismiss = false;
  if (root["dismiss"].get(dismiss) != simdjson::SUCCESS) dismiss = false;
  r.dismiss = dismiss;
  if (has_contact == r.dismiss)
    return Status::InvalidArgument(
        "give either \"contact\" (a candidate's id) or \"dismiss\": true");
  if (root["reason"].get(s) == simdjson::SUCCESS) r.reason = std::string(s);
  *out = std::move(r);
  return Status::OK();
}

std::string EncodeSettleRequest(const SettleRequest& r) {
  JsonObject o;
  o.UInt("conflict", r.conflict_seq);
  if (r.dismiss) {
    o.Bool("dismiss", true);
  } else {
    o.Str("contact", r.contact_id);
  }
  if (!r.reason.empty()) o.Str("reason", r.reason);
  return o.Finish();
}

std::string SettleIdempotencyKey(uint64_t conflict_seq) {
  return "settle/" + std::to_string(conflict_seq);
}

std::string SourceDecisionKey(uint64_t seq, size_t n) {
  return "s/" + std::to_string(seq) + "/" + std::to_string(n);
}

Status PlanSettlement(const Event& conflict, std::string_view tenant, const SettleRequest& r,
                      EventDraft* out) {
  const std::string at = "event " + std::to_string(r.conflict_seq);
  if (conflict.seq != r.conflict_seq || conflict.type != ev::kIdentityConflict)
    return Status::InvalidArgument(at + " is not an identity.conflict");
  if (conflict.tenant != tenant)
    return Status::InvalidArgument(at + " belongs to tenant " + conflict.tenant);
  DomainEvent c;
  if (!AsDomainEvent(conflict, &c))
    return Status::InvalidArgument(at + ": its payload does not read");
  if (r.dismiss == !r.contact_id.empty())
    return Status::InvalidArgument("choose a candidate contact or dismiss, not both or neither");
  if (!r.dismiss) {
    bool candidate = std::any_of(c.candidates.begin(), c.candidates.end(),
                                 [&](const auto& k) { return k.first == r.contact_id; });
    if (!candidate) {
      std::string known;
      for (const auto& [id, key] : c.candidates) known += (known.empty() ? "" : ", ") + id;
      return Status::InvalidArgument("contact " + r.contact_id + " is not a candidate of " + at +
                                     " (candidates: " + known + ")");
    }
  }
  DomainEvent s;
  s.type = std::string(ev::kIdentitySettled);
  s.contact_id = r.dismiss ? std::string() : r.contact_id;
  s.system = c.system;
  s.external_id = c.external_id;
  s.candidates = c.candidates;
  s.fields = c.fields;
  s.webhook_seq = c.webhook_seq;
  s.reason = r.reason;
  *out = ToDraft(s, conflict.tenant, conflict.stream, conflict.id,
                 conflict.correlation_id.IsZero() ? conflict.id : conflict.correlation_id);
  out->idempotency_system = kDecisionKeySystem;
  out->idempotency_key = SettleIdempotencyKey(r.conflict_seq);
  return Status::OK();
}

std::vector<size_t> SettledFacts(const std::vector<ContactFact>& facts,
                                 const DomainEvent& settled) {
  std::vector<size_t> same_fields, same_id;
  for (size_t i = 0; i < facts.size(); ++i) {
    const ContactFact& f = facts[i];
    if (f.system != settled.system || f.external_id != settled.external_id) continue;
    same_id.push_back(i);
    if (f.fields == settled.fields) same_fields.push_back(i);
  }
  return same_fields.empty() ? same_id : same_fields;
}

}  // namespace dfm

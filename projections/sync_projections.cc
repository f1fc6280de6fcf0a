#include "projections/sync_projections.h"

#include <cstdio>

#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/identity.h"
#include "util/json.h"

namespace dfm {

namespace {

// The runner folds each event into every projection in turn: decode it
// once per thread and hand the others the same result.
const DomainEvent* Decode(const Event& e) {
  if (!IsDomainEventType(e.type)) return nullptr;
  thread_local struct {
    uint64_t seq = 0;
    EventId id;
    bool ok = false;
    DomainEvent d;
  } last;
  if (last.seq != e.seq || last.id != e.id || e.seq == 0) {
    last.seq = e.seq;
    last.id = e.id;
    last.ok = DecodeDomainEvent(e.type, e.payload, &last.d).ok();
  }
  return last.ok ? &last.d : nullptr;
}

void Link(ProjectionState* st, const std::string& tenant, const std::string& contact,
          const std::string& system, const std::string& ext) {
  if (ext.empty() || system.empty()) return;
  std::string ckey = "c/" + contact + "/" + system;
  if (auto old = st->Get(ckey); old && *old != ext) {
    auto owner = st->Get(ExternalIdKey(tenant, system, *old));
    if (owner && *owner == contact) st->Erase(ExternalIdKey(tenant, system, *old));
  }
  st->Put(ckey, ext);
  st->Put(ExternalIdKey(tenant, system, ext), contact);
}

// Moves an identity key (phone or email) from `old_value` to `new_value`.
void MoveIdentity(ProjectionState* st, const std::string& tenant, const std::string& contact,
                  const std::string& field, const std::string& old_value,
                  const std::string& new_value) {
  auto key = [&](const std::string& v) {
    return field == fields::kPhone ? PhoneKey(tenant, v) : EmailKey(tenant, v);
  };
  if (!old_value.empty()) {
    auto owner = st->Get(key(old_value));
    if (owner && *owner == contact) st->Erase(key(old_value));
  }
  if (!new_value.empty()) st->Put(key(new_value), contact);
}

// A message's id in `system` <-> its engine key (both ways).
void LinkMessage(ProjectionState* st, const std::string& tenant, const DomainEvent& d) {
  if (d.external_id.empty() || d.system.empty()) return;
  st->Put(MessageIdKey(tenant, d.system, d.external_id), d.contact_id + " " + d.message_key);
  st->Put(MessageKeyKey(tenant, d.message_key, d.system), d.external_id);
}

}  // namespace

void MappingsProjection::Fold(const Event& e, ProjectionState* st) {
  const DomainEvent* decoded = Decode(e);
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if (d.contact_id.empty()) return;
  if (!d.message_key.empty()) {
    // The ids of a message in each system: stated, linked later, or written
    // by a push (a note's or tag's push names the call, not a message id).
    if (d.type == ev::kMessageLogged || d.type == ev::kMessageStatus ||
        (d.type == ev::kPushSucceeded && IsMessageOp(d.op)))
      LinkMessage(st, e.tenant, d);
    return;
  }
  if (d.type == ev::kContactCreated) {
    Link(st, e.tenant, d.contact_id, d.system, d.external_id);
    for (const char* f : {fields::kPhone, fields::kEmail}) {
      auto it = d.fields.find(f);
      if (it != d.fields.end()) MoveIdentity(st, e.tenant, d.contact_id, f, "", it->second);
    }
  } else if (d.type == ev::kContactLinked || d.type == ev::kPushSucceeded) {
    Link(st, e.tenant, d.contact_id, d.system, d.external_id);
  } else if (d.type == ev::kContactChanged) {
    for (const auto& c : d.changes) {
      if (c.field == fields::kPhone || c.field == fields::kEmail)
        MoveIdentity(st, e.tenant, d.contact_id, c.field, c.old_value, c.new_value);
    }
  }
}

void ContactViewProjection::Fold(const Event& e, ProjectionState* st) {
  const DomainEvent* decoded = Decode(e);
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if (d.contact_id.empty()) return;
  const std::string& c = d.contact_id;
  if (d.type == ev::kContactCreated) {
    for (const auto& [f, v] : d.fields) {
      st->Put("f/" + c + "/" + f, v);
      st->Put("s/" + c + "/" + f, d.system);
    }
    st->Erase("d/" + c);
  } else if (d.type == ev::kContactChanged) {
    for (const auto& ch : d.changes) {
      st->Put("f/" + c + "/" + ch.field, ch.new_value);
      st->Put("s/" + c + "/" + ch.field, d.system);
    }
    st->Erase("d/" + c);
  } else if (d.type == ev::kContactDeleted) {
    st->Put("d/" + c, "1");
  }
}

void OptOutRegistryProjection::Fold(const Event& e, ProjectionState* st) {
  const DomainEvent* decoded = Decode(e);
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if ((d.type != ev::kOptedOut && d.type != ev::kOptedIn)) return;
  const bool out = d.type == ev::kOptedOut;
  const int64_t at = d.source_time_us ? d.source_time_us : e.recorded_at_us;
  char seq[21], when[21];
  std::snprintf(seq, sizeof(seq), "%020llu", static_cast<unsigned long long>(e.seq));
  std::snprintf(when, sizeof(when), "%020lld", static_cast<long long>(at));
  std::string entry = JsonObject()
                          .Str("status", out ? "out" : "in")
                          .Str("system", d.system)
                          .Str("contact_id", d.contact_id)
                          .Str("cause", d.external_id)
                          .Str("reason", d.reason)
                          .Str("event_id", e.id.ToString())
                          .Int("at_us", at)
                          .Finish();
  for (const char* f : {fields::kPhone, fields::kEmail}) {
    auto who = d.fields.find(f);
    if (who == d.fields.end() || who->second.empty()) continue;
    for (const std::string& ch : SplitChannels(d.channel)) {
      std::string base = e.tenant + "/" + who->second + "/" + ch;
      st->Put("h/" + base + "/" + seq, entry);
      // The current status is the newest by when it happened, not by when
      // it was recorded: a late, older opt-in never undoes a newer opt-out;
      // at the same time, the opt-out wins.
      auto cur = st->Get("o/" + base);
      if (cur) {
        size_t sp = cur->find(' ');
        std::string cur_when = cur->substr(sp + 1, 20);
        bool cur_out = cur->compare(0, sp, "out") == 0;
        if (cur_when > when || (cur_when == when && cur_out && !out)) continue;
      }
      st->Put("o/" + base,
              std::string(out ? "out" : "in") + " " + when + " " + seq + " " + d.system);
    }
  }
}

void SyncStatusProjection::Fold(const Event& e, ProjectionState* st) {
  const DomainEvent* decoded = Decode(e);
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if (d.push_id.empty()) return;
  std::string key = "p/" + d.push_id;
  std::string state, system = d.system, contact = d.contact_id;
  if (auto cur = st->Get(key)) {
    size_t a = cur->find(' '), b = cur->find(' ', a + 1);
    state = cur->substr(0, a);
    if (system.empty()) system = cur->substr(a + 1, b - a - 1);
    size_t c = cur->find(' ', b + 1);
    if (contact.empty()) contact = cur->substr(b + 1, c == std::string::npos ? c : c - b - 1);
  }
  std::string next;
  if (d.type == ev::kPushRequested) {
    next = state.empty() ? "pending" : state;
  } else if (d.type == ev::kPushAttempted) {
    next = d.outcome == "retry" ? "retrying" : state;
  } else if (d.type == ev::kPushSucceeded) {
    next = "succeeded";
  } else if (d.type == ev::kPushDeadLettered) {
    next = "dead";
  } else {
    return;
  }
  if (next.empty() || next == state) return;
  if (!state.empty()) {
    st->Add("n/" + e.tenant + "/" + system + "/" + state, -1);
    st->Add("k/" + contact + "/" + state, -1);
  }
  st->Add("n/" + e.tenant + "/" + system + "/" + next, 1);
  st->Add("k/" + contact + "/" + next, 1);
  st->Put(key, next + " " + system + " " + contact + " " + e.tenant);
}

}  // namespace dfm

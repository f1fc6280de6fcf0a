#include "projections/sync_projections.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "events/sealing.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/erasure.h"
#include "sync/fact.h"
#include "sync/identity.h"
#include "util/json.h"

namespace dfm {

namespace {

void Link(ProjectionState* st, const std::string& tenant, const std::string& contact,
          const std::string& system, const std::string& ext) {
  if (ext.empty() || system.empty()) return;
  std::string ckey = "c/" + contact + "/" + system;
  std::optional<std::string_view> old = st->Peek(ckey);
  if (old && *old == ext) {
    // Linked already (every push's success says so again): nothing changes
    // unless another contact took the id since.
    std::optional<std::string_view> owner = st->Peek(ExternalIdKey(tenant, system, ext));
    if (owner && *owner == contact) return;
  } else if (old) {
    std::string old_key = ExternalIdKey(tenant, system, *old);
    std::optional<std::string_view> owner = st->Peek(old_key);
    if (owner && *owner == contact) st->Erase(old_key);
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
    std::string old_key = key(old_value);
    std::optional<std::string_view> owner = st->Peek(old_key);
    if (owner && *owner == contact) st->Erase(old_key);
  }
  if (!new_value.empty()) st->Put(key(new_value), contact);
  if (field != fields::kEmail) return;
  // The folded form too (a tenant may match plus addresses as one person).
  if (!old_value.empty()) {
    std::string old_key = FoldedEmailKey(tenant, old_value);
    std::optional<std::string_view> owner = st->Peek(old_key);
    if (owner && *owner == contact) st->Erase(old_key);
  }
  if (!new_value.empty()) st->Put(FoldedEmailKey(tenant, new_value), contact);
}

// A contact that is written to is not deleted (looked at first: most
// never were, and an erase of an absent key is still a write).
void Undelete(ProjectionState* st, const std::string& contact) {
  std::string key = "d/" + contact;
  if (st->Peek(key)) st->Erase(key);
}

}  // namespace

bool MappingsProjection::OwnedBy(std::string_view key, std::string_view value,
                                 std::string_view contact_id) const {
  const std::string_view kind = key.substr(0, 2);
  if (kind == "x/" || kind == "p/" || kind == "e/" || kind == "f/") return value == contact_id;
  return true;
}

bool MappingsProjection::Uses(std::string_view type) const {
  return type == ev::kContactCreated || type == ev::kContactChanged ||
         type == ev::kContactLinked || type == ev::kPushSucceeded;
}

void MappingsProjection::FoldDecoded(const Event& e, const DomainEvent* decoded,
                                     ProjectionState* st) {
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if (d.contact_id.empty()) return;
  // A push of a message (or of a note or tags about one) answers with
  // the id of what it wrote, not of the person's record.
  if (!d.message_key.empty()) return;
  if (d.type == ev::kContactCreated) {
    Link(st, e.tenant, d.contact_id, d.system, d.external_id);
    for (const char* f : {fields::kPhone, fields::kEmail}) {
      auto it = d.fields.find(f);
      if (it != d.fields.end()) MoveIdentity(st, e.tenant, d.contact_id, f, "", it->second);
    }
  } else if (d.type == ev::kContactLinked || d.type == ev::kPushSucceeded) {
    if (LinksNoRecord(d)) return;  // an identity conflict's duplicate: unsettled
    // A deleted contact's mark of a record linked already moves no link
    // (the contact's state: ApplyPushEnded).
    if (!MarksRecordAfterDeletion(d)) Link(st, e.tenant, d.contact_id, d.system, d.external_id);
    // The person's other records there (a consent push set each): theirs
    // too, unless another contact holds that id.
    auto ids = d.fields.find("answer.ids");
    if (d.type != ev::kPushSucceeded || ids == d.fields.end() || d.system.empty()) return;
    for (const auto& id : SplitChannels(ids->second)) {
      const std::string key = ExternalIdKey(e.tenant, d.system, id);
      if (!id.empty() && !st->Peek(key)) st->Put(key, d.contact_id);
    }
  } else if (d.type == ev::kContactChanged) {
    for (const auto& c : d.changes) {
      if (c.field == fields::kPhone || c.field == fields::kEmail)
        MoveIdentity(st, e.tenant, d.contact_id, c.field, c.old_value, c.new_value);
    }
  }
}

bool ContactViewProjection::Uses(std::string_view type) const {
  return type == ev::kContactCreated || type == ev::kContactChanged ||
         type == ev::kContactDeleted;
}

void ContactViewProjection::FoldDecoded(const Event& e, const DomainEvent* decoded,
                                        ProjectionState* st) {
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if (d.contact_id.empty()) return;
  const std::string& c = d.contact_id;
  // One key per field, its value and the system that set it together.
  thread_local std::string key, value;
  auto set = [&](const std::string& field, const std::string& v) {
    key.assign("f/").append(c).append("/").append(field);
    value.assign(d.system).append(" ").append(v);
    st->Put(key, value);
  };
  if (d.type == ev::kContactCreated) {
    for (const auto& [f, v] : d.fields) set(f, v);
    Undelete(st, c);
  } else if (d.type == ev::kContactChanged) {
    for (const auto& ch : d.changes) set(ch.field, ch.new_value);
    Undelete(st, c);
  } else if (d.type == ev::kContactDeleted) {
    st->Put("d/" + c, "1");
  }
}

bool OptOutRegistryProjection::Uses(std::string_view type) const {
  return type == ev::kOptedOut || type == ev::kOptedIn || type == ev::kConsentConflict ||
         type == kContactErasedType;
}

std::string ErasedSubjectKey(std::string_view tenant, std::string_view hash,
                             std::string_view channel) {
  std::string k = "z/";
  k.append(tenant).append("/").append(hash).append("/").append(channel);
  return k;
}

namespace {

// "<in|out> <when> <seq> <system>[ <contact id>]" of the o/ and z/ rows;
// `when` and `seq` are 20 characters each; an o/ row names the contact
// whose statement it is (layout 5), a z/ row none.
std::string StatusRow(bool out, int64_t at, uint64_t seq, std::string_view system,
                      std::string_view contact_id = {}) {
  char when[21], seq_text[21];
  std::snprintf(when, sizeof(when), "%020lld", static_cast<long long>(at));
  std::snprintf(seq_text, sizeof(seq_text), "%020llu", static_cast<unsigned long long>(seq));
  std::string row(out ? "out" : "in");
  row.append(" ").append(when).append(" ").append(seq_text).append(" ").append(system);
  if (!contact_id.empty()) row.append(" ").append(contact_id);
  return row;
}

// Whether (out, at) supersedes the status row `cur` (ConsentSupersedes).
bool SupersedesRow(bool out, int64_t at, std::string_view cur) {
  size_t sp = cur.find(' ');
  std::string_view cur_when = cur.substr(sp + 1, 20);
  int64_t cur_at = 0;
  std::from_chars(cur_when.data(), cur_when.data() + cur_when.size(), cur_at);
  return ConsentSupersedes(out, at, cur.compare(0, sp, "out") == 0, cur_at);
}

bool JsonNamesContact(std::string_view json, std::string_view contact_id) {
  std::string needle = "\"contact_id\":\"";
  needle.append(contact_id).append("\"");
  return json.find(needle) != std::string_view::npos;
}

}  // namespace

bool OptOutRegistryProjection::OwnedBy(std::string_view key, std::string_view value,
                                       std::string_view contact_id) const {
  if (key.substr(0, 2) == "h/" || key.substr(0, 2) == "c/") return JsonNamesContact(value, contact_id);
  // An address's current status is the erased contact's only if its
  // statement is the newest: another contact's later one on the same
  // address stays (the row names its contact as its last word).
  if (key.substr(0, 2) == "o/") {
    const size_t words = static_cast<size_t>(std::count(value.begin(), value.end(), ' '));
    return words < 4 || value.substr(value.rfind(' ') + 1) == contact_id;
  }
  return true;
}

void OptOutRegistryProjection::FoldDecoded(const Event& e, const DomainEvent* decoded,
                                           ProjectionState* st) {
  if (e.type == kContactErasedType) {
    Erasure er;
    if (!DecodeErasure(e.payload, &er).ok()) return;
    for (const ErasedSubject& sub : er.subjects) {
      std::string key = ErasedSubjectKey(e.tenant, sub.hash, sub.channel);
      std::optional<std::string_view> cur = st->Peek(key);
      if (cur && !SupersedesRow(sub.out, sub.at_us, *cur)) continue;
      st->Put(key, StatusRow(sub.out, sub.at_us, sub.seq, sub.system));
    }
    return;
  }
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  const int64_t at = HappenedAt(e, d);
  char seq[21];
  std::snprintf(seq, sizeof(seq), "%020llu", static_cast<unsigned long long>(e.seq));
  if (d.type == ev::kConsentConflict) {
    st->Put("c/" + e.tenant + "/" + seq, JsonObject()
                                               .Str("contact_id", d.contact_id)
                                               .Str("system", d.system)
                                               .Str("actor", d.actor)
                                               .Str("channel", d.channel)
                                               .Str("reason", d.reason)
                                               .Str("detail", d.detail)
                                               .Str("event_id", e.id.ToString())
                                               .Int("at_us", at)
                                               .Finish());
    return;
  }
  if ((d.type != ev::kOptedOut && d.type != ev::kOptedIn)) return;
  const bool out = d.type == ev::kOptedOut;
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
      // it was recorded (ConsentSupersedes).
      std::optional<std::string_view> cur = st->Peek("o/" + base);
      if (cur && !SupersedesRow(out, at, *cur)) continue;
      st->Put("o/" + base, StatusRow(out, at, e.seq, d.system, d.contact_id));
    }
  }
}

namespace {

bool IsUnsettled(std::string_view state) { return state == "pending" || state == "retrying"; }

// Puts or erases push `push_id`'s u/ row.
void NoteUnsettled(ProjectionState* st, std::string_view push_id,
                   const SyncStatusProjection::Unsettled& u, bool unsettled) {
  auto [key, value] = SyncStatusProjection::UnsettledRow(push_id, u);
  if (unsettled) {
    st->Put(key, std::move(value));
  } else {
    st->Erase(key);
  }
}

// The states a push can be in, in the order a contact's counts list them.
constexpr std::string_view kPushStates[] = {"pending", "retrying", "succeeded", "dead",
                                            "cancelled"};
constexpr size_t kNumPushStates = sizeof(kPushStates) / sizeof(kPushStates[0]);

size_t PushStateIndex(std::string_view state) {
  for (size_t i = 0; i < kNumPushStates; ++i)
    if (kPushStates[i] == state) return i;
  return kNumPushStates;
}

// Moves one of a contact's pushes from `from` (empty: a new push) to `to`
// in its counts, "k/<contact id>" -> "pending=1 succeeded=40" (the states
// it has any pushes in, in kPushStates order; erased when none): one key
// per contact, so a push's change of state looks up one key, not two.
void MoveContactCount(ProjectionState* st, std::string_view contact, std::string_view from,
                      std::string_view to) {
  thread_local std::string key, value;
  key.assign("k/").append(contact);
  int64_t counts[kNumPushStates] = {};
  if (std::optional<std::string_view> cur = st->Peek(key)) {
    std::string_view v = *cur;
    while (!v.empty()) {
      size_t sp = v.find(' ');
      std::string_view pair = v.substr(0, sp);
      v = sp == std::string_view::npos ? std::string_view() : v.substr(sp + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      size_t i = PushStateIndex(pair.substr(0, eq));
      if (i == kNumPushStates) continue;
      std::from_chars(pair.data() + eq + 1, pair.data() + pair.size(), counts[i]);
    }
  }
  if (size_t i = PushStateIndex(from); i < kNumPushStates) --counts[i];
  if (size_t i = PushStateIndex(to); i < kNumPushStates) ++counts[i];
  value.clear();
  for (size_t i = 0; i < kNumPushStates; ++i) {
    if (counts[i] == 0) continue;
    if (!value.empty()) value += ' ';
    value.append(kPushStates[i]).append("=").append(std::to_string(counts[i]));
  }
  if (value.empty()) {
    st->Erase(key);
  } else {
    st->Put(key, value);
  }
}

}  // namespace

bool SyncStatusProjection::ParseUnsettled(std::string_view v, Unsettled* out) {
  // "<system> <contact id> <tenant>"
  size_t a = v.find(' '), b = a == std::string_view::npos ? a : v.find(' ', a + 1);
  if (b == std::string_view::npos || a == 0 || b == a + 1 || b + 1 == v.size()) return false;
  out->system = v.substr(0, a);
  out->contact_id = v.substr(a + 1, b - a - 1);
  out->tenant = v.substr(b + 1);
  return true;
}

std::pair<std::string, std::string> SyncStatusProjection::UnsettledRow(std::string_view push_id,
                                                                       const Unsettled& u) {
  std::string key(kUnsettledPrefix);
  key.append(push_id);
  std::string value = u.system;
  value.append(" ").append(u.contact_id).append(" ").append(u.tenant);
  return {std::move(key), std::move(value)};
}

bool SyncStatusProjection::Uses(std::string_view type) const {
  return type == ev::kPushRequested || type == ev::kPushAttempted ||
         type == ev::kPushSucceeded || type == ev::kPushDeadLettered ||
         type == ev::kMessageRefused;
}

void SyncStatusProjection::Forget(std::string_view key, std::string_view value,
                                  ProjectionState* st) {
  if (key.substr(0, 2) != "p/") return;
  // "<state> <system> <contact id> <tenant>": it no longer counts.
  size_t a = value.find(' '), b = value.find(' ', a + 1), c = value.find(' ', b + 1);
  if (a == std::string_view::npos || b == std::string_view::npos || c == std::string_view::npos)
    return;
  std::string counter = "n/";
  counter.append(value.substr(c + 1)).append("/").append(value.substr(a + 1, b - a - 1));
  counter.append("/").append(value.substr(0, a));
  st->Add(counter, -1);
}

void SyncStatusProjection::FoldDecoded(const Event& e, const DomainEvent* decoded,
                                       ProjectionState* st) {
  if (!decoded) return;
  const DomainEvent& d = *decoded;
  if (d.push_id.empty()) return;
  std::string_view next;
  if (d.type == ev::kPushRequested) {
    next = "pending";
  } else if (d.type == ev::kPushAttempted) {
    // An attempt that will not be retried leaves the state as it is.
    // A refused opt-out is kept open and tried again (never given up on).
    if (d.outcome != "retry" && d.outcome != "refused") return;
    next = "retrying";
  } else if (d.type == ev::kPushSucceeded) {
    next = "succeeded";
  } else if (d.type == ev::kPushDeadLettered) {
    // A mark withdrawn at the start was not given up after retries.
    next = d.outcome == kWithdrawnOutcome ? "cancelled" : "dead";
  } else if (d.type == ev::kMessageRefused) {
    next = "cancelled";  // refused before it went out (SettlesPush)
  } else {
    return;
  }
  // Keys are built in one buffer: this fold runs for most events of a log.
  thread_local std::string key;
  key.assign("p/").append(d.push_id);
  // Peek, then Put only on a change: the Put finds the entry in the cache
  // lines the Peek loaded, and a batch that changed nothing writes nothing.
  std::optional<std::string_view> cur = st->Peek(key);
  std::string state, system = d.system, contact = d.contact_id;
  if (cur) {
    std::string_view v = *cur;
    size_t a = v.find(' '), b = v.find(' ', a + 1);
    state = v.substr(0, a);
    if (system.empty()) system = v.substr(a + 1, b - a - 1);
    size_t c = v.find(' ', b + 1);
    if (contact.empty()) contact = v.substr(b + 1, c == std::string_view::npos ? c : c - b - 1);
  }
  // A request for a push already under way changes nothing.
  if (state == next || (d.type == ev::kPushRequested && !state.empty())) return;
  std::string value(next);
  value.append(" ").append(system).append(" ").append(contact).append(" ").append(e.tenant);
  st->Put(key, std::move(value));
  if (IsUnsettled(next) != IsUnsettled(state))
    NoteUnsettled(st, d.push_id, {system, contact, e.tenant}, IsUnsettled(next));
  auto add = [&](std::string_view which, int64_t delta) {
    key.assign("n/").append(e.tenant).append("/").append(system).append("/").append(which);
    st->Add(key, delta);
  };
  if (!state.empty()) add(state, -1);
  add(next, 1);
  MoveContactCount(st, contact, state, next);
}

std::string EnrichedEmailKey(const std::string& tenant, const std::string& email) {
  return "p/" + tenant + "/" + email;
}

std::string EnrichedDomainKey(const std::string& tenant, const std::string& domain) {
  return "d/" + tenant + "/" + domain;
}

namespace {
const std::string* FieldOf(const std::map<std::string, std::string>& m, const char* k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}
}  // namespace

bool EnrichmentsProjection::Uses(std::string_view type) const { return type == ev::kContactEnriched; }

void EnrichmentsProjection::FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* st) {
  if (!d || d->type != ev::kContactEnriched) return;
  const int64_t at = HappenedAt(e, *d);
  auto note = [&](const std::string& key) {
    std::optional<std::string_view> cur = st->Peek(key);
    int64_t old = 0;
    if (cur) std::from_chars(cur->data(), cur->data() + cur->size(), old);
    if (at > old) st->Put(key, std::to_string(at));
  };
  const std::string* email = FieldOf(d->fields, "asked.email");
  const std::string* domain = FieldOf(d->fields, "asked.company_domain");
  if (email && !email->empty()) {
    note(EnrichedEmailKey(e.tenant, *email));
  } else if (domain && !domain->empty()) {
    note(EnrichedDomainKey(e.tenant, *domain));
  }
}

std::string ConversationKey(const std::string& tenant, const std::string& system,
                            const std::string& phone, const std::string& our_number) {
  return "c/" + tenant + "/" + system + "/" + phone + "/" + our_number;
}

bool ConversationsProjection::Uses(std::string_view type) const { return type == ev::kPushSucceeded; }

bool ConversationsProjection::OwnedBy(std::string_view, std::string_view value,
                                      std::string_view contact_id) const {
  // "<conversation id> <contact id> <seq>"
  size_t a = value.find(' ');
  if (a == std::string_view::npos) return true;
  return value.substr(a + 1, contact_id.size() + 1) == std::string(contact_id) + " ";
}

void ConversationsProjection::FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* st) {
  if (!d || d->type != ev::kPushSucceeded || d->op != "message") return;
  const std::string* conversation = FieldOf(d->fields, "answer.conversation_id");
  const std::string* phone = FieldOf(d->fields, "phone");
  if (!conversation || conversation->empty() || !phone || phone->empty()) return;
  const std::string* ours = FieldOf(d->fields, "our_number");
  st->Put(ConversationKey(e.tenant, d->system, *phone, ours ? *ours : ""),
          *conversation + " " + d->contact_id + " " + std::to_string(e.seq));
}

}  // namespace dfm

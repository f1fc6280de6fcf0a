#include "sync/contact_snapshot.h"

#include "util/coding.h"

namespace dfm {

namespace {

constexpr std::string_view kMagic = "DFCS";
constexpr uint8_t kVersion = 7;

// Every member of ContactState is written below; a member added without
// its line here would be lost at every start from a snapshot. This size
// (of the one toolchain the project builds with) makes that a compile
// error: update the codec, then the number.
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(ContactState) == 832,
              "ContactState changed: update sync/contact_snapshot.cc and its grammar");
#endif

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void U(uint64_t v) { PutVarint64(out_, v); }
  void I(int64_t v) { U(ZigZag(v)); }
  void B(bool v) { out_->push_back(v ? 1 : 0); }
  void S(std::string_view s) { PutLengthPrefixed(out_, s); }
  void Raw(std::string_view s) { out_->append(s.data(), s.size()); }
  template <typename V, typename F>
  void Map(const std::map<std::string, V>& m, F&& value) {
    U(m.size());
    for (const auto& [k, v] : m) {
      S(k);
      value(v);
    }
  }
  void StrMap(const std::map<std::string, std::string>& m) {
    Map(m, [this](const std::string& v) { S(v); });
  }
  void StrSet(const std::set<std::string>& set) {
    U(set.size());
    for (const auto& k : set) S(k);
  }

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  uint64_t U() {
    uint64_t v = 0;
    if (ok_ && !GetVarint64(&in_, &v)) ok_ = false;
    return v;
  }
  int64_t I() { return UnZigZag(U()); }
  bool B() {
    if (!ok_ || in_.empty() || static_cast<uint8_t>(in_[0]) > 1) {
      ok_ = false;
      return false;
    }
    bool v = in_[0] == 1;
    in_.remove_prefix(1);
    return v;
  }
  std::string S() {
    std::string v;
    if (ok_ && !GetLengthPrefixed(&in_, &v)) ok_ = false;
    return v;
  }
  std::string_view Raw(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string_view v = in_.substr(0, n);
    in_.remove_prefix(n);
    return v;
  }
  template <typename V, typename F>
  void Map(std::map<std::string, V>* m, F&& value) {
    m->clear();
    const uint64_t n = U();
    // Each entry takes at least two bytes: a count past that is damage.
    if (n > in_.size()) ok_ = false;
    for (uint64_t i = 0; ok_ && i < n; ++i) {
      std::string k = S();
      value(&(*m)[std::move(k)]);
    }
  }
  void StrMap(std::map<std::string, std::string>* m) {
    Map(m, [this](std::string* v) { *v = S(); });
  }
  void StrSet(std::set<std::string>* set) {
    set->clear();
    const uint64_t n = U();
    if (n > in_.size()) ok_ = false;  // each takes a byte at least
    for (uint64_t i = 0; ok_ && i < n; ++i) set->insert(S());
  }

 private:
  std::string_view in_;
  bool ok_ = true;
};

void WriteState(Writer& w, const ContactState& s) {
  w.S(s.contact_id);
  w.B(s.exists);
  w.B(s.deleted);
  w.I(s.deleted_at_us);
  w.S(s.deleted_in);
  w.S(s.deleted_record);
  w.Map(s.fields, [&](const Attributed& a) {
    w.S(a.value);
    w.S(a.system);
    w.I(a.source_time_us);
  });
  w.StrMap(s.links);
  w.Map(s.told, [&](const auto& records) {
    w.Map(records, [&](const std::set<std::string>& chans) { w.StrSet(chans); });
  });
  w.Map(s.known, [&](const auto& m) { w.StrMap(m); });
  w.Map(s.pushed, [&](const ContactState::PushMemo& memo) {
    w.Map(memo, [&](const std::map<std::string, int64_t>& values) {
      w.Map(values, [&](int64_t at) { w.I(at); });
    });
  });
  w.Map(s.pending, [&](const auto& m) { w.StrMap(m); });
  w.Map(s.consent, [&](const ContactState::ChannelConsent& c) {
    w.B(c.out);
    w.I(c.at_us);
    w.B(c.held);
    w.S(c.held_by);
    w.I(c.person_in_us);
  });
  w.Map(s.known_consent, [&](const auto& m) {
    w.Map(m, [&](const ContactState::HeldConsent& h) {
      w.B(h.out);
      w.I(h.at_us);
      w.B(h.permanent);
    });
  });
  w.Map(s.pending_consent, [&](const auto& m) {
    w.Map(m, [&](const ContactState::PendingConsent& p) {
      w.B(p.out);
      w.S(p.push_id);
      w.B(p.refused);
    });
  });
  w.Map(s.last_outbound_us, [&](int64_t at) { w.I(at); });
  w.Map(s.messages, [&](const ContactState::MessageState& m) {
    w.S(m.origin);
    w.S(m.channel);
    w.S(m.direction);
    w.S(m.status);
    w.StrMap(m.ids);
    w.B(m.delivery_decided);
    w.S(m.note);
    w.S(m.tag);
    w.I(m.last_us);
  });
  w.StrMap(s.message_keys);
  w.Map(s.pending_sends, [&](const ContactState::PendingSend& p) {
    w.S(p.message_key);
    w.S(p.channel);
    w.S(p.system);
  });
  w.Map(s.pending_records, [&](const ContactState::PendingRecord& p) {
    w.S(p.message_key);
    w.S(p.op);
    w.S(p.direction);
    w.S(p.body);
  });
  w.I(s.next_forget_us);
  w.I(s.enrich_requested_us);
  w.U(s.last_fact_seq);
  w.U(s.last_fact_index);
  w.U(s.last_event_seq);
}

void ReadState(Reader& r, ContactState* s) {
  s->contact_id = r.S();
  s->exists = r.B();
  s->deleted = r.B();
  s->deleted_at_us = r.I();
  s->deleted_in = r.S();
  s->deleted_record = r.S();
  r.Map(&s->fields, [&](Attributed* a) {
    a->value = r.S();
    a->system = r.S();
    a->source_time_us = r.I();
  });
  r.StrMap(&s->links);
  r.Map(&s->told, [&](auto* records) {
    r.Map(records, [&](std::set<std::string>* chans) { r.StrSet(chans); });
  });
  r.Map(&s->known, [&](auto* m) { r.StrMap(m); });
  r.Map(&s->pushed, [&](ContactState::PushMemo* memo) {
    r.Map(memo, [&](std::map<std::string, int64_t>* values) {
      r.Map(values, [&](int64_t* at) { *at = r.I(); });
    });
  });
  r.Map(&s->pending, [&](auto* m) { r.StrMap(m); });
  r.Map(&s->consent, [&](ContactState::ChannelConsent* c) {
    c->out = r.B();
    c->at_us = r.I();
    c->held = r.B();
    c->held_by = r.S();
    c->person_in_us = r.I();
  });
  r.Map(&s->known_consent, [&](auto* m) {
    r.Map(m, [&](ContactState::HeldConsent* h) {
      h->out = r.B();
      h->at_us = r.I();
      h->permanent = r.B();
    });
  });
  r.Map(&s->pending_consent, [&](auto* m) {
    r.Map(m, [&](ContactState::PendingConsent* p) {
      p->out = r.B();
      p->push_id = r.S();
      p->refused = r.B();
    });
  });
  r.Map(&s->last_outbound_us, [&](int64_t* at) { *at = r.I(); });
  r.Map(&s->messages, [&](ContactState::MessageState* m) {
    m->origin = r.S();
    m->channel = r.S();
    m->direction = r.S();
    m->status = r.S();
    r.StrMap(&m->ids);
    m->delivery_decided = r.B();
    m->note = r.S();
    m->tag = r.S();
    m->last_us = r.I();
  });
  r.StrMap(&s->message_keys);
  r.Map(&s->pending_sends, [&](ContactState::PendingSend* p) {
    p->message_key = r.S();
    p->channel = r.S();
    p->system = r.S();
  });
  r.Map(&s->pending_records, [&](ContactState::PendingRecord* p) {
    p->message_key = r.S();
    p->op = r.S();
    p->direction = r.S();
    p->body = r.S();
  });
  s->next_forget_us = r.I();
  s->enrich_requested_us = r.I();
  s->last_fact_seq = r.U();
  s->last_fact_index = static_cast<uint32_t>(r.U());
  s->last_event_seq = r.U();
}

}  // namespace

std::string EncodeContactSnapshot(const ContactState& state,
                                  const std::vector<OutstandingPush>& outstanding) {
  std::string out;
  out.reserve(256 + state.messages.size() * 96);
  Writer w(&out);
  w.Raw(kMagic);
  out.push_back(static_cast<char>(kVersion));
  w.U(kContactRulesVersion);
  WriteState(w, state);
  w.U(outstanding.size());
  for (const auto& o : outstanding) {
    w.S(o.request.type);
    w.S(EncodeDomainEvent(o.request));
    w.Raw(o.request_id.AsBytes());
    w.Raw(o.correlation_id.AsBytes());
  }
  return out;
}

Status DecodeContactSnapshot(std::string_view bytes, ContactState* state,
                             std::vector<OutstandingPush>* outstanding) {
  Reader r(bytes);
  if (r.Raw(kMagic.size()) != kMagic) return Status::Corruption("not a contact snapshot");
  std::string_view version = r.Raw(1);
  if (!r.ok() || static_cast<uint8_t>(version[0]) != kVersion)
    return Status::Corruption("unknown contact snapshot version");
  const uint64_t rules = r.U();
  if (!r.ok()) return Status::Corruption("contact snapshot ends early");
  if (rules != kContactRulesVersion)
    return Status::InvalidArgument("contact snapshot written under rules " +
                                      std::to_string(rules));
  const int64_t memory = state->message_memory_us;
  *state = ContactState{};
  state->message_memory_us = memory;
  ReadState(r, state);
  outstanding->clear();
  const uint64_t n = r.U();
  for (uint64_t i = 0; r.ok() && i < n; ++i) {
    OutstandingPush o;
    std::string type = r.S();
    std::string payload = r.S();
    std::string_view id = r.Raw(16), correlation = r.Raw(16);
    if (!r.ok()) break;
    Status s = DecodeDomainEvent(type, payload, &o.request);
    if (!s.ok()) return Status::Corruption("contact snapshot: " + s.message());
    o.request_id = EventId::FromBytes(id);
    o.correlation_id = EventId::FromBytes(correlation);
    outstanding->push_back(std::move(o));
  }
  if (!r.done()) return Status::Corruption("contact snapshot damaged");
  return Status::OK();
}

}  // namespace dfm

// dfm audit violations (replay-tools/audit.h, FindViolations): texts, calls
// and emails sent after their opt-out, and opt-outs honoured late.
#include <simdjson.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>

#include "campaigns/task.h"
#include "events/codec.h"
#include "replay-tools/audit.h"
#include "replay-tools/tool_log.h"
#include "sync/consent.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/identity.h"
#include "sync/redrive.h"
#include "util/crypto.h"
#include "util/json.h"

namespace dfm {

namespace {

// A violation about opt-out record `r` (not a message): who, when, which.
void OfOptOut(const ConsentRecord& r, const char* kind, Violation* v) {
  v->kind = kind;
  v->tenant = r.tenant;
  v->contact_id = r.contact_id;
  v->phone = r.phone;
  v->email = r.email;
  v->channel = r.channel;
  v->at_us = r.at_us;
  v->opted_out_at_us = r.at_us;
  v->event_id = r.event_id;
}

// Whom a message of `channel` goes to: the email address for email, the
// phone number for the others.
const std::string& AddressFor(const std::string& channel, const std::string& phone,
                              const std::string& email) {
  return channel == channels::kEmail ? email : phone;
}

// What the log says of sends and opt-outs, for FindViolations: each
// address's consent statements by channel (a phone's for texts and calls,
// an email address's for email), the phone and email each contact has
// now, each message's first delivery and first sighting going out.
struct SendsSeen {
  struct Statement {
    int64_t at_us;
    bool out;
    uint64_t seq;
  };
  std::map<std::string, std::vector<Statement>> timeline;  // tenant\naddress\nchannel -> statements
  std::map<std::string, std::string> phone_of, email_of;   // contact -> its phone, its email now
  struct Outbound {
    Violation v;
    std::set<std::string> systems;
  };
  std::map<std::string, int64_t> delivered;  // tenant\nmessage key -> first delivery
  std::map<std::string, Outbound> outbound;  // tenant\nmessage key -> first sighting
};

Status ScanSends(const EventLog& log, const ViolationOptions& o, SendsSeen* w) {
  Status s = ScanEvents(log, 1, 0, [&](const Event& e) {
    if (!o.tenant.empty() && e.tenant != o.tenant) return true;
    if (!IsDomainEventType(e.type)) return true;
    const std::string& t = e.type;
    if (t != ev::kContactCreated && t != ev::kContactChanged && t != ev::kOptedOut &&
        t != ev::kOptedIn && t != ev::kMessageLogged && t != ev::kPushSucceeded &&
        t != ev::kMessageStatus)
      return true;
    DomainEvent d;
    if (!DecodeDomainEvent(e.type, e.payload, &d).ok()) return true;
    if (t == ev::kContactCreated) {
      if (auto p = d.fields.find(fields::kPhone); p != d.fields.end())
        w->phone_of[d.contact_id] = p->second;
      if (auto m = d.fields.find(fields::kEmail); m != d.fields.end())
        w->email_of[d.contact_id] = m->second;
    } else if (t == ev::kContactChanged) {
      for (const auto& c : d.changes) {
        if (c.field == fields::kPhone) w->phone_of[d.contact_id] = c.new_value;
        if (c.field == fields::kEmail) w->email_of[d.contact_id] = c.new_value;
      }
    } else if (t == ev::kOptedOut || t == ev::kOptedIn) {
      auto field = [&d](const char* f) {
        auto it = d.fields.find(f);
        return it == d.fields.end() ? std::string() : it->second;
      };
      const std::string phone = field(fields::kPhone), email = field(fields::kEmail);
      for (const auto& ch : SplitChannels(d.channel)) {
        const std::string& to = AddressFor(ch, phone, email);
        if (!to.empty())
          w->timeline[e.tenant + "\n" + to + "\n" + ch].push_back(
              {HappenedAt(e, d), t == ev::kOptedOut, e.seq});
      }
    } else if (t == ev::kMessageStatus) {
      if (d.outcome != "delivered" || d.message_key.empty()) return true;
      w->delivered.emplace(e.tenant + "\n" + d.message_key, HappenedAt(e, d));
    } else {
      bool sent = t == ev::kPushSucceeded && d.op == "send";
      bool observed = t == ev::kMessageLogged && d.fields.count("direction") &&
                      d.fields.at("direction") == "outbound";
      if ((!sent && !observed) || d.channel == channels::kDraft)
        return true;  // a draft: to the model
      const std::string channel = d.channel.empty() ? std::string(channels::kSms) : d.channel;
      const auto& addresses = channel == channels::kEmail ? w->email_of : w->phone_of;
      auto to = addresses.find(d.contact_id);
      if (to == addresses.end() || to->second.empty()) return true;
      std::string key = e.tenant + "\n" + (d.message_key.empty() ? e.id.ToString() : d.message_key);
      auto [it, fresh] = w->outbound.try_emplace(key);
      it->second.systems.insert(d.system);
      std::string campaign, contact;
      int step = 0;
      if (sent)
        it->second.v.how = (ParseCampaignMessageKey(d.message_key, &campaign, &step, &contact)
                                ? "campaign " + campaign + " step " + std::to_string(step) + ": "
                                : "") +
                           "sent by the engine through " + d.system;
      if (!fresh) return true;
      Violation& v = it->second.v;
      v.kind = "outbound_while_opted_out";
      v.tenant = e.tenant;
      v.contact_id = d.contact_id;
      (channel == channels::kEmail ? v.email : v.phone) = to->second;
      v.channel = channel;
      v.at_us = sent ? e.recorded_at_us : HappenedAt(e, d);
      v.message_key = d.message_key;
      v.event_id = e.id.ToString();
      if (v.how.empty()) v.how = "observed in " + d.system;
    }
    return true;
  });
  return s;
}

// The sends that went to a phone opted out of their channel at the time,
// or were delivered after an opt-out that came while they were on the wire.
void JudgeSends(SendsSeen* w, std::vector<Violation>* out) {
  using Statement = SendsSeen::Statement;
  for (auto& [k, st] : w->timeline)
    std::sort(st.begin(), st.end(), [](const Statement& a, const Statement& b) {
      return a.at_us != b.at_us ? a.at_us < b.at_us
                                : (a.out < b.out);  // at one time, the opt-out last (wins)
    });
  for (auto& [key, ob] : w->outbound) {
    Violation v = ob.v;
    auto st = w->timeline.find(v.tenant + "\n" + AddressFor(v.channel, v.phone, v.email) + "\n" +
                               v.channel);
    if (st == w->timeline.end()) continue;
    const Statement* last = nullptr;
    for (const auto& x : st->second)
      if (x.at_us <= v.at_us) last = &x;
    v.systems.assign(ob.systems.begin(), ob.systems.end());
    if (last && last->out) {
      v.opted_out_at_us = last->at_us;
      out->push_back(std::move(v));
      continue;
    }
    // Sent while opted in: was it delivered after an opt-out that came
    // while it was on the wire?
    auto d = w->delivered.find(key);
    if (d == w->delivered.end()) continue;
    for (const auto& x : st->second) {
      if (x.at_us <= v.at_us || x.at_us > d->second || !x.out) continue;
      v.kind = "delivered_after_opt_out";
      v.opted_out_at_us = x.at_us;
      v.delivered_at_us = d->second;
      v.how = "sent " + FormatToolTime(v.at_us) + ", before the opt-out; delivered " +
              FormatToolTime(d->second) + ", after it";
      out->push_back(std::move(v));
      break;
    }
  }
}

// Opt-outs that took too long to reach every system, or that a system
// refused.
Status FindSlowOptOuts(const EventLog& log, const ViolationOptions& o,
                       std::vector<Violation>* out) {
  std::vector<ConsentRecord> records;
  OptOutAuditOptions ao;
  ao.tenant = o.tenant;
  Status s = CollectConsentRecords(log, ao, &records);
  if (!s.ok()) return s;
  for (const auto& r : records) {
    if (r.status != "opt_out") continue;
    Violation v;
    // Per system, its first success (a re-drive may make up for a dead push).
    std::map<std::string, ConsentRecord::Told> best;
    for (const auto& t : r.told) {
      auto [it, fresh] = best.try_emplace(t.system, t);
      bool better =
          t.state == "succeeded" && (it->second.state != "succeeded" || t.at_us < it->second.at_us);
      if (!fresh && better) it->second = t;
    }
    Violation refused;
    for (const auto& [system, t] : best)
      if (t.state == "refused")
        refused.systems.push_back(system + " (refused " + FormatToolTime(t.at_us) + ")");
    if (!refused.systems.empty()) {
      OfOptOut(r, "opt_out_refused", &refused);
      refused.how = "refused by the system: kept open and tried again until it lands";
      out->push_back(std::move(refused));
      continue;
    }
    for (const auto& [system, t] : best) {
      // Withdrawn: owed until the person took it back (late if that was late).
      const bool ended = t.state == "succeeded" || t.state == "withdrawn";
      int days = BusinessDaysBetween(r.at_us, ended ? t.at_us : o.now_us);
      if (days <= o.threshold_business_days) continue;
      v.systems.push_back(t.system + (t.state == "succeeded"
                                          ? " (told " + FormatToolTime(t.at_us) + ")"
                                      : t.state == "withdrawn"
                                          ? " (not told; withdrawn " + FormatToolTime(t.at_us) + ")"
                                          : " (" + t.state + ", not told)"));
      v.business_days = std::max(v.business_days, days);
    }
    if (v.systems.empty()) continue;
    OfOptOut(r, "slow_opt_out", &v);
    v.how = "not everywhere within " + std::to_string(o.threshold_business_days) +
            " business days (" + std::to_string(v.business_days) + ")";
    out->push_back(std::move(v));
  }
  return Status::OK();
}

}  // namespace

Status FindViolations(const EventLog& log, const ViolationOptions& o, std::vector<Violation>* out) {
  out->clear();
  SendsSeen w;
  Status s = ScanSends(log, o, &w);
  if (!s.ok()) return s;
  JudgeSends(&w, out);
  return FindSlowOptOuts(log, o, out);
}

int PrintViolations(const std::vector<Violation>& vs, bool json, std::ostream& out) {
  if (json) {
    for (const auto& v : vs) {
      JsonArray systems;
      for (const auto& one : v.systems) systems.Str(one);
      const std::string sys = systems.Finish();
      out << JsonObject()
                 .Str("kind", v.kind)
                 .Str("tenant", v.tenant)
                 .Str("contact_id", v.contact_id)
                 .Str("phone", v.phone)
                 .Str("email", v.email)
                 .Str("channel", v.channel)
                 .Str("at", FormatToolTime(v.at_us))
                 .Str("opted_out_at", FormatToolTime(v.opted_out_at_us))
                 .Str("delivered_at", v.delivered_at_us ? FormatToolTime(v.delivered_at_us) : "")
                 .Str("message_key", v.message_key)
                 .Raw("systems", sys)
                 .Str("how", v.how)
                 .Str("event_id", v.event_id)
                 .Finish()
          << "\n";
    }
  } else {
    Table t({"KIND", "AT", "PHONE OR EMAIL", "CHANNEL", "OPTED OUT AT", "SYSTEMS", "HOW", "EVENT"},
            80);
    for (const auto& v : vs) {
      std::string sys;
      for (const auto& s : v.systems) sys += (sys.empty() ? "" : ", ") + s;
      const std::string& to = v.channel == channels::kEmail ? (v.email.empty() ? v.phone : v.email)
                                                            : (v.phone.empty() ? v.email : v.phone);
      t.Add({v.kind, FormatToolTime(v.at_us), to, v.channel, FormatToolTime(v.opted_out_at_us), sys,
             v.how, v.event_id});
    }
    if (t.size()) t.Print(out);
    out << vs.size() << " violation(s)\n";
  }
  return vs.empty() ? 0 : 1;
}

}  // namespace dfm

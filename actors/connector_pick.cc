// The connector's choice of the next push (connector_steps.h Pick) and the
// per-contact pacing it honours (cfg.pair_burst, cfg.pair_interval_us).
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "actors/connector_steps.h"
#include "actors/status_board.h"
#include "sync/consent.h"

namespace dfm::connector_steps {

namespace {

// Per-contact pacing: refills `contact`'s bucket to `now`; when it may send
// next (now when a token is left).
int64_t PairReadyAt(ConnectorState& st, const std::string& contact, int64_t now) {
  if (st.cfg.pair_burst <= 0 || st.cfg.pair_interval_us <= 0) return now;
  auto it = st.pairs.find(contact);
  if (it == st.pairs.end()) return now;
  auto& p = it->second;
  p.tokens = std::min<double>(
      st.cfg.pair_burst, p.tokens + static_cast<double>(now - p.at_us) / st.cfg.pair_interval_us);
  p.at_us = now;
  if (p.tokens >= 1) return now;
  return now + static_cast<int64_t>((1 - p.tokens) * st.cfg.pair_interval_us) + 1;
}

// A consent push as Pick weighs it against the contact's earlier ones.
struct Statement {
  bool restricts = false;             // opt_out, mark_dnc
  std::vector<std::string> channels;  // none: every channel (a mark)
};

Statement StatementOf(const DomainEvent& req) {
  return Statement{req.op != "opt_in", SplitChannels(req.channel)};
}

// Whether two consent pushes land the same in either order: both restrict,
// or they name no channel in common.
bool Commute(const Statement& a, const Statement& b) {
  if (a.restricts && b.restricts) return true;
  if (a.channels.empty() || b.channels.empty()) return false;
  for (const auto& ch : a.channels)
    if (std::find(b.channels.begin(), b.channels.end(), ch) != b.channels.end()) return false;
  return true;
}

}  // namespace

bool Urgent(const DomainEvent& req) { return req.priority > 0 || IsOptOutPush(req.op); }

void SpendPairToken(ConnectorState& st, const std::string& contact, int64_t now) {
  if (st.cfg.pair_burst <= 0 || st.cfg.pair_interval_us <= 0) return;
  (void)PairReadyAt(st, contact, now);  // refilled to now first (a record's append took a while)
  auto [it, fresh] =
      st.pairs.try_emplace(contact, ConnectorState::Pair{double(st.cfg.pair_burst), now});
  (void)fresh;
  it->second.tokens -= 1;
  // Full buckets are forgotten, so the map holds only people paced now.
  if (st.pairs.size() > 4096 && (st.pairs.size() & 1023) == 0) {
    for (auto p = st.pairs.begin(); p != st.pairs.end();) {
      double t =
          p->second.tokens + static_cast<double>(now - p->second.at_us) / st.cfg.pair_interval_us;
      p = t >= st.cfg.pair_burst ? st.pairs.erase(p) : std::next(p);
    }
  }
}

// The next push that may go now: first in order, opt-outs first, never a
// second one for a contact, never one waiting out its backoff, never one
// behind a waiting push of the same contact. An open refused opt-out (or
// mark) waiting out its long backoff holds back only the contact's consent
// pushes that do not commute with it (Commute), and those hold back the
// ones behind them the same way: an opt-in of its channels waits, while a
// further opt-out, or a statement about other channels, goes. The vendor's
// refusal of one restriction never keeps another out.
std::deque<std::string>* Pick(ConnectorState& st, int64_t now,
                              std::deque<std::string>::iterator* pos, int64_t* earliest) {
  std::set<std::string> blocked;  // across both queues: an opt-out waiting holds back the rest
  // Per contact, the consent pushes not going now while others may.
  std::map<std::string, std::vector<Statement>> waiting;
  for (auto* q : {&st.urgent, &st.normal}) {
    for (auto i = q->begin(); i != q->end(); ++i) {
      const auto& item = st.items.at(*i);
      const std::string& contact = item.order.request.contact_id;
      if (st.busy.count(contact) || blocked.count(contact)) continue;
      if (item.hold_unrecorded || item.unnumbered) {  // RewriteHolds', NumberRedriven's
        blocked.insert(contact);
        continue;
      }
      std::optional<Statement> said;
      if (IsConsentOp(item.order.request.op)) said = StatementOf(item.order.request);
      auto before = waiting.find(contact);
      if (said && before != waiting.end() &&
          !std::all_of(before->second.begin(), before->second.end(),
                       [&](const Statement& w) { return Commute(w, *said); })) {
        before->second.push_back(std::move(*said));
        continue;
      }
      const int64_t paced = PairReadyAt(st, contact, now);
      const int64_t not_before = std::max(item.not_before, paced);
      if (not_before > now) {
        if (item.refused_since != 0 && said)  // an open refused opt-out push
          waiting[contact].push_back(std::move(*said));
        else
          blocked.insert(contact);
        if (*earliest == 0 || not_before < *earliest) *earliest = not_before;
        continue;
      }
      *pos = i;
      return q;
    }
  }
  return nullptr;
}

}  // namespace dfm::connector_steps

// Messages between the sync actors, registered with CAF's type-ID API
// (CAF 0.17.5+). Every message stays inside one process; the inspect
// functions exist because CAF requires them of message types (printing,
// serialization), not because anything is sent over a network.
//
//   router    --RoutedFact-->    contact     a fact to decide
//   router    --Redrive-->       contact     a replay's push to re-drive (sync/redrive.h)
//   contact   --FactDone-->      router      its decisions are durable
//   contact   --PushOrder-->     connector   push.requested, to carry out
//   contact   --PushCancel-->    connector   message.refused: drop it if not sent
//   connector --PushReport-->    router --> contact   attempts and outcomes
//   log thread / HTTP thread --AppendResult / HttpDone / TokenDone / SendRecorded--> actor
//   backfill  --BackfillRead-->  connector   a read of the vendor's contacts (app/backfill.h)
//   HTTP thread --ReadDone-->    connector   its answer, handed to the backfill
#pragma once

#include <caf/all.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connectors/common/outbound.h"
#include "sync/domain_event.h"
#include "sync/fact.h"
#include "sync/redrive.h"

namespace dfm {

struct ConnectorSettings;  // actors/connector_actor.h

// A configuration reload changed a connector's settings (credentials,
// limits): engine --ConnectorUpdate--> connector.
struct ConnectorUpdate {
  std::shared_ptr<ConnectorSettings> settings;
};

// A push.requested event, as appended, for the connector of its system.
struct PushOrder {
  std::string tenant;
  DomainEvent request;   // type push.requested
  EventId request_id;    // its event id: the causation of every attempt
  EventId correlation_id;
  bool redriven = false;  // re-sent after a restart: an earlier run may have carried it out
};

// A push the contact no longer wants (message.refused: the person opted
// out while the send waited). The connector drops it if it has not gone.
// With `push_id` empty, every push of `contact_id` but its consent ones
// (opt_out, opt_in, mark_dnc): the person was erased (contact.erased), and
// nothing of theirs is to reach a system again, while what they said of
// their consent still must.
struct PushCancel {
  std::string tenant;
  std::string push_id;
  std::string reason;
  std::string contact_id;
};

// Attempts and outcomes of a push (push.attempted, push.succeeded,
// push.dead_lettered), for the contact actor to append and apply.
struct PushReport {
  std::string tenant;
  std::string contact_id;
  std::vector<DomainEvent> events;
  EventId request_id;
  EventId correlation_id;
};

// The idempotency key (kDecisionKeySystem) a contact appends a reported
// event of a push under: "r/<push id>/<attempt>/<type>". A request's
// attempt number is its own (it only rises, across runs too), else the
// log takes a later request's event for a duplicate.
inline std::string ReportedEventKey(std::string_view push_id, int attempt, std::string_view type) {
  std::string key = "r/";
  key.append(push_id).append("/").append(std::to_string(attempt)).append("/").append(type);
  return key;
}

// A contact's items of a replay.requested event (seq `replay_seq`, id
// `replay_id`), each with its place in it, for the contact actor to decide
// together (DecideRedrive). Answered by FactDone with webhook_seq =
// replay_seq, like a fact.
struct Redrive {
  std::string tenant;
  std::string contact_id;
  std::vector<std::pair<uint64_t, RedriveItem>> items;
  uint64_t replay_seq = 0;
  EventId replay_id;
  uint64_t epoch = 0;  // as RoutedFact's
};

// A fact as the router hands it to its contact's actor. `epoch` names the
// router's reading of the log that handed it (RouterState::epoch): its
// FactDone carries it back, so an answer to a fact handed before the
// router read the log again is told from one to the same fact handed
// again.
struct RoutedFact {
  ContactFact fact;
  uint64_t epoch = 0;
};

// A contact actor has decided the fact of `webhook_seq` handed to it in
// `epoch` (RoutedFact, Redrive); everything it appended for it is durable
// up to `last_seq` (0: nothing was appended).
struct FactDone {
  std::string tenant;
  std::string contact_id;
  uint64_t webhook_seq = 0;
  uint64_t last_seq = 0;
  uint64_t epoch = 0;
};

// The log's answer to an actor's append (`token` names the append).
struct AppendResult {
  uint64_t token = 0;
  std::string error;  // empty: durable
  std::vector<uint64_t> seqs;
  std::vector<EventId> ids;
};

// A connector's push came back from the vendor.
struct HttpDone {
  std::string push_id;
  PushResult result;
};

struct TokenDone {
  TokenGrant grant;
};

// Where a backfill's read is answered: called once, from any thread. One
// dropped unanswered (its connector stopped) answers a transport error
// ("the connector stopped"), so its backfill never waits for ever.
class ReadAnswer {
 public:
  explicit ReadAnswer(std::function<void(ContactPage)> f) : f_(std::move(f)) {}
  ~ReadAnswer() {
    ContactPage p;
    p.detail = "the connector stopped";
    (*this)(std::move(p));
  }
  ReadAnswer(const ReadAnswer&) = delete;
  ReadAnswer& operator=(const ReadAnswer&) = delete;
  void operator()(ContactPage page) {
    auto f = std::move(f_);
    f_ = nullptr;
    if (f) f(std::move(page));
  }

 private:
  std::function<void(ContactPage)> f_;
};

// A backfill's read of the vendor's contacts (app/backfill.h), carried out
// by the connector with its grant, under its rate limit, one at a time. A
// 401 the connector can mend by refreshing its grant is not passed on: it
// refreshes and asks again; a refresh that fails answers 401.
struct BackfillRead {
  bool lookup = false;  // by phone (VendorClient::LookupByPhone); else a list page
  std::string cursor;   // list: where to go on ("" for the first page)
  int page_size = 100;  // list
  std::string phone;    // lookup: E.164
  std::shared_ptr<ReadAnswer> done;
};

// The vendor answered the connector's BackfillRead.
struct ReadDone {
  ContactPage page;
};

// The log's answer to a connector's push.sending (a send that could be
// carried out twice is recorded before its request goes): `duplicate`
// when an earlier run had recorded it already.
struct SendRecorded {
  std::string push_id;
  std::string error;  // empty: durable
  bool duplicate = false;
  bool held = false;  // the answer to a push.held (RecordHeld), not a push.sending
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, EventId& x) {
  return f(caf::meta::type_name("EventId"), x.bytes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Attributed& x) {
  return f(caf::meta::type_name("Attributed"), x.value, x.system, x.source_time_us);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, FieldChange& x) {
  return f(caf::meta::type_name("FieldChange"), x.field, x.old_value, x.new_value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, DomainEvent& x) {
  return f(caf::meta::type_name("DomainEvent"), x.type, x.contact_id, x.system, x.external_id,
           x.source_time_us, x.fields, x.changes, x.field, x.kept, x.lost, x.rule, x.reason, x.via,
           x.message_key, x.channel, x.candidates, x.push_id, x.op, x.priority, x.attempt,
           x.outcome, x.http_status, x.detail, x.next_attempt_us, x.webhook_seq);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Consent& x) {
  return f(caf::meta::type_name("Consent"), x.change, x.channels, x.reason, x.message_id,
           x.snapshot);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Activity& x) {
  return f(caf::meta::type_name("Activity"), x.kind, x.message_id, x.message_key, x.direction,
           x.body, x.status, x.our_number, x.duration_s, x.disposition, x.recording_url,
           x.transcript, x.summary, x.channel, x.error, x.media);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ContactFact& x) {
  return f(caf::meta::type_name("ContactFact"), x.kind, x.tenant, x.system, x.external_id,
           x.source_time_us, x.fields, x.consents_only, x.consents, x.activities, x.imported,
           x.webhook_seq, x.fact_index, x.webhook_id, x.correlation_id, x.recorded_at_us);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, RoutedFact& x) {
  return f(caf::meta::type_name("RoutedFact"), x.fact, x.epoch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, RedriveItem& x) {
  return f(caf::meta::type_name("RedriveItem"), x.contact_id, x.cause, x.push, x.asked_at_us);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Redrive& x) {
  return f(caf::meta::type_name("Redrive"), x.tenant, x.contact_id, x.items, x.replay_seq,
           x.replay_id, x.epoch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, PushOrder& x) {
  return f(caf::meta::type_name("PushOrder"), x.tenant, x.request, x.request_id, x.correlation_id,
           x.redriven);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, PushCancel& x) {
  return f(caf::meta::type_name("PushCancel"), x.tenant, x.push_id, x.reason, x.contact_id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, PushReport& x) {
  return f(caf::meta::type_name("PushReport"), x.tenant, x.contact_id, x.events, x.request_id,
           x.correlation_id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, FactDone& x) {
  return f(caf::meta::type_name("FactDone"), x.tenant, x.contact_id, x.webhook_seq, x.last_seq,
           x.epoch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, AppendResult& x) {
  return f(caf::meta::type_name("AppendResult"), x.token, x.error, x.seqs, x.ids);
}
// The vendor's rate signals (optionals) travel in the same process only; they
// are printed, not serialized.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, PushResult& x) {
  return f(caf::meta::type_name("PushResult"), x.http_status, x.external_id, x.detail, x.requests,
           x.auth_rejected);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, HttpDone& x) {
  return f(caf::meta::type_name("HttpDone"), x.push_id, x.result);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, SendRecorded& x) {
  return f(caf::meta::type_name("SendRecorded"), x.push_id, x.error, x.duplicate, x.held);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, TokenGrant& x) {
  return f(caf::meta::type_name("TokenGrant"), x.ok, x.http_status, x.access_token,
           x.refresh_token, x.expires_in_s, x.detail);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, TokenDone& x) {
  return f(caf::meta::type_name("TokenDone"), x.grant);
}
// Reads carry contacts' records (personal data): never printed.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BackfillRead&) {
  return f(caf::meta::type_name("BackfillRead"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ReadDone&) {
  return f(caf::meta::type_name("ReadDone"));
}
// Settings hold credentials: never printed.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ConnectorUpdate&) {
  return f(caf::meta::type_name("ConnectorUpdate"));
}

}  // namespace dfm

CAF_BEGIN_TYPE_ID_BLOCK(dfm, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(dfm, (dfm::ContactFact))
CAF_ADD_TYPE_ID(dfm, (dfm::RoutedFact))
CAF_ADD_TYPE_ID(dfm, (dfm::DomainEvent))
CAF_ADD_TYPE_ID(dfm, (dfm::PushOrder))
CAF_ADD_TYPE_ID(dfm, (dfm::PushReport))
CAF_ADD_TYPE_ID(dfm, (dfm::PushCancel))
CAF_ADD_TYPE_ID(dfm, (dfm::FactDone))
CAF_ADD_TYPE_ID(dfm, (dfm::AppendResult))
CAF_ADD_TYPE_ID(dfm, (dfm::HttpDone))
CAF_ADD_TYPE_ID(dfm, (dfm::TokenDone))
CAF_ADD_TYPE_ID(dfm, (dfm::Redrive))
CAF_ADD_TYPE_ID(dfm, (dfm::ConnectorUpdate))
CAF_ADD_TYPE_ID(dfm, (dfm::SendRecorded))
CAF_ADD_TYPE_ID(dfm, (dfm::BackfillRead))
CAF_ADD_TYPE_ID(dfm, (dfm::ReadDone))
CAF_ADD_ATOM(dfm, dfm, poll_atom, "poll")
CAF_ADD_ATOM(dfm, dfm, idle_atom, "idle")
CAF_ADD_ATOM(dfm, dfm, passivate_atom, "passivate")
CAF_ADD_ATOM(dfm, dfm, retry_atom, "retry")
CAF_ADD_ATOM(dfm, dfm, wake_atom, "wake")
CAF_ADD_ATOM(dfm, dfm, recover_atom, "recover")
CAF_ADD_ATOM(dfm, dfm, erase_atom, "erase")
CAF_ADD_ATOM(dfm, dfm, release_atom, "release")
// A contact actor to its router, once it has read its stream (and handed
// on its unsettled pushes when asked): it can no longer fail.
CAF_ADD_ATOM(dfm, dfm, started_atom, "started")
CAF_END_TYPE_ID_BLOCK(dfm)

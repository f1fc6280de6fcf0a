// The projections of campaigns (campaigns/README.md). Values are JSON
// (version 1) or plain counts.
//
// "campaigns", layout 1: campaigns and customers as their events make them
//   c/<tenant>/<campaign>          -> the campaign (EncodeCampaignRow)
//   u/<tenant>/<customer>          -> the customer (EncodeCustomerRow)
//   p/<tenant>/<contact>/<when, 20 digits of µs>/<customer> -> "": a payment
//                                     the contact made (what "stop on
//                                     payment" reads)
// An event its fold refuses (ApplyCampaignEvent) changes nothing.
//
// "campaign_tasks", layout 11 (1 kept no changed_us, 2 no o/, i/ and d/,
// 3 no a/, 4 an owner-index row beside each i/ and d/ row, 5 none beside
// t/ and s/ rows and no e/, 6 no h/, 7 undated o/ rows and s/ rows dated
// by task.done, 8 an i/ row per text the person sent, 9 undated refusals
// that a later push.succeeded did not replace, 10 s/ rows only by
// task.done): the fold of
// campaigns' task events (campaigns/task.h) into every task's
// state, the counts a campaign's progress shows, each person's sends the
// frequency caps count, what became of each send a task asked for, and
// each person's last reply.
//
//   t/<tenant>/<campaign>/<step, 3 digits>/<contact> -> the task (EncodeTaskRow)
//   n/<tenant>/<campaign>/<state>  -> how many of its tasks are in that state
//   r/<tenant>/<campaign>/<reason> -> how many it skipped for that reason
//   s/<tenant>/<contact>/<when, 20 digits of µs>/<campaign> -> "sms" | "email":
//                                     a text or email a task sent, when
//                                     the vendor took it (its o/ row's
//                                     time; else when the task ended),
//                                     whatever its task became (one
//                                     skipped while its send was in
//                                     flight sent it all the same)
//   h/<tenant>/<contact>/<campaign>/<step, 3 digits> -> when it was claimed
//                                     (µs): a text or email a task claimed
//                                     and has not ended (given back after a
//                                     lapsed lease, it may still go), which
//                                     the caps count as sent from its claim
//                                     until its s/ row replaces it
//   o/<tenant>/<campaign>/<step, 3 digits>/<contact> -> "<sent|refused|failed>
//                                     [@<when, µs>] <detail>" (when its
//                                     push.succeeded or message.refused was
//                                     recorded; rows without it read as 0):
//                                     the first outcome the contact's events
//                                     give the message CampaignMessageKey
//                                     names (push.succeeded and
//                                     push.dead_lettered of its send,
//                                     message.refused), but its send's
//                                     push.succeeded replaces any other: an
//                                     opt-out decided while the send was on
//                                     its way refuses it, and the vendor took
//                                     it all the same
//   a/<tenant>/<campaign>/<step, 3 digits>/<contact> -> the draft (task.h,
//                                     EncodeDraft): the first answer to the
//                                     request CampaignDraftKey names (its
//                                     push.succeeded's answer.text, .model
//                                     and .prompt_version; push.dead_lettered
//                                     or message.refused: why none)
//   i/<tenant>/<contact>/last      -> <when, 20 digits of µs>: the last
//                                     text the person sent (message.logged
//                                     inbound), what "stop on reply" reads
//   e/<tenant>/<contact>           -> "": a contact erased (contact.erased),
//                                     whose tasks a campaign no longer waits for
//   d/<tenant>/<contact>/<when, 20 digits of µs>/<message key> -> how it
//                                     ended (the disposition, else the
//                                     status): a call with the person (either
//                                     way) that ended (message.logged or
//                                     .status of channel call past its
//                                     ringing), what a call step waits for
//
// An event the task's life refuses (ApplyTaskEvent) changes nothing, as
// live processing would: the same log folds to the same state. An s/
// row's "when" is its o/ row's (the vendor took the text), else the
// task.done event's recorded time.
//
// A task's t/ and s/ rows are its contact's (an owner-index row each): when
// the contact is erased they go and the task leaves the n/ and r/ counts,
// as in a rebuild, which cannot open the task's events any more (sealed
// with the contact's key, events/sealing.h).
//
// Pure like every projection; the reads below take a log's committed state.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "campaigns/campaign_view.h"
#include "campaigns/customer.h"
#include "campaigns/task.h"
#include "projections/projection.h"
#include "storage/event_log.h"

namespace dfm {

class CampaignsProjection : public Projection {
 public:
  static constexpr char kName[] = "campaigns";
  std::string name() const override { return kName; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;
};

std::string EncodeCampaignRow(const CampaignView& v);
bool DecodeCampaignRow(std::string_view row, CampaignView* v);
std::string EncodeCustomerRow(const Customer& c);
bool DecodeCustomerRow(std::string_view row, Customer* c);

// NotFound when there is no such campaign or customer.
Status ReadCampaign(const EventLog& log, const std::string& tenant, const std::string& campaign,
                    CampaignView* v);
Status ReadCustomer(const EventLog& log, const std::string& tenant, const std::string& customer,
                    Customer* c);
// The same two as their own stream folds to: never behind the log (the
// projection folds a moment after an append), for a request that changes
// them. A campaign's stream holds its created and changed events only;
// `last_seq` (when given): the sequence of its last event.
Status FoldCampaignStream(const EventLog& log, const std::string& tenant,
                          const std::string& campaign, CampaignView* v,
                          uint64_t* last_seq = nullptr);
Status FoldCustomerStream(const EventLog& log, const std::string& tenant,
                          const std::string& customer, Customer* c);
// The tenant's campaigns as the projection holds them, by id.
Status ListCampaigns(const EventLog& log, const std::string& tenant,
                     std::vector<CampaignView>* out);
// Whether `contact` has a payment recorded at or after `since_us`.
Status ReadPaidSince(const EventLog& log, const std::string& tenant, const std::string& contact,
                     int64_t since_us, bool* paid);

class CampaignTasksProjection : public Projection {
 public:
  static constexpr char kName[] = "campaign_tasks";
  std::string name() const override { return kName; }
  int layout() const override { return 11; }
  bool Uses(std::string_view type) const override;
  void FoldDecoded(const Event& e, const DomainEvent* d, ProjectionState* state) override;

 protected:
  // i/ and d/ rows begin with their contact: found by that prefix, with no
  // owner-index row each (layout 5).
  std::string_view TenantOwnKinds() const override { return "dih"; }
  // A t/ row forgotten takes its task out of the campaign's n/ and r/ counts.
  void Forget(std::string_view key, std::string_view value, ProjectionState* state) override;
};

std::string CampaignTaskKey(const std::string& tenant, const std::string& campaign, int step,
                            const std::string& contact);
// A task as its row holds it (JSON, version 1, Task's fields); false when
// `row` is not one.
std::string EncodeTaskRow(const Task& t);
bool DecodeTaskRow(std::string_view row, Task* t);

// The tenant's erased contacts (e/ rows).
Status ReadErasedContacts(const EventLog& log, const std::string& tenant,
                          std::set<std::string>* out);

// Every task of the campaign, by step then contact.
Status ReadCampaignTasks(const EventLog& log, const std::string& tenant,
                         const std::string& campaign, std::vector<Task>* out);
// NotFound when the task was never created.
Status ReadCampaignTask(const EventLog& log, const std::string& tenant, const std::string& campaign,
                        int step, const std::string& contact, Task* t);
// The campaign's tasks by state ("pending" -> 12, ...) and its skips by reason.
Status ReadCampaignCounts(const EventLog& log, const std::string& tenant,
                          const std::string& campaign, std::map<std::string, int64_t>* by_state,
                          std::map<std::string, int64_t>* skipped_by);
// What became of the send of a task; NotFound while nothing is known.
Status ReadSendOutcome(const EventLog& log, const std::string& tenant, const std::string& campaign,
                       int step, const std::string& contact, SendOutcome* out);
// What the model drafted for a task; NotFound while it has not answered.
Status ReadDraft(const EventLog& log, const std::string& tenant, const std::string& campaign,
                 int step, const std::string& contact, Draft* out);
// How the first call to `contact` that ended at or after `since_us` ended
// (its disposition, else its status); nullopt-like: *ended false when none.
Status ReadCallEndedSince(const EventLog& log, const std::string& tenant,
                          const std::string& contact, int64_t since_us, bool* ended,
                          std::string* how);
// Whether `contact` sent a text at or after `since_us`.
Status ReadRepliedSince(const EventLog& log, const std::string& tenant, const std::string& contact,
                        int64_t since_us, bool* replied);
// The times of `contact`'s texts and emails at or after `since_us`, any
// campaign, oldest first: those sent, and those claimed and on their way
// (at their claim) but the one of `campaign`'s step `step` (the task asking:
// its own earlier claim is not another send).
Status ReadRecentSends(const EventLog& log, const std::string& tenant, const std::string& contact,
                       int64_t since_us, const std::string& campaign, int step,
                       std::vector<int64_t>* at_us);

}  // namespace dfm

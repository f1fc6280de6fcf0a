// GoHighLevel's API client, shared by the files that define its members
// (internal to this folder): client.cc (the protocol's summary, contacts
// and OAuth), client_messages.cc (texts, calls, notes, tags, statuses)
// and client_consent.cc (DND on every record of the person).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"
#include "connectors/ghl/every_record.h"

namespace dfm {
namespace ghl {

inline constexpr char kContactsVersion[] = "2021-07-28";
inline constexpr char kConversationsVersion[] = "2021-04-15";

// client.cc (each described where it is defined)
std::string CallStatus(const std::string& s);
std::string ContactBody(const PushRequest& req, const std::string& location_id, bool with_location);
std::string ContactIdIn(const std::string& body, bool* has_null_contact);
std::string RawMessage(const HttpResponse& r);
std::string ErrorMessage(const HttpResponse& r);
bool IsNotFound(const HttpResponse& r);

class GhlClient final : public VendorClient {
 public:
  GhlClient(const SystemSettings& s, HttpClient* http)
      : http_(http),
        base_(ApiBaseUrl(s)),
        location_(s.at("location_id")),
        client_id_(s.at("client_id")),
        client_secret_(s.at("client_secret")),
        provider_(s.at("conversation_provider_id")),
        timeout_ms_(std::stoll(s.at("request_timeout_ms"))) {}

  bool UsesOAuth() const override { return !client_id_.empty(); }

  bool CanList() const override { return true; }

  void ListContacts(const std::string& cursor, int page_size, const Credentials& creds,
                    std::function<void(ContactPage)> done) override;

  void Push(const PushRequest& req, const Credentials& creds,
            std::function<void(PushResult)> done) override;

  void RefreshToken(const Credentials& creds, std::function<void(TokenGrant)> done) override;

 private:
  struct State {
    PushRequest req;
    std::string token;
    std::function<void(PushResult)> done;
    PushResult result;
    bool message = false;  // a message op: the contact is only looked up (or created)
    bool searched_again = false;
    bool notes_checked = false;
    bool looked_anew = false;  // the linked record was gone: the person's looked for once
    std::string contact_id, conversation_id;
  };
  using StatePtr = std::shared_ptr<State>;

  HttpRequest Base(const StatePtr& st, const char* method, std::string path,
                   const char* version = kContactsVersion) const;

  // Records the response's signals; true when the push is settled by it
  // (failure of any kind), in which case `done` has been called.
  static bool Settle(const StatePtr& st, const HttpResponse& resp);

  void Search(const StatePtr& st);

  // A message op's linked record answered "not found" (deleted, or merged
  // into another since it was linked: "Contact with id ... not found", at
  // the conversation's creation, the message's write or a note's): the
  // person's record is looked for by phone or email, as an upsert's is
  // (Search), once; true when it is. Not without a phone or an email (the
  // search would match nothing and the upsert make a blank record). The
  // record found is answered (answer.contact_id, beside answer.gone, the
  // link that failed): the contact links to it (model::DecideFoundAnew), so
  // its next message goes there at once.
  bool LookForAnew(const StatePtr& st, const HttpResponse& resp);

  // Message ops, once the contact's id is known.
  void OnContact(const StatePtr& st, const std::string& id);
  // OnContact's steps. A retried note first looks for its text among the
  // contact's notes (the earlier attempt may have written it).
  void LookForNote(const StatePtr& st, const std::string& id);
  void WriteNoteOrTags(const StatePtr& st, const std::string& id);
  // The contact has no conversation: one is made ("already exists": the
  // search is asked once more).
  void CreateConversation(const StatePtr& st);

  // A retried write first looks for its altId among the conversation's
  // latest messages (one page of 100): the earlier attempt may have been
  // written. An attempt older than that page is not found and written again.
  void OnConversation(const StatePtr& st, const std::string& conversation_id);

  void PostMessage(const StatePtr& st);

  void UpdateStatus(const StatePtr& st);

  // A consent push: every record of the person (every_record.h).
  void SetEveryRecord(const StatePtr& st);

  // read_consent: what every record of the person holds (every_record.h):
  // the search's records (their dndSettings come with them), and its own by
  // GET /contacts/{id} when the search did not list it. A read that follows
  // a consent push of ours (field "after") reads its own record and those
  // the push set (field "ids") by id, whatever the search lists: the search
  // is eventually consistent (docs/vendors/ghl-api.md 3.7) and would show
  // them as they were before the push wrote them (none of them read by id,
  // it answers nothing). After an opt-in it reads
  // each channel's dndSettings alone (the global `dnd`, which the opt-in
  // leaves, is no setting made since).
  void ReadConsent(const StatePtr& st);

  // The records `records` (the search's) lacks or may hold stale, read by id.
  void ReadByIds(const StatePtr& st, std::vector<ghl::RecordDnd> records);

  // GETs ids[i..] into `records` (`got` of them read so far), then
  // answers. One gone is skipped (the others tell), except after a push of
  // ours: none of its records read by id, or any unreadable, answers
  // nothing (the search's copies may be as old as the push).
  void ReadEach(const StatePtr& st, std::vector<ghl::RecordDnd> records,
                std::vector<std::string> ids, size_t i, size_t got);

  static void AnswerHeld(const StatePtr& st, const std::vector<ghl::RecordDnd>& records);

  // Sets ids[i..] with a body of only the consent fields; `set`: those done.
  // `then_fail`: the answer the push ends with once they are set.
  void SetEach(const StatePtr& st, std::vector<std::string> ids, size_t i,
               std::vector<std::string> set,
               std::shared_ptr<const HttpResponse> then_fail = nullptr);

  void Update(const StatePtr& st, const std::string& id, bool fallback);

  void Upsert(const StatePtr& st);
  // A consent push that found no record: only an opt-out makes one.
  void NoRecord(const StatePtr& st);

  HttpClient* http_;
  std::string base_, location_, client_id_, client_secret_, provider_;
  int64_t timeout_ms_;
};

}  // namespace ghl
}  // namespace dfm

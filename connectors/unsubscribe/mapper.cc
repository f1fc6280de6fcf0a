// An unsubscribe (webhook.cc) -> the address's opt-out of email, the
// person's own, with the same precedence as a texted STOP; the campaign
// (or the token's id) is its cause in the opt-out registry.
#include "connectors/unsubscribe/unsubscribe.h"
#include "sync/consent.h"

namespace dfm {

Status MapUnsubscribeWebhook(const WebhookReceived& w, const MapperSettings& s,
                       std::vector<ContactFact>* out) {
  const std::string token = TokenInTarget(w.public_url);
  UnsubscribeLink link;
  Status st = ReadUnsubscribeToken(s.Get("secret", ""), token, &link);
  const std::string previous = s.Get(PreviousSecretKey("secret"), "");
  if (!st.ok() && !previous.empty()) st = ReadUnsubscribeToken(previous, token, &link);  // minted before a rotation
  if (!st.ok()) return Status::InvalidArgument("unsubscribe link unreadable with the current (or previous) secret");
  ContactFact f;
  f.system = "unsubscribe";
  f.fields[fields::kEmail] = link.address;
  Consent c;
  c.change = Consent::Change::kOptOut;
  c.channels = {channels::kEmail};
  c.reason = "one-click unsubscribe";
  c.actor = Consent::Actor::kPerson;
  c.message_id = link.campaign.empty() ? "unsubscribe:" + UnsubscribeTokenId(token)
                                       : "campaign:" + link.campaign;
  f.consents.push_back(std::move(c));
  out->push_back(std::move(f));
  return Status::OK();
}

}  // namespace dfm

// Email consent: one-click unsubscribe links (RFC 8058) as webhooks of the
// system "unsubscribe". The pieces connector.cc puts together into its
// descriptor. Internal to this folder and its tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/connector.h"

namespace dfm {

// What an unsubscribe link says: who asked to stop, from what, since when.
struct UnsubscribeLink {
  std::string address;   // normalized (Normalizer::Email)
  std::string campaign;  // the mailing or list it came in ("" for none): [A-Za-z0-9._:-]{0,64}
  int64_t issued_s = 0;  // when it was made, Unix seconds
};

// token.cc. A token, as docs/email.md writes its grammar:
//   token     = base64url-nopad( %x01 nonce ciphertext tag )
//   plaintext = issued LF address LF campaign
// sealed with AES-256-GCM (util/aead.h) under HMAC-SHA256(secret, "dfm
// unsubscribe token v1"), the version byte as associated data. It names
// the address without showing it, and no one without the tenant's secret
// can make or alter one.
// MintUnsubscribeToken: InvalidArgument for an address that is not one or
// a campaign outside its alphabet.
Status MintUnsubscribeToken(std::string_view secret, const UnsubscribeLink& link, std::string* token);
// Unauthenticated ("not a valid unsubscribe link") unless `token` was made
// with `secret`; then `*link` is what it says.
Status ReadUnsubscribeToken(std::string_view secret, std::string_view token, UnsubscribeLink* link);
// A token's id: the first 16 bytes of its SHA-256, hex. The same link
// clicked twice is one statement (the provider event id "unsubscribe:<id>").
std::string UnsubscribeTokenId(std::string_view token);
// The token in a request target's query (`?u=<token>`), or empty.
std::string TokenInTarget(std::string_view target);
// "j•••@example.com": for pages and logs.
std::string MaskAddress(std::string_view address);

// webhook.cc: the link's POST (and the page its GET shows).
std::vector<SettingSpec> UnsubscribeSettings();
std::unique_ptr<WebhookSource> NewUnsubscribeWebhookSource(const SystemSettings& s,
                                                     std::vector<SettingProblem>* problems);

// mapper.cc: an unsubscribe is the address's opt-out of email.
Status MapUnsubscribeWebhook(const WebhookReceived& w, const MapperSettings& s,
                       std::vector<ContactFact>* out);

const Connector& UnsubscribeConnector();

}  // namespace dfm

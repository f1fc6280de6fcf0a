// Email consent, Telnyx and Verity's send route (docs/email.md,
// docs/vendors/telnyx.md, docs/verity.md): sealed tokens, unsubscribe links
// that cannot be forged or moved to another address, the unsubscribe
// endpoint's checks and page, Telnyx's Ed25519 signature (a vector from
// Telnyx's own SDK key pair, and our own keys), its mapper, and Verity's
// send-message contract.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <set>
#include <thread>
#include <vector>

#include "config/config.h"
#include "connectors/unsubscribe/unsubscribe.h"
#include "connectors/telnyx/telnyx.h"
#include "connectors/verity/verity.h"
#include "sync/contact_model.h"
#include "tests/support/mapper_input.h"
#include "tests/support/one_answer_http.h"
#include "util/aead.h"
#include "util/crypto.h"

namespace dfm {
namespace {

using testing::UsSettings;
using testing::Webhook;

const std::string kSecret = "tenant-north-unsubscribe-secret-0123456789";

struct Request {
  std::map<std::string, std::string, std::less<>> headers;
  std::string target_text;
  InboundRequest in;
  Request(std::string_view body, std::string target, std::string_view type = "application/json")
      : target_text(std::move(target)) {
    in.body = body;
    in.target = target_text;
    in.public_url = "https://dfm.example.com" + target_text;
    in.content_type = type;
    in.headers = &headers;
    in.now_us = 1763900000LL * 1000000;
  }
};

// ---- sealed tokens ----------------------------------------------------------

TEST(Aead, SealsAndRefusesAnythingAltered) {
  const std::string key(32, 'k');
  const std::string sealed = AeadSeal(key, "v1", "hello");
  ASSERT_EQ(sealed.size(), kAeadNonceBytes + 5 + kAeadTagBytes);
  EXPECT_EQ(AeadOpen(key, "v1", sealed), "hello");
  EXPECT_NE(AeadSeal(key, "v1", "hello"), sealed) << "a fresh nonce each time";
  EXPECT_EQ(AeadOpen(key, "v2", sealed), std::nullopt) << "other associated data";
  EXPECT_EQ(AeadOpen(std::string(32, 'x'), "v1", sealed), std::nullopt) << "other key";
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] ^= 1;
    EXPECT_EQ(AeadOpen(key, "v1", t), std::nullopt) << "byte " << i;
  }
  EXPECT_EQ(AeadOpen(key, "v1", sealed.substr(0, 20)), std::nullopt);
}

// AES-256-GCM opened by a context of its own: what AeadSeal's kept
// per-thread context made is standard GCM under the key of that call.
std::optional<std::string> OpenFresh(std::string_view key, std::string_view aad,
                                     std::string_view sealed) {
  auto u = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  const size_t len = sealed.size() - kAeadNonceBytes - kAeadTagBytes;
  std::string plain(len, '\0'), tag(sealed.substr(kAeadNonceBytes + len));
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int n = 0, m = 0;
  bool ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr, u(key), u(sealed)) == 1 &&
            EVP_DecryptUpdate(c, nullptr, &n, u(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(c, reinterpret_cast<unsigned char*>(plain.data()), &n,
                              u(sealed.substr(kAeadNonceBytes)), static_cast<int>(len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kAeadTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(c, reinterpret_cast<unsigned char*>(plain.data()) + n, &m) == 1;
  EVP_CIPHER_CTX_free(c);
  return ok ? std::optional<std::string>(plain) : std::nullopt;
}

TEST(Aead, EachCallUsesItsOwnKeyAfterAnyEarlierCall) {
  const std::string a(32, 'a'), b(32, 'b');
  const std::string plain(1500, 'p');
  for (int round = 0; round < 3; ++round) {
    const std::string under_a = AeadSeal(a, "aad", plain);
    const std::string under_b = AeadSeal(b, "aad", "short");
    EXPECT_EQ(OpenFresh(a, "aad", under_a), plain);
    EXPECT_EQ(OpenFresh(b, "aad", under_b), "short");
    EXPECT_EQ(OpenFresh(a, "aad", under_b), std::nullopt);
    // A refused open leaves the thread's context good for the next one.
    EXPECT_EQ(AeadOpen(b, "aad", under_a), std::nullopt);
    EXPECT_EQ(AeadOpen(a, "other", under_a), std::nullopt);
    EXPECT_EQ(AeadOpen(a, "aad", under_a), plain);
    EXPECT_EQ(AeadOpen(b, "aad", under_b), "short");
  }
  EXPECT_EQ(AeadSeal("short key", "aad", plain), "") << "a key of the wrong size seals nothing";
  EXPECT_EQ(OpenFresh(a, "aad", AeadSeal(a, "aad", "")), "");
}

// AES-256-GCM sealed by a context of its own (a nonce of `nonce`'s 12
// bytes), in AeadSeal's format: nonce || ciphertext || tag.
std::string SealFresh(std::string_view key, std::string_view nonce, std::string_view aad,
                      std::string_view plain) {
  auto u = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  std::string out(nonce);
  out.resize(kAeadNonceBytes + plain.size() + kAeadTagBytes);
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int n = 0, m = 0;
  bool ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, u(key), u(nonce)) == 1 &&
            EVP_EncryptUpdate(c, nullptr, &n, u(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(c, o + kAeadNonceBytes, &n, u(plain),
                              static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(c, o + kAeadNonceBytes + n, &m) == 1 &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kAeadTagBytes,
                                o + kAeadNonceBytes + plain.size()) == 1;
  EVP_CIPHER_CTX_free(c);
  return ok ? out : std::string();
}

// AeadOpen and AeadSeal call the provider's functions themselves, not
// EVP's: what standard AES-256-GCM sealed opens, on any thread (each
// makes and frees contexts of its own), and what they seal opens there.
TEST(Aead, OpensStandardGcmOnAnyThread) {
  const std::string key(32, 'g'), nonce = "0123456789ab";
  const std::string plain(1400, 'q');
  const std::string sealed = SealFresh(key, nonce, "aad", plain);
  ASSERT_FALSE(sealed.empty());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        bool ok = AeadOpen(key, "aad", sealed) == plain &&
                  AeadOpen(key, "aaX", sealed) == std::nullopt &&
                  OpenFresh(key, "aad", AeadSeal(key, "aad", plain)) == plain;
        if (ok) good++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 200);
  std::string out = "left over";
  EXPECT_TRUE(AeadOpenTo(key, "aad", sealed, &out));
  EXPECT_EQ(out, plain) << "its bytes replaced";
  EXPECT_FALSE(AeadOpenTo(key, "aaX", sealed, &out));
  EXPECT_TRUE(out.empty()) << "nothing left of a refused open";
  EXPECT_FALSE(AeadOpenTo(key, "aad", "short", &out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(SealFresh(key, nonce, "aad", ""), SealFresh(key, nonce, "aad", ""));
  EXPECT_EQ(AeadOpen(key, "aad", SealFresh(key, nonce, "aad", "")), "");
}

// Opening in place gives what AeadOpen gives, drops the bytes before the
// sealed part, and refuses what AeadOpen refuses.
TEST(Aead, OpensInPlaceAsItOpensACopy) {
  const std::string key(32, 'k');
  for (const std::string& plain : {std::string(), std::string("hi"), std::string(1500, 'p')}) {
    const std::string sealed = AeadSeal(key, "aad", plain);
    std::string buf = "12345678" + sealed;
    ASSERT_TRUE(AeadOpenInPlace(key, "aad", &buf, 8));
    EXPECT_EQ(buf, plain);
    for (size_t i : {size_t{0}, size_t{12}, sealed.size() - 1}) {
      std::string t = "1234" + sealed;
      t[4 + i] ^= 1;
      EXPECT_FALSE(AeadOpenInPlace(key, "aad", &t, 4)) << "byte " << i;
    }
    buf = sealed;
    EXPECT_FALSE(AeadOpenInPlace(key, "other", &buf, 0));
    // The right key decrypted it before the check refused it: not left.
    EXPECT_EQ(buf.substr(kAeadNonceBytes, plain.size()), std::string(plain.size(), '\0'));
    buf = sealed;
    EXPECT_FALSE(AeadOpenInPlace(std::string(32, 'x'), "aad", &buf, 0));
  }
  std::string short_buf(kAeadNonceBytes + kAeadTagBytes - 1, 's');
  EXPECT_FALSE(AeadOpenInPlace(key, "aad", &short_buf, 0));
}

TEST(Aead, NoncesNeverRepeatNorCrossAFork) {
  const std::string key(32, 'k');
  std::set<std::string> nonces;
  for (int i = 0; i < 5000; ++i) nonces.insert(AeadSeal(key, "", "x").substr(0, kAeadNonceBytes));
  EXPECT_EQ(nonces.size(), 5000u) << "across several refills of the thread's buffer";
  // A child takes no nonce its parent will: its buffer is its own.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // nothing of gtest here: the child only seals and writes
    try {
      std::string mine;
      for (int i = 0; i < 100; ++i) mine += AeadSeal(key, "", "x").substr(0, kAeadNonceBytes);
      _exit(write(fds[1], mine.data(), mine.size()) == static_cast<ssize_t>(mine.size()) ? 0 : 1);
    } catch (...) {
      _exit(3);
    }
  }
  close(fds[1]);
  std::string theirs(100 * kAeadNonceBytes, '\0');
  size_t got = 0;
  while (got < theirs.size()) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 30000) != 1) break;  // a child that hangs fails the test, not the run
    ssize_t n = read(fds[0], theirs.data() + got, theirs.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  if (got < theirs.size()) kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_EQ(got, theirs.size());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int i = 0; i < 100; ++i) {
    const std::string ours = AeadSeal(key, "", "x").substr(0, kAeadNonceBytes);
    for (size_t at = 0; at < theirs.size(); at += kAeadNonceBytes)
      EXPECT_NE(theirs.substr(at, kAeadNonceBytes), ours);
  }
}

TEST(Aead, Base64UrlIsCanonicalAndUnpadded) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "\xff\xfe\xfd"}) {
    const std::string e = Base64UrlEncode(s);
    EXPECT_EQ(e.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(Base64UrlDecode(e), s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlDecode("Zg=="), std::nullopt) << "padding";
  EXPECT_EQ(Base64UrlDecode("Zh"), std::nullopt) << "non-canonical trailing bits";
  EXPECT_EQ(Base64UrlDecode("a+b/"), std::nullopt) << "the standard alphabet";
  EXPECT_EQ(Base64UrlDecode("Z"), std::nullopt);
}

// ---- unsubscribe links ------------------------------------------------------

std::string Mint(const std::string& address, const std::string& campaign = "nov-news",
                 const std::string& secret = kSecret, int64_t issued = 1763800000) {
  std::string token;
  EXPECT_TRUE(MintUnsubscribeToken(secret, {address, campaign, issued}, &token).ok());
  return token;
}

TEST(UnsubscribeToken, NamesItsAddressWithoutShowingIt) {
  const std::string token = Mint(" Ada.Lovelace@Example.com ");
  EXPECT_EQ(token.find("ada"), std::string::npos);
  EXPECT_EQ(token.find("example"), std::string::npos);
  EXPECT_LT(token.size(), 140u);
  UnsubscribeLink link;
  ASSERT_TRUE(ReadUnsubscribeToken(kSecret, token, &link).ok());
  EXPECT_EQ(link.address, "ada.lovelace@example.com") << "normalized";
  EXPECT_EQ(link.campaign, "nov-news");
  EXPECT_EQ(link.issued_s, 1763800000);
  std::string t;
  EXPECT_FALSE(MintUnsubscribeToken(kSecret, {"not an address", "", 1}, &t).ok());
  EXPECT_FALSE(MintUnsubscribeToken(kSecret, {"a@x.io", "bad campaign!", 1}, &t).ok());
}

TEST(UnsubscribeToken, CannotBeForgedAlteredOrMovedToAnotherAddress) {
  const std::string token = Mint("ada@example.com");
  UnsubscribeLink link;
  EXPECT_EQ(ReadUnsubscribeToken("another-tenant-secret-0123456789abcdef", token, &link).code(),
            Status::Code::kUnauthenticated)
      << "another tenant's secret";
  // Every character changed in turn: none reads, so no edit of a link names
  // another address.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = alphabet[(alphabet.find(t[i]) + 1) % alphabet.size()];
    EXPECT_FALSE(ReadUnsubscribeToken(kSecret, t, &link).ok()) << "character " << i;
  }
  EXPECT_FALSE(ReadUnsubscribeToken(kSecret, "", &link).ok());
  EXPECT_FALSE(ReadUnsubscribeToken(kSecret, "AQ", &link).ok());
  // A token made by hand for another address without the secret.
  const std::string key(32, '\0');
  EXPECT_FALSE(ReadUnsubscribeToken(
                   kSecret, Base64UrlEncode(std::string(1, '\x01') + AeadSeal(key, "\x01", "1\nbob@x.io\n")), &link)
                   .ok());
  // Two links of one address are two statements; the same link twice is one.
  EXPECT_NE(UnsubscribeTokenId(token), UnsubscribeTokenId(Mint("ada@example.com")));
  EXPECT_EQ(UnsubscribeTokenId(token), UnsubscribeTokenId(token));
}

std::unique_ptr<WebhookSource> UnsubscribeSource(int64_t link_days = 0) {
  SystemSettings s = {{"secret", kSecret}, {"link_days", std::to_string(link_days)}};
  std::vector<SettingProblem> problems;
  auto src = NewUnsubscribeWebhookSource(s, &problems);
  EXPECT_TRUE(problems.empty());
  return src;
}

TEST(UnsubscribeEndpoint, OneClickPostIsVerifiedByItsLink) {
  auto src = UnsubscribeSource();
  const std::string token = Mint("ada@example.com");
  Request r("List-Unsubscribe=One-Click", "/t/north/webhooks/unsubscribe?u=" + token,
            "application/x-www-form-urlencoded");
  std::string scheme;
  ASSERT_TRUE(src->Verify(r.in, &scheme).ok());
  EXPECT_EQ(scheme, "unsubscribe-token");
  WebhookIdentity id;
  ASSERT_TRUE(src->Identify(r.in, &id).ok());
  EXPECT_EQ(id.provider_event_id, "unsubscribe:" + UnsubscribeTokenId(token));
  EXPECT_EQ(id.source_time_us, r.in.now_us) << "when it was posted";
  EXPECT_TRUE(src->AcceptsContentType("multipart/form-data"));
  EXPECT_FALSE(src->AcceptsContentType("application/json"));

  Request multipart(
      "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n",
      r.target_text, "multipart/form-data");
  EXPECT_TRUE(src->Identify(multipart.in, &id).ok());
  Request empty("", r.target_text, "application/x-www-form-urlencoded");
  EXPECT_EQ(src->Identify(empty.in, &id).code(), Status::Code::kInvalidArgument)
      << "RFC 8058 asks for the one-click body";

  Request none("List-Unsubscribe=One-Click", "/t/north/webhooks/unsubscribe", "application/x-www-form-urlencoded");
  EXPECT_EQ(src->Verify(none.in, &scheme).code(), Status::Code::kUnauthenticated);
  Request forged("List-Unsubscribe=One-Click", "/webhooks/unsubscribe?u=" + Mint("ada@example.com", "", "x" + kSecret),
                 "application/x-www-form-urlencoded");
  EXPECT_EQ(src->Verify(forged.in, &scheme).code(), Status::Code::kUnauthenticated);
  EXPECT_TRUE(UnsubscribeSource(30)->Verify(r.in, &scheme).ok()) << "made 100,000 s ago, valid 30 days";
}

TEST(UnsubscribeEndpoint, LinksExpireOnlyWhenTheTenantSaysSo) {
  Request r("List-Unsubscribe=One-Click", "/webhooks/unsubscribe?u=" + Mint("ada@example.com", "", kSecret, 1700000000),
            "application/x-www-form-urlencoded");
  std::string scheme;
  EXPECT_TRUE(UnsubscribeSource(0)->Verify(r.in, &scheme).ok());
  EXPECT_EQ(UnsubscribeSource(30)->Verify(r.in, &scheme).code(), Status::Code::kUnauthenticated);
  EXPECT_TRUE(UnsubscribeSource(800)->Verify(r.in, &scheme).ok());
  std::vector<SettingProblem> problems;
  EXPECT_EQ(NewUnsubscribeWebhookSource({{"secret", "short"}, {"link_days", "0"}}, &problems), nullptr);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].message, "must be at least 32 characters");
}

TEST(UnsubscribeEndpoint, TheGetPageAsksAndShowsTheAddressMasked) {
  auto src = UnsubscribeSource();
  Request r("", "/webhooks/unsubscribe?u=" + Mint("ada@example.com"));
  auto page = src->Handshake(r.in);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("a•••@example.com"), std::string::npos);
  EXPECT_EQ(page->body.find("ada@"), std::string::npos);
  EXPECT_NE(page->body.find("name=\"List-Unsubscribe\" value=\"One-Click\""), std::string::npos);
  EXPECT_NE(page->body.find("method=\"post\""), std::string::npos);
  std::map<std::string, std::string> headers(page->headers.begin(), page->headers.end());
  EXPECT_EQ(headers["Content-Security-Policy"],
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'");
  EXPECT_EQ(headers["Referrer-Policy"], "no-referrer");
  EXPECT_EQ(headers["X-Frame-Options"], "DENY");
  Request bad("", "/webhooks/unsubscribe?u=AAAA");
  EXPECT_EQ(src->Handshake(bad.in)->status, 400);
  EXPECT_EQ(src->Handshake(bad.in)->headers.size(), 3u);
}

TEST(UnsubscribeMapper, IsThePersonsOptOutOfEmail) {
  const std::string token = Mint("ada@example.com");
  WebhookReceived w = Webhook("unsubscribe", "List-Unsubscribe=One-Click");
  w.public_url = "https://dfm.example.com/t/north/webhooks/unsubscribe?u=" + token;
  SystemSettings settings = {{"secret", kSecret}};
  MapperSettings ms = UsSettings();
  ms.system = &settings;
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapUnsubscribeWebhook(w, ms, &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at(fields::kEmail), "ada@example.com");
  ASSERT_EQ(facts[0].consents.size(), 1u);
  const Consent& c = facts[0].consents[0];
  EXPECT_EQ(c.change, Consent::Change::kOptOut);
  EXPECT_EQ(c.channels, std::vector<std::string>{"email"});
  EXPECT_EQ(c.actor, Consent::Actor::kPerson);
  EXPECT_EQ(c.reason, "one-click unsubscribe");
  EXPECT_EQ(c.message_id, "campaign:nov-news");
  SystemSettings rotated = {{"secret", "rotated-" + kSecret}};
  ms.system = &rotated;
  EXPECT_EQ(MapUnsubscribeWebhook(w, ms, &facts).code(), Status::Code::kInvalidArgument);
  rotated["secret_previous"] = kSecret;  // the rotation's overlap (docs/operations.md)
  facts.clear();
  ASSERT_TRUE(MapUnsubscribeWebhook(w, ms, &facts).ok()) << "a link minted before the rotation";
  EXPECT_EQ(facts.at(0).fields.at(fields::kEmail), "ada@example.com");
}

// Issue 47: the unsubscribe secret rotated with the old one kept as
// secret_previous: links minted before are honoured (page and one-click
// POST) until they expire; without it they are not.
TEST(UnsubscribeEndpoint, OldLinksAreHonouredThroughARotationUntilTheyExpire) {
  const Connector* c = FindConnector("unsubscribe");
  ASSERT_NE(c, nullptr);
  const std::string old_link = Mint("ada@example.com");
  SystemSettings s = {{"secret", "rotated-" + kSecret}, {"secret_previous", kSecret}, {"link_days", "30"}};
  std::vector<SettingProblem> problems;
  auto src = MakeWebhookSource(*c, s, &problems);
  ASSERT_TRUE(src) << (problems.empty() ? "" : problems[0].message);
  Request post("List-Unsubscribe=One-Click", "/webhooks/unsubscribe?u=" + old_link,
               "application/x-www-form-urlencoded");
  std::string scheme;
  ASSERT_TRUE(src->Verify(post.in, &scheme).ok());
  EXPECT_EQ(scheme, "unsubscribe-token+previous-secret");
  Request page("", "/webhooks/unsubscribe?u=" + old_link);
  EXPECT_EQ(src->Handshake(page.in)->status, 200);
  Request late = post;
  late.in.headers = &late.headers;
  late.in.now_us = (1763800000LL + 31 * 86400) * 1000000;
  EXPECT_FALSE(src->Verify(late.in, &scheme).ok()) << "expired under either secret";
  Request forged("List-Unsubscribe=One-Click", "/webhooks/unsubscribe?u=" + Mint("ada@example.com", "x", "another-secret-0123456789abcdefghijkl"),
                 "application/x-www-form-urlencoded");
  EXPECT_FALSE(src->Verify(forged.in, &scheme).ok());
  s.erase("secret_previous");  // the overlap ends
  auto after = MakeWebhookSource(*c, s, &problems);
  EXPECT_FALSE(after->Verify(post.in, &scheme).ok());
}

// ---- Telnyx ------------------------------------------------------------------

// The key pair hard-coded in Telnyx's PHP SDK tests (tests/Services/WebhooksTest.php);
// the signature of kBody at kTs made with its secret key (Ed25519 is deterministic).
const char kTelnyxPublicKey[] = "+7E99DXiiQXvceNX4nHm3Lbm5mqPWad5RhDr2ufuCik=";
const char kTelnyxTs[] = "1700000000";
const char kTelnyxBody[] = R"({"data":{"event_type":"message.received","id":"test-123"}})";
const char kTelnyxSig[] =
    "tMXRZyBL2gkwrgKp6CTDXTO/K+DVq0ZKEFB3tSdfBwqZGC3K/Hr7TCW+jY7RdWrAiKXEckI3tsHEpdz7lS/MDA==";

std::unique_ptr<WebhookSource> TelnyxSource(const std::string& key) {
  std::vector<SettingProblem> problems;
  auto src = NewTelnyxWebhookSource({{"public_key", key}, {"tolerance_s", "300"}}, &problems);
  EXPECT_TRUE(problems.empty()) << (problems.empty() ? "" : problems[0].message);
  return src;
}

TEST(TelnyxWebhook, TheSdkKeyPairsVector) {
  auto src = TelnyxSource(kTelnyxPublicKey);
  Request r(kTelnyxBody, "/webhooks/telnyx");
  r.in.now_us = 1700000000LL * 1000000 + 120 * 1000000;
  r.headers["telnyx-timestamp"] = kTelnyxTs;
  r.headers["telnyx-signature-ed25519"] = kTelnyxSig;
  std::string scheme;
  ASSERT_TRUE(src->Verify(r.in, &scheme).ok());
  EXPECT_EQ(scheme, "ed25519");
  WebhookIdentity id;
  ASSERT_TRUE(src->Identify(r.in, &id).ok());
  EXPECT_EQ(id.provider_event_id, "test-123");

  r.headers["telnyx-timestamp"] = "1700000001";
  EXPECT_EQ(src->Verify(r.in, &scheme).code(), Status::Code::kUnauthenticated) << "the timestamp is signed";
  r.headers["telnyx-timestamp"] = kTelnyxTs;
  r.in.now_us = 1700000000LL * 1000000 + 301 * 1000000;
  EXPECT_EQ(src->Verify(r.in, &scheme).message(), "telnyx-timestamp is outside the allowed window");
  r.in.now_us = 1700000000LL * 1000000 - 301 * 1000000;
  EXPECT_FALSE(src->Verify(r.in, &scheme).ok()) << "nor from the future";
  r.in.now_us = 1700000000LL * 1000000;
  std::string other = kTelnyxBody;
  other[other.size() - 3] = '4';
  Request altered(other, "/webhooks/telnyx");
  altered.headers = r.headers;
  altered.in.now_us = r.in.now_us;
  EXPECT_FALSE(src->Verify(altered.in, &scheme).ok());
  r.headers.erase("telnyx-signature-ed25519");
  EXPECT_EQ(src->Verify(r.in, &scheme).message(), "missing telnyx-signature-ed25519 header");
}

// The raw 32 bytes of a PEM Ed25519 public key (its DER ends with them).
std::string RawOf(const std::string& pem) {
  std::string b64;
  for (size_t i = pem.find('\n') + 1; i < pem.size() && pem[i] != '-'; ++i)
    if (pem[i] != '\n') b64 += pem[i];
  auto der = Base64Decode(b64);
  return der->substr(der->size() - 32);
}

TEST(TelnyxWebhook, OurOwnKeysAndTheSettings) {
  auto key = PrivateKey::GenerateEd25519();
  auto src = TelnyxSource(Base64Encode(RawOf(key->PublicPem())));
  const std::string body = R"({"data":{"event_type":"message.finalized","id":"e-1","occurred_at":"2025-11-23T10:00:00.000+00:00"}})";
  Request r(body, "/webhooks/telnyx");
  r.in.now_us = 1763892000LL * 1000000;
  r.headers["telnyx-timestamp"] = "1763892000";
  r.headers["telnyx-signature-ed25519"] = Base64Encode(key->Sign("1763892000|" + body));
  std::string scheme;
  EXPECT_TRUE(src->Verify(r.in, &scheme).ok());
  WebhookIdentity id;
  ASSERT_TRUE(src->Identify(r.in, &id).ok());
  EXPECT_EQ(id.source_time_us, 1763892000LL * 1000000);
  auto other = PrivateKey::GenerateEd25519();
  r.headers["telnyx-signature-ed25519"] = Base64Encode(other->Sign("1763892000|" + body));
  EXPECT_FALSE(src->Verify(r.in, &scheme).ok()) << "another account's key";
  std::vector<SettingProblem> problems;
  EXPECT_EQ(NewTelnyxWebhookSource({{"public_key", "c2hvcnQ="}, {"tolerance_s", "300"}}, &problems), nullptr);
  EXPECT_EQ(problems.at(0).message, "must be base64 of a 32-byte Ed25519 public key");
}

// One Telnyx account's key signs every tenant's webhooks on that account: a
// webhook posted to another tenant's URL verified there too (within its
// 300 s window the other tenant had no copy of its id to stop it).
TEST(TelnyxWebhook, TenantsOnOneAccountTakeOnlyTheirProfilesWebhooks) {
  auto key = PrivateKey::GenerateEd25519();
  std::vector<SettingProblem> problems;
  auto src = NewTelnyxWebhookSource({{"public_key", Base64Encode(RawOf(key->PublicPem()))},
                                     {"tolerance_s", "300"},
                                     {"messaging_profile_ids", "profile-a1, profile-a2"}},
                                    &problems);
  ASSERT_TRUE(problems.empty());
  auto identify = [&](const std::string& payload) {
    const std::string body =
        R"({"data":{"event_type":"message.received","id":"e-1","payload":)" + payload + "}}";
    Request r(body, "/webhooks/telnyx");
    r.in.now_us = 1763892000LL * 1000000;
    r.headers["telnyx-timestamp"] = "1763892000";
    r.headers["telnyx-signature-ed25519"] = Base64Encode(key->Sign("1763892000|" + body));
    std::string scheme;
    EXPECT_TRUE(src->Verify(r.in, &scheme).ok()) << "the account's own signature";
    WebhookIdentity id;
    return src->Identify(r.in, &id);
  };
  EXPECT_TRUE(identify(R"({"id":"m-1","messaging_profile_id":"profile-a2"})").ok());
  Status other = identify(R"({"id":"m-1","messaging_profile_id":"profile-b"})");
  EXPECT_EQ(other.code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(other.message(), "messaging_profile_id is not one of this tenant's");
  EXPECT_EQ(identify(R"({"id":"m-1"})").code(), Status::Code::kUnauthenticated)
      << "a body bound to none";
}

std::string Received(const std::string& text, const std::string& autoresponse = "null") {
  return R"({"data":{"event_type":"message.received","id":"bf6307bd","occurred_at":"2025-11-23T18:10:02.574+00:00","record_type":"event","payload":{"id":"7ee4241c","record_type":"message","direction":"inbound","type":"SMS","from":{"phone_number":"+12055550142","carrier":"T-MOBILE USA, INC.","line_type":"Wireless"},"to":[{"phone_number":"+12055550100","status":"webhook_delivered"}],"text":")" +
         text + R"(","media":[],"errors":[],"autoresponse_type":)" + autoresponse + "}},\"meta\":{\"attempt\":1}}";
}

TEST(TelnyxMapper, InboundTextsAndTheirOptOuts) {
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", Received("Running late")), UsSettings(), &facts).ok());
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].fields.at(fields::kPhone), "+12055550142");
  ASSERT_EQ(facts[0].activities.size(), 1u);
  EXPECT_EQ(facts[0].activities[0].kind, Activity::Kind::kText);
  EXPECT_EQ(facts[0].activities[0].body, "Running late");
  EXPECT_EQ(facts[0].activities[0].our_number, "+12055550100");
  EXPECT_TRUE(facts[0].consents.empty());
  EXPECT_EQ(facts[0].source_time_us, 1763921402574000LL);

  facts.clear();
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", Received("STOP", "\"STOP\"")), UsSettings(), &facts).ok());
  ASSERT_EQ(facts[0].consents.size(), 1u);
  EXPECT_EQ(facts[0].consents[0].change, Consent::Change::kOptOut);
  EXPECT_EQ(facts[0].consents[0].reason, "autoresponse_type STOP");
  EXPECT_EQ(facts[0].consents[0].message_id, "7ee4241c");

  facts.clear();
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", Received("unstop", "\"START\"")), UsSettings(), &facts).ok());
  EXPECT_EQ(facts[0].consents.at(0).change, Consent::Change::kOptIn);

  facts.clear();
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", Received("Stop.")), UsSettings(), &facts).ok());
  EXPECT_EQ(facts[0].consents.at(0).reason, "keyword STOP") << "without Telnyx's own handling";

  facts.clear();
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", Received("please stop texting me")), UsSettings(), &facts).ok());
  EXPECT_EQ(facts[0].consents.at(0).change, Consent::Change::kReview);

  facts.clear();
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", Received("HELP", "\"HELP\"")), UsSettings(), &facts).ok());
  EXPECT_TRUE(facts[0].consents.empty());
}

TEST(TelnyxMapper, DeliveryReportsMediaAndBadBodies) {
  const std::string finalized =
      R"({"data":{"event_type":"message.finalized","id":"4ee8","occurred_at":"2026-11-23T21:32:14.148+00:00","payload":{"id":"4038","direction":"outbound","from":{"phone_number":"+12055550100"},"to":[{"phone_number":"+12055550142","status":"delivery_failed"}],"text":"Hi","errors":[{"code":"40300","title":"Blocked due to STOP message","detail":"x"}]}}})";
  std::vector<ContactFact> facts;
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", finalized), UsSettings(), &facts).ok());
  const Activity& a = facts.at(0).activities.at(0);
  EXPECT_EQ(a.kind, Activity::Kind::kStatus);
  EXPECT_EQ(a.status, "delivery_failed");
  EXPECT_EQ(a.error, "40300: Blocked due to STOP message");
  EXPECT_EQ(facts[0].fields.at(fields::kPhone), "+12055550142");
  // Older bodies name the recipient as a plain string (docs/vendors/telnyx.md).
  std::string older = finalized;
  older.replace(older.find(R"([{"phone_number":"+12055550142","status":"delivery_failed"}])"), 60,
                R"("+12055550142")");
  facts.clear();
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", older), UsSettings(), &facts).ok()) << older;
  EXPECT_EQ(facts.at(0).fields.at(fields::kPhone), "+12055550142");

  facts.clear();
  std::string mms = Received("look");
  mms.replace(mms.find(R"("media":[])"), 10,
              R"("media":[{"url":"https://media.telnyx.com/a.jpg","content_type":"image/jpeg","size":10}])");
  ASSERT_TRUE(MapTelnyxWebhook(Webhook("telnyx", mms), UsSettings(), &facts).ok());
  EXPECT_EQ(facts[0].activities[0].media, "image image/jpeg https://media.telnyx.com/a.jpg");

  for (const char* bad : {R"({})", R"({"data":{"event_type":"message.received"}})",
                          R"({"data":{"event_type":"message.received","payload":{"id":"x"}}})",
                          R"({"data":{"event_type":"message.received","payload":{"id":"x","from":{"phone_number":"12"}}}})"}) {
    facts.clear();
    EXPECT_EQ(MapTelnyxWebhook(Webhook("telnyx", bad), UsSettings(), &facts).code(),
              Status::Code::kInvalidArgument)
        << bad;
  }
  facts.clear();
  EXPECT_TRUE(MapTelnyxWebhook(Webhook("telnyx", R"({"data":{"event_type":"number_order.complete"}})"),
                               UsSettings(), &facts)
                  .ok());
  EXPECT_TRUE(facts.empty());
}

// ---- Verity's send route -----------------------------------------------------

using testing::OneAnswerHttp;

PushResult VeritySend(OneAnswerHttp* http, const std::string& op = "send", bool contacts_api = false,
                      const std::string& media = "") {
  SystemSettings s = {{"api_base_url", "https://verity.example.com"}, {"api_key", "k"},
                      {"from_number", "+12055550100"}, {"contacts_api", contacts_api ? "true" : "false"},
                      {"request_timeout_ms", "1000"}};
  auto client = NewVerityClient(s, http);
  PushRequest req;
  req.op = op;
  req.message_key = "msg-key-1";
  req.fields = {{"phone", "+12055550142"}, {"body", "Your order shipped"}};
  if (!media.empty()) req.fields["media"] = media;
  Credentials c;
  c.access_token = "k";
  PushResult out;
  client->Push(req, c, [&](PushResult r) { out = std::move(r); });
  return out;
}

TEST(VeritySend, SpeaksTheIntegrationRoute) {
  OneAnswerHttp http;
  http.answer.status = 200;
  http.answer.body = R"({"success":true,"messageId":"m-9","chatId":"c-1","status":"queued"})";
  PushResult r = VeritySend(&http);
  EXPECT_EQ(http.sent.url, "https://verity.example.com/api/integrations/df-middleware/send-message");
  EXPECT_EQ(http.sent.body,
            R"({"to":"+12055550142","body":"Your order shipped","from":"+12055550100","correlationId":"msg-key-1"})");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.external_id, "m-9");

  http.answer.status = 409;
  http.answer.body = R"({"success":false,"error":"recipient opted out"})";
  r = VeritySend(&http);
  EXPECT_TRUE(r.recipient_opted_out);
  EXPECT_EQ(r.detail, "HTTP 409: recipient opted out");

  http.answer.status = 503;
  http.answer.body = R"({"success":false,"error":"internal"})";
  EXPECT_TRUE(VeritySend(&http).not_done) << "Verity's own 5xx: not done (docs/verity.md)";
  http.answer.body = "<html>502 Bad Gateway</html>";
  for (int status : {502, 503, 504}) {
    http.answer.status = status;
    EXPECT_FALSE(VeritySend(&http).not_done) << status << ": a gateway's may hide a sent text";
  }

  http.answer.status = 200;
  http.answer.body = R"({"success":false,"error":"number not provisioned"})";
  r = VeritySend(&http);
  EXPECT_EQ(r.http_status, 422) << "refused in a 2xx: final";
  http.answer.body = "<html>";
  EXPECT_EQ(VeritySend(&http).http_status, 0) << "unreadable: retried";

  http.sent = {};
  r = VeritySend(&http, "send", false, "image image/jpeg https://x/a.jpg");
  EXPECT_EQ(r.http_status, 422);
  EXPECT_TRUE(http.sent.url.empty()) << "text only: reported, not sent";
  r = VeritySend(&http, "upsert");
  EXPECT_EQ(r.http_status, 422);
  EXPECT_TRUE(http.sent.url.empty()) << "no contacts API unless the deployment has one";
  http.answer.status = 201;
  http.answer.body = R"({"contact":{"id":"vc_1"}})";
  r = VeritySend(&http, "upsert", true);
  EXPECT_EQ(http.sent.url, "https://verity.example.com/v1/contacts");
  EXPECT_EQ(r.external_id, "vc_1");
}

TEST(VeritySend, WithoutItsContactsApiVerityOnlySends) {
  auto ctx_for = [](const std::string& contacts_api) {
    std::vector<ConfigProblem> problems;
    Config c = Config::Load("", {{"DFM_VERITY_WEBHOOK_SECRET", "s"},
                                 {"DFM_VERITY_API_BASE_URL", "https://v.example.com"},
                                 {"DFM_VERITY_API_KEY", "k"},
                                 {"DFM_VERITY_CONTACTS_API", contacts_api}},
                            &problems);
    for (const auto& p : problems) EXPECT_FALSE(p.error) << p.key << ": " << p.message;
    return SyncContextFor(c, "default");
  };
  SyncContext off = ctx_for("false");
  EXPECT_TRUE(off.messages_only.count("verity"));
  EXPECT_TRUE(off.channels.at("verity").empty()) << "keeps no opt-outs";
  SyncContext on = ctx_for("true");
  EXPECT_FALSE(on.messages_only.count("verity"));
  EXPECT_EQ(on.channels.at("verity"), std::set<std::string>{"sms"});
}

}  // namespace
}  // namespace dfm

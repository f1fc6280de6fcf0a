// The NATS link's security as the configuration gives it ([cluster] nats_*,
// docs/scale-out.md, "Securing the NATS link").
#pragma once

#include "cluster/nats_client.h"
#include "config/config.h"

namespace dfm {

inline NatsSecurity NatsSecurityOf(const ClusterSettings& c) {
  NatsSecurity s;
  s.user = c.nats_user;
  s.password = c.nats_password;
  s.token = c.nats_token;
  s.nkey = c.nats_nkey;
  s.nkey_seed_file = c.nats_nkey_seed_file;
  s.creds_file = c.nats_creds_file;
  s.ca_file = c.nats_ca_file;
  s.cert_file = c.nats_cert_file;
  s.key_file = c.nats_key_file;
  return s;
}

}  // namespace dfm

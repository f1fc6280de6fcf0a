// The projections of contact sync. Key layouts (values are plain text):
//
// "mappings"
//   x/<system>/<external id>   -> contact id
//   c/<contact id>/<system>    -> external id
//   p/<E.164 phone>            -> contact id
//   e/<email>                  -> contact id
// "contacts" (the contact view)
//   f/<contact id>/<field>     -> merged value
//   s/<contact id>/<field>     -> system that set it
//   d/<contact id>             -> "1" while deleted
// "sync_status"
//   p/<push id>                -> "<state> <system> <contact id>"; state is
//                                 pending | retrying | succeeded | dead
//   n/<system>/<state>         -> number of pushes in that state
//   k/<contact id>/<state>     -> the same per contact
#pragma once

#include <optional>
#include <string>

#include "projections/projection.h"

namespace dfm {

class MappingsProjection : public Projection {
 public:
  static constexpr char kName[] = "mappings";
  std::string name() const override { return kName; }
  void Fold(const Event& e, ProjectionState* state) override;

  static std::string ExternalKey(std::string_view system, std::string_view external_id);
  static std::string PhoneKey(std::string_view e164) { return "p/" + std::string(e164); }
  static std::string EmailKey(std::string_view email) { return "e/" + std::string(email); }
};

class ContactViewProjection : public Projection {
 public:
  static constexpr char kName[] = "contacts";
  std::string name() const override { return kName; }
  void Fold(const Event& e, ProjectionState* state) override;
};

class SyncStatusProjection : public Projection {
 public:
  static constexpr char kName[] = "sync_status";
  std::string name() const override { return kName; }
  void Fold(const Event& e, ProjectionState* state) override;
};

}  // namespace dfm

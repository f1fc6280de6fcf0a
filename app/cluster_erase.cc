#include "app/cluster_erase.h"

#include <future>
#include <utility>

#include "app/serve_common.h"
#include "console/remote_read.h"

namespace dfm {

EraseHandler AskClusterErase(ClusterNode* node) {
  return [node](const std::string& tenant, const std::string& contact, const std::string& reason,
                const std::string& by, bool force, EraseAnswer* answer) -> Status {
    RemoteRead r{kEraseRoute, tenant, {{"contact", contact}, {"reason", reason}, {"by", by}}};
    if (force) r.params.emplace_back("force", "1");  // (a node of an older version ignores it)
    auto done = std::make_shared<std::promise<std::pair<Status, std::string>>>();
    auto got = done->get_future();
    node->AskRead(
        tenant, EncodeRemoteRead(r),
        [done](Status s, std::string a) { done->set_value({std::move(s), std::move(a)}); }, kEraseTimeoutMs);
    auto [s, text] = got.get();
    if (s.IsNotFound())
      return Status::Unavailable(s.message());  // no owner now: not "no such contact"
    if (!s.ok()) return s;
    Status erased;
    if (!DecodeEraseAnswer(text, &erased, answer))
      return Status::Unavailable("the partition's node answered what this node cannot read");
    return erased;
  };
}

bool AnswerClusterErase(const std::atomic<const Config*>& live, Worker* worker, const ServedLog& at,
                        const std::string& request, std::function<void(std::string)>* reply) {
  RemoteRead r;
  if (!DecodeRemoteRead(request, &r) || r.route != kEraseRoute) return false;
  // (asked here, while the partition's work is served: the source keeps
  // what it reads)
  auto router = at.work ? at.work->DecidedSource() : nullptr;
  worker->Post([&live, at, router, r = std::move(r), reply = std::move(*reply)] {
    const Config& config = *live.load();
    std::string contact, reason, by;
    bool force = false;
    for (const auto& [name, value] : r.params) {
      if (name == "contact") contact = value;
      if (name == "reason") reason = value;
      if (name == "by") by = value;
      if (name == "force") force = value == "1";
    }
    EraseAnswer a;
    Status s = at.keys == nullptr
                   ? Status::Unavailable(
                         "cluster.state_key is not set: this cluster does not seal personal "
                         "data, so it cannot erase it")
                   : EraseForApi(config, at.log, at.keys, /*ledger_path=*/"", r.tenant, contact,
                                 reason, by, force, &a, router);
    if (s.ok() && !a.already && at.scrub_after) at.scrub_after(a.seq);  // in the background
    reply(EncodeEraseAnswer(s, a));
  });
  return true;
}

}  // namespace dfm

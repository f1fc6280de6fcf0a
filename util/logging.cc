#include "util/logging.h"

#include <spdlog/async.h>
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace dfm {

namespace {
std::mutex g_mu;
std::shared_ptr<spdlog::sinks::sink> g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;
bool g_async = false;
}  // namespace

void InitLogging(std::string_view level) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_async) {
    if (!g_sink) g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    spdlog::init_thread_pool(8192, 1);
    g_async = true;
  }
  g_level = spdlog::level::from_str(std::string(level));
  spdlog::set_level(g_level);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL wins over the config
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ [%n] %v", spdlog::pattern_time_type::utc);
}

std::shared_ptr<spdlog::logger> Logger(const std::string& module) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (auto existing = spdlog::get(module)) return existing;
  std::shared_ptr<spdlog::logger> logger;
  if (!g_sink) g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (g_async) {
    logger = std::make_shared<spdlog::async_logger>(module, g_sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::overrun_oldest);
  } else {
    logger = std::make_shared<spdlog::logger>(module, g_sink);
  }
  logger->set_level(g_level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ [%n] %v", spdlog::pattern_time_type::utc);
  spdlog::register_logger(logger);
  spdlog::cfg::load_env_levels();
  return logger;
}

std::string MaskPhone(std::string_view phone) {
  if (phone.size() <= 4) return std::string(phone.size(), '*');
  std::string out(phone.substr(0, 3));
  out.append(phone.size() - 5, '*');
  out.append(phone.substr(phone.size() - 2));
  return out;
}

std::string MaskEmail(std::string_view email) {
  auto at = email.find('@');
  if (at == std::string_view::npos || at == 0) return std::string(email.size(), '*');
  return std::string(1, email[0]) + "***" + std::string(email.substr(at));
}

std::string MaskDigitRuns(std::string_view text) {
  std::string out(text);
  size_t i = 0;
  while (i < out.size()) {
    if (out[i] < '0' || out[i] > '9') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < out.size() && out[end] >= '0' && out[end] <= '9') ++end;
    if (end - i >= 7)
      for (size_t k = i + 2; k < end - 2; ++k) out[k] = '*';
    i = end;
  }
  return out;
}

std::string MaskBody(std::string_view body) {
  return "<" + std::to_string(body.size()) + " bytes>";
}

std::string LogText(std::string_view text, size_t max) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(text.size(), max) + 8);
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == max) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace dfm

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <tuple>
#include <utility>

#include "common.h"
#include "kubeca/fs.h"
#include "kubeca/pki.h"
#include "kubeca/server.h"

namespace kubeca::cli {

namespace {

namespace fs = std::filesystem;

// HOST:PORT or [IPv6]:PORT, the port 0 (any free one) to 65535; UsageError naming `what`.
std::pair<std::string, int> parse_listen(const std::string& what, const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw UsageError(what + ": \"" + listen + "\" is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      throw UsageError(what + ": \"" + listen + "\" is not HOST:PORT");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw UsageError(what + ": write an IPv6 address in brackets, [" + host + "]:" + port);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos ||
      std::stoi(port) > 65535) {
    throw UsageError(what + ": port \"" + port + "\" is not a number from 0 to 65535");
  }
  return {host, std::stoi(port)};
}

}  // namespace

int cmd_serve(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("config,c", po::value<std::string>(),
                     "cluster.yaml, else /etc/kubeca/cluster.yaml")(
      "env-file", po::value<std::string>(), "the seed's shell variables")(
      "pki", po::value<std::string>()->default_value(kDefaultPki),
      "the PKI folder with ca.pem and ca-key.pem")(
      "listen", po::value<std::string>(), "HOST:PORT (default signer.listen; port 0: any free)")(
      "store", po::value<std::string>(), "sqlite:PATH (default signer.store)")(
      "audit-log", po::value<std::string>(),
      "append one JSON line per decision here (default stdout)")(
      "threads", po::value<long long>()->default_value(64),
      "connections served at once (1 to 4096)")(
      "max-failures", po::value<int>()->default_value(10),
      "failed attempts with one token id from one address, per window, before 429")(
      "failure-window", po::value<std::string>()->default_value("1m"),
      "the failure limiter's window (90s, 1m, 1h)");
  po::variables_map vm;
  if (!parse(args,
             "Usage: kubeca serve --config cluster.yaml --pki DIR [--listen ADDR] [--store URL]\n\n"
             "Serves the signing API over TLS 1.2+ with the signer certificate (issued\n"
             "into DIR on first start). Stops gracefully on SIGTERM or SIGINT.",
             desc, vm)) {
    return 0;
  }
  const Config config = load_config_from(vm);
  ServeOptions o;
  const bool flag = vm.count("listen") > 0;
  std::tie(o.host, o.port) =
      parse_listen(flag ? "--listen" : "signer.listen",
                   flag ? vm["listen"].as<std::string>() : config.signer_listen);
  const long long threads = vm["threads"].as<long long>();
  if (threads < 1 || threads > 4096) {
    throw UsageError("--threads: " + std::to_string(threads) + " is not between 1 and 4096");
  }
  o.threads = static_cast<size_t>(threads);
  o.max_failures = vm["max-failures"].as<int>();
  if (o.max_failures < 1) throw UsageError("--max-failures: must be at least 1");
  o.failure_window = parse_duration(vm["failure-window"].as<std::string>());
  if (vm.count("audit-log")) o.audit_log = vm["audit-log"].as<std::string>();
  const std::string store_url =
      vm.count("store") ? vm["store"].as<std::string>() : config.signer_store;
  check_store_url(store_url);
  // The CA is checked before the store is opened: a wrong --pki creates no database.
  const std::string pki = vm["pki"].as<std::string>();
  for (const char* f : {"ca.pem", "ca-key.pem"}) {
    if (!file_exists(fs::path(pki) / f)) {
      throw InputError("--pki: " + (fs::path(pki) / f).string() +
                       " not found (run `kubeca init` first)");
    }
  }

  // Signals are taken by a waiting thread, not a handler: stop() is not async-signal-safe.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  // serve may make the store; it belongs to this CA from then on.
  auto store = open_store(store_url, OpenMode::kCreate);
  store->bind_ca(ca_pin(load_ca(pki, Profile::kCa, config.flavor)->certificate()));
  // A fresh host has no /var/log/kubeca yet: the log's folder is made, as the store's is.
  if (const auto dir = fs::path(o.audit_log).parent_path(); !dir.empty()) {
    fs::create_directories(dir);
  }
  SigningServer server(config, pki, std::move(store), o);
  const int port = server.start();
  std::cerr << "kubeca: serving on https://" << o.host << ":" << port << " (store " << store_url
            << ")" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "kubeca: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": finishing requests in flight" << std::endl;
  server.stop();
  server.wait();
  std::cerr << "kubeca: stopped" << std::endl;
  return 0;
}

}  // namespace kubeca::cli
